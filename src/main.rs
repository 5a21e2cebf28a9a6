//! The `ringback` binary: a shim over [`ringback::cli`].

/// mimalloc instead of the system allocator: a reply allocates and frees many small strings
/// and JSON values across threads, and glibc's malloc spent ~22 % of the server's CPU under a
/// burst in `malloc_consolidate`, `unlink_chunk` and friends (perf, `scripts/bench-pinned`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ringback::cli::main()
}
