//! The `peftlab` command line; everything lives in [`peftlab::cli`].

fn main() -> std::process::ExitCode {
    peftlab::cli::main()
}
