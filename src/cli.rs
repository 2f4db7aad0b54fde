//! The command line: `peftlab run | repl | check | doc` (clap), mapped onto [`Host`].
//!
//! Exit codes: 0 success, 1 script error (syntax, runtime, Ctrl-C), 2 usage or I/O error
//! (unknown flag, missing script file, bad `--set`/`--shard`). Kept out of `main.rs` so that
//! `main` stays a one-liner (ripgrep's `main.rs`/`flags` split).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::api::docs_md;
use crate::host::error::ErrorKind;
use crate::host::session::parse_assignment;
use crate::host::{docs, Host, Shard};
use crate::limits::Limits;

/// Multilingual PEFT studies as Rhai scripts.
#[derive(Debug, Parser)]
#[command(name = "peftlab", version, about, long_about = None)]
pub struct Cli {
    /// No progress bars and no status lines on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub limits: LimitArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Size limits of script values (see [`crate::limits`]); far above what studies need.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Most elements in one array, nested arrays' elements included (0: no limit).
    #[arg(long, global = true, value_name = "N", default_value_t = Limits::DEFAULT.max_array_size)]
    pub max_array_size: usize,
    /// Most bytes in one string (0: no limit).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = Limits::DEFAULT.max_string_size)]
    pub max_string_size: usize,
    /// Most entries in one object map, nested maps' entries included (0: no limit).
    #[arg(long, global = true, value_name = "N", default_value_t = Limits::DEFAULT.max_map_size)]
    pub max_map_size: usize,
    /// Deepest nesting of arrays and maps that functions accept.
    #[arg(long, global = true, value_name = "N", default_value_t = Limits::DEFAULT.max_depth,
          value_parser = parse_depth)]
    pub max_depth: usize,
}

impl LimitArgs {
    /// The limits these flags give.
    pub fn to_limits(&self) -> Limits {
        Limits {
            max_array_size: self.max_array_size,
            max_string_size: self.max_string_size,
            max_map_size: self.max_map_size,
            max_depth: self.max_depth,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a study script.
    Run(RunArgs),
    /// Interactive session (optionally after running SCRIPT in it).
    Repl(ReplArgs),
    /// Compile a script without running it; report every syntax error with line:column.
    Check(CheckArgs),
    /// Signatures and documentation of the registered functions (`--markdown`: all of
    /// docs/API.md).
    Doc(DocArgs),
    /// Benchmark the hot paths on a random-weight model (tokens/s, peak memory, MFU).
    Bench(BenchArgs),
}

/// `peftlab bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure: forward, generate, train, score, or all (those four); or decode (the
    /// median time of one decode step after a prompt of --seq tokens, over --iters steps).
    pub kind: String,
    /// Model shape: small, medium, smollm2-135m, llama-3.2-1b, llama-3.1-8b, or a config.json.
    #[arg(long, default_value = "small")]
    pub config: String,
    /// A checkpoint to measure instead of random weights: a Hugging Face model directory or a
    /// `.gguf` file (`--config` is then not used). Its load time and the peak RSS after loading
    /// are the `load` row. `benches/make_checkpoint.py` writes random-weight checkpoints of real
    /// shapes.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Batch size.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Sequence length (prompt length for generate and decode).
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Timed iterations after one warm-up (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// LoRA rank (all-linear) for train.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// New tokens for generate.
    #[arg(long, default_value_t = 32)]
    pub new_tokens: usize,
    /// Base quantisation: none, nf4, fp4, int8.
    #[arg(long, default_value = "none")]
    pub quant: String,
    /// dtype: f32, bf16, f16 (default f32 on cpu, bf16 on cuda).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Device: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Peak dense TFLOP/s of the device, for MFU.
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--set` values shared by the subcommands that run code.
#[derive(Debug, Args, Clone, Default)]
pub struct SetArgs {
    /// Script setting KEY=VALUE (repeatable): numbers, true/false, "quoted strings", JSON
    /// arrays/maps, otherwise text. Visible as the constant KEY, as settings::KEY and through
    /// get_setting("KEY", default).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = check_set)]
    pub set: Vec<String>,
}

/// `peftlab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The script file.
    pub script: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub settings: SetArgs,
    /// Output directory for results (default: runs/<script-stem>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only shard I of N of every run_cells grid: cells with 0-based index i where
    /// i % N == I-1.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Run no cells; assemble the results the shards wrote.
    #[arg(long)]
    pub collect: bool,
    /// Recompute every run_cells cell even if a result is stored (e.g. after changing a
    /// setting that the stored results were made under).
    #[arg(long, conflicts_with = "collect")]
    pub rerun: bool,
}

/// `peftlab repl`.
#[derive(Debug, Args)]
pub struct ReplArgs {
    /// A script to run first (its variables and functions stay defined).
    pub script: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub settings: SetArgs,
    /// Output directory (default: runs/<script-stem>/ or runs/repl/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `peftlab check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The script file.
    pub script: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub settings: SetArgs,
}

/// `peftlab doc`.
#[derive(Debug, Args)]
pub struct DocArgs {
    /// A function name, `module::name`, or a std module (`study`, `std/report`).
    pub name: Option<String>,
    /// Machine-readable output: a JSON array of functions.
    #[arg(long)]
    pub json: bool,
    /// The whole of docs/API.md: the contract and the generated reference of every function
    /// (`peftlab doc --markdown > docs/API.md`).
    #[arg(long, conflicts_with_all = ["json", "name"])]
    pub markdown: bool,
}

fn check_set(s: &str) -> Result<String, String> {
    parse_assignment(s).map(|_| s.to_string())
}

fn parse_depth(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a nesting depth of at least 1, got '{s}'")),
    }
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse()
}

/// Exit code for a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code for a script error.
pub const EXIT_SCRIPT: u8 = 1;
/// Exit code for a usage or I/O error.
pub const EXIT_USAGE: u8 = 2;

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "internal error: this is a bug in peftlab, please report it with the script.\n{info}"
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    crate::limits::set(cli.limits.to_limits());
    // Scripts run on a thread with a large stack: nested values are dropped, cloned and
    // size-checked by the engine recursively, one native frame per level. The stack is only
    // reserved address space; pages are committed as they are touched.
    let worker = std::thread::Builder::new()
        .name("peftlab-script".into())
        .stack_size(SCRIPT_STACK_BYTES)
        .spawn(move || run_cli(cli));
    let code = match worker {
        Ok(h) => h.join().unwrap_or(EXIT_SCRIPT),
        Err(e) => {
            eprintln!("error: cannot start the script thread: {e}");
            EXIT_USAGE
        }
    };
    ExitCode::from(code)
}

/// Stack reserved for the thread that runs scripts (1 GiB of address space).
pub const SCRIPT_STACK_BYTES: usize = 1 << 30;

/// Runs a parsed command line; returns the exit code.
pub fn run_cli(cli: Cli) -> u8 {
    crate::progress::set_enabled(!cli.quiet);
    match cli.command {
        Command::Run(a) => cmd_run(a, cli.quiet),
        Command::Repl(a) => cmd_repl(a, cli.quiet),
        Command::Check(a) => cmd_check(a),
        Command::Doc(a) => cmd_doc(a),
        Command::Bench(a) => cmd_bench(a),
    }
}

fn builder(settings: &SetArgs, quiet: bool) -> crate::host::HostBuilder {
    let parsed = settings
        .set
        .iter()
        .filter_map(|s| parse_assignment(s).ok())
        .collect();
    crate::api::host().settings(parsed).quiet(quiet)
}

fn exit_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Io => EXIT_USAGE,
        _ => EXIT_SCRIPT,
    }
}

fn cmd_run(a: RunArgs, quiet: bool) -> u8 {
    if !a.script.is_file() {
        eprintln!("error: script '{}' not found", a.script.display());
        return EXIT_USAGE;
    }
    crate::interrupt::install();
    let mut b = builder(&a.settings, quiet)
        .script(&a.script)
        .shard(a.shard)
        .collect(a.collect)
        .rerun(a.rerun);
    if let Some(out) = &a.out {
        b = b.out_dir(out);
    }
    let mut host = b.build();
    let result = host.run_script();
    let _ = std::io::stdout().flush();
    match result {
        Ok(_) => {
            warn_unused_settings(&host, &a.script);
            EXIT_OK
        }
        Err(e) => {
            host.session().reporter().error(&e.rendered);
            exit_for(e.kind)
        }
    }
}

/// Warns about `--set` keys that the script never reads (likely typos).
fn warn_unused_settings(host: &Host, script: &Path) {
    let text = std::fs::read_to_string(script).unwrap_or_default();
    let words: std::collections::HashSet<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    for k in host.session().settings().keys() {
        if !words.contains(k.as_str()) {
            host.session().reporter().warn(&format!(
                "--set {k}=... is not used by {}",
                script.display()
            ));
        }
    }
}

fn cmd_repl(a: ReplArgs, quiet: bool) -> u8 {
    let mut b = builder(&a.settings, quiet).reload_modules(true);
    if let Some(s) = &a.script {
        if !s.is_file() {
            eprintln!("error: script '{}' not found", s.display());
            return EXIT_USAGE;
        }
        b = b.script(s);
    }
    if let Some(out) = &a.out {
        b = b.out_dir(out);
    }
    let mut host = b.build();
    if a.script.is_some() {
        crate::interrupt::install();
        if let Err(e) = host.run_script() {
            host.session().reporter().error(&e.rendered);
        }
    }
    crate::repl::run(host, !quiet)
}

fn cmd_check(a: CheckArgs) -> u8 {
    let text = match std::fs::read_to_string(&a.script) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read '{}': {e}", a.script.display());
            return EXIT_USAGE;
        }
    };
    let host = builder(&a.settings, true).script(&a.script).build();
    let name = a.script.display().to_string();
    let dir = a.script.parent().unwrap_or(Path::new(""));
    let errors = crate::host::check::check_source(host.engine(), host.scope(), &text, &name, dir);
    if errors.is_empty() {
        println!("{name}: ok");
        return EXIT_OK;
    }
    for e in &errors {
        eprintln!("{}", e.rendered);
    }
    eprintln!(
        "{name}: {} error{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    EXIT_SCRIPT
}

fn cmd_doc(a: DocArgs) -> u8 {
    let host = crate::api::host().capture_output().build();
    let all = host.docs();
    let mut out = std::io::stdout().lock();
    if a.json {
        let items: Vec<serde_json::Value> = all
            .iter()
            .map(|d| {
                let mut v = serde_json::to_value(d).unwrap_or_default();
                v["signature"] = d.signature().into();
                v
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(items));
        return EXIT_OK;
    }
    if a.markdown {
        let md = docs_md::render_markdown(host.engine(), host.session(), &all);
        let _ = write!(out, "{md}");
        return EXIT_OK;
    }
    match &a.name {
        None => {
            let _ = write!(out, "{}", docs::render_list(&all));
            EXIT_OK
        }
        Some(name) => match docs::render_topic(host.engine(), &all, name) {
            Some(t) => {
                let _ = write!(out, "{t}");
                EXIT_OK
            }
            None => {
                eprintln!(
                    "error: no function or std module named '{name}' (`peftlab doc` lists all)"
                );
                EXIT_SCRIPT
            }
        },
    }
}

/// The model shape of `peftlab bench --config`: a preset name or a config.json file.
fn bench_config(config: &str) -> Result<serde_json::Value, String> {
    if std::path::Path::new(config).is_file() {
        std::fs::read_to_string(config)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|e| format!("{config}: {e}"))
    } else {
        crate::bench::preset(config).map_err(|e| e.to_string())
    }
}

fn cmd_bench(a: BenchArgs) -> u8 {
    let kinds: Vec<&str> = match a.kind.as_str() {
        "all" => vec!["forward", "score", "generate", "train"],
        k => vec![k],
    };
    let opts = crate::model::LoadOptions {
        dtype: a.dtype.clone(),
        quant: a.quant.clone(),
        device: a.device.clone(),
        progress: false,
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let loaded = match &a.model {
        Some(path) => crate::lab::Model::load(path, opts).map_err(|e| e.to_string()),
        None => bench_config(&a.config)
            .and_then(|cfg| crate::bench::random_model(&cfg, opts, 0).map_err(|e| e.to_string())),
    };
    let load_seconds = t0.elapsed().as_secs_f64();
    let mut model = match loaded {
        Ok(m) => m,
        Err(e) => {
            eprintln!("peftlab bench: {e}");
            return EXIT_USAGE;
        }
    };
    let info = model.info();
    if !a.json {
        println!(
            "model: {} layers, hidden {}, {} params, base {} ({} bytes) on {}",
            info["layers"],
            info["hidden"],
            info["params"],
            info["quant"],
            info["bytes"],
            info["device"]
        );
        println!(
            "{:<22} {:>12} {:>12} {:>8} {:>14}",
            "bench", "tokens/s", "s/iter", "MFU", "peak RSS"
        );
    }
    if a.model.is_some() {
        let rss = crate::train::trainer::peak_rss();
        if a.json {
            let row =
                serde_json::json!({ "bench": "load", "seconds": load_seconds, "peak_bytes": rss });
            println!("{row}");
        } else {
            println!(
                "{:<22} {:>12} {:>12.4} {:>8} {:>14}",
                "load",
                "-",
                load_seconds,
                "-",
                rss.map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
            );
        }
    }
    for k in kinds {
        let spec = crate::bench::BenchSpec {
            kind: k.to_string(),
            batch: a.batch,
            seq: a.seq,
            iters: a.iters.max(1),
            rank: a.rank,
            new_tokens: a.new_tokens,
            peak_flops: a.peak_tflops.map(|t| t * 1e12),
        };
        match crate::bench::run(&mut model, &spec) {
            Ok(r) if a.json => println!("{}", serde_json::Value::Object(r.to_row())),
            Ok(r) => println!(
                "{:<22} {:>12.1} {:>12.4} {:>8} {:>14}",
                r.name,
                r.tokens_per_s,
                r.seconds,
                r.mfu.map_or("-".into(), |m| format!("{:.1}%", 100.0 * m)),
                r.peak_bytes
                    .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
            ),
            Err(e) => {
                eprintln!("peftlab bench {k}: {e}");
                return EXIT_SCRIPT;
            }
        }
    }
    EXIT_OK
}
