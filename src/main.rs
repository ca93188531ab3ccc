//! The `sverka` binary: everything lives in the library; see `sverka::app`.

fn main() -> sverka::exit::Exit {
    sverka::app::main_with_args()
}
