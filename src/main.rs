//! The `peftlab` command line; everything lives in [`peftlab::cli`].

/// mimalloc keeps freed large buffers (logits, activations) for reuse instead of returning them
/// to the kernel after every step, which saves the page faults of re-zeroed memory.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    peftlab::cli::main()
}
