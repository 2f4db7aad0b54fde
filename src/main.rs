//! The `peftlab` command line; everything lives in [`peftlab::cli`].

use std::ffi::{c_int, c_long};

/// mimalloc serves every allocation; freed large buffers (logits, activations, gradients) are
/// reused by the next step.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its index in `mi_option_t` of the mimalloc (v3) that
/// libmimalloc-sys 0.1.49 bundles (`include/mimalloc.h`).
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    /// mimalloc's `void mi_option_set(mi_option_t option, long value)`.
    fn mi_option_set(option: c_int, value: c_long);
}

fn main() -> std::process::ExitCode {
    // By default mimalloc hands freed memory back to the kernel after 10 ms. A training step
    // frees its activations and allocates them again in the next step, so the kernel re-zeroes
    // the same pages every step: on SmolLM2-135M's shape that was 94k page faults in 3 steps
    // and 15 % of the time (`perf`). Keeping the memory (the process stays at its peak, which
    // it reaches every step anyway) removes them. `MIMALLOC_PURGE_DELAY` still overrides it.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain setter of an integer option in the allocator linked into this
        // binary; the index is checked against the bundled header (see the constant).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    peftlab::cli::main()
}
