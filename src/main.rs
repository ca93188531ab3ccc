//! The `sverka` binary: everything lives in the library; see `sverka::app`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(sverka::app::main_with_args())
}
