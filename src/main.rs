//! The `sverka` binary: everything lives in the library; see `sverka::app`.

/// mimalloc instead of the system allocator: a run at a million SKUs makes
/// millions of small allocations (SKU strings, decoded answers, map
/// entries) across several threads, where glibc's malloc spent a third of
/// the stock job's local CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> sverka::exit::Exit {
    sverka::app::main_with_args()
}
