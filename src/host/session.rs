//! Per-run state shared by the bindings: script location, output directory, `--set` settings,
//! `--shard`/`--collect` and the output [`Reporter`].
//!
//! `Session` is a cheap-to-clone handle (`Rc`); bindings capture a clone in their closures.
//!
//! `--set key=value` values are parsed by [`parse_setting_value`]: `8` → int, `2e-4` → float,
//! `true`/`false` → bool, `()` → unit, `"text"` (quoted) → string, `[...]`/`{...}` → JSON array
//! or map, anything else → the text as a string (`model=path/x`).

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;

use rhai::Dynamic;

use super::reporter::Reporter;

/// `--shard I/N`: this process runs cells with 0-based index `i` where `i % N == I - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based shard number `I` (1 ≤ I ≤ N).
    pub index: usize,
    /// Number of shards `N` (≥ 1).
    pub count: usize,
}

impl Shard {
    /// Whether the cell at 0-based `cell_index` belongs to this shard.
    pub fn owns(&self, cell_index: usize) -> bool {
        cell_index % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid shard '{s}' (expected I/N with 1 <= I <= N, e.g. 1/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One `--set` setting: the parsed value and the text it came from.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The parsed value.
    pub value: Dynamic,
    /// The text after `=`.
    pub raw: String,
}

/// Parses `key=value`; the key must be an identifier.
pub fn parse_assignment(s: &str) -> Result<(String, Setting), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid --set '{s}' (expected key=value, e.g. --set r=8)"))?;
    let k = k.trim();
    if !is_identifier(k) {
        return Err(format!(
            "invalid --set key '{k}' (letters, digits and '_', not starting with a digit)"
        ));
    }
    Ok((
        k.to_string(),
        Setting {
            value: parse_setting_value(v),
            raw: v.to_string(),
        },
    ))
}

/// Whether `s` is a valid script variable name.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Parses the value of `--set` sensibly (see the module docs).
pub fn parse_setting_value(v: &str) -> Dynamic {
    let t = v.trim();
    match t {
        "true" => return Dynamic::TRUE,
        "false" => return Dynamic::FALSE,
        "()" => return Dynamic::UNIT,
        _ => {}
    }
    if let Ok(i) = t.parse::<i64>() {
        return Dynamic::from_int(i);
    }
    let looks_numeric =
        t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if looks_numeric {
        if let Ok(x) = t.parse::<f64>() {
            if x.is_finite() {
                return Dynamic::from_float(x);
            }
        }
    }
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        if let Ok(serde_json::Value::String(s)) = serde_json::from_str(t) {
            return s.into();
        }
    }
    if t.starts_with('[') || t.starts_with('{') {
        if let Ok(j) = serde_json::from_str::<serde_json::Value>(t) {
            if let Ok(d) = rhai::serde::to_dynamic(&j) {
                return d;
            }
        }
    }
    v.to_string().into()
}

/// Everything needed to create a [`Session`].
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    /// The script being run (None in a plain REPL or for `Host::eval`).
    pub script: Option<PathBuf>,
    /// `--out DIR`; default `runs/<script-stem>/` (or `runs/repl/`).
    pub out_dir: Option<PathBuf>,
    /// `--set` settings in command-line order.
    pub settings: Vec<(String, Setting)>,
    /// `--shard I/N`.
    pub shard: Option<Shard>,
    /// `--collect`.
    pub collect: bool,
    /// `--rerun`: recompute every `run_cells` cell even if a result is stored.
    pub rerun: bool,
}

#[derive(Debug)]
struct Inner {
    script: Option<PathBuf>,
    script_dir: PathBuf,
    out_dir: PathBuf,
    settings: BTreeMap<String, Setting>,
    shard: Option<Shard>,
    collect: bool,
    rerun: bool,
    reporter: Reporter,
    git_commit: OnceCell<Option<String>>,
}

/// Shared per-run state (cheap to clone).
#[derive(Debug, Clone)]
pub struct Session(Rc<Inner>);

impl Session {
    /// Creates a session.
    pub fn new(config: SessionConfig, reporter: Reporter) -> Self {
        let script_dir = config
            .script
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let out_dir = config.out_dir.clone().unwrap_or_else(|| {
            let stem = config
                .script
                .as_deref()
                .and_then(Path::file_stem)
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "repl".to_string());
            Path::new("runs").join(stem)
        });
        Session(Rc::new(Inner {
            script: config.script,
            script_dir,
            out_dir,
            settings: config.settings.into_iter().collect(),
            shard: config.shard,
            collect: config.collect,
            rerun: config.rerun,
            reporter,
            git_commit: OnceCell::new(),
        }))
    }

    /// The script path, if any.
    pub fn script(&self) -> Option<&Path> {
        self.0.script.as_deref()
    }

    /// The directory of the script (empty path = current directory).
    pub fn script_dir(&self) -> &Path {
        &self.0.script_dir
    }

    /// The output directory (not created until asked for through `out_dir()`/`out_path()`).
    pub fn out_dir(&self) -> &Path {
        &self.0.out_dir
    }

    /// All `--set` settings.
    pub fn settings(&self) -> &BTreeMap<String, Setting> {
        &self.0.settings
    }

    /// One setting.
    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.0.settings.get(name)
    }

    /// `--shard`.
    pub fn shard(&self) -> Option<Shard> {
        self.0.shard
    }

    /// `--collect`.
    pub fn collect(&self) -> bool {
        self.0.collect
    }

    /// Whether `--rerun` was given (every `run_cells` recomputes its cells).
    pub fn rerun(&self) -> bool {
        self.0.rerun
    }

    /// The output reporter.
    pub fn reporter(&self) -> &Reporter {
        &self.0.reporter
    }

    /// `git rev-parse HEAD` in the script directory (computed once; None outside a repository
    /// or without git).
    pub fn git_commit(&self) -> Option<String> {
        self.0
            .git_commit
            .get_or_init(|| {
                let dir = if self.0.script_dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    &self.0.script_dir
                };
                let out = std::process::Command::new("git")
                    .arg("-C")
                    .arg(dir)
                    .args(["rev-parse", "HEAD"])
                    .stderr(std::process::Stdio::null())
                    .output()
                    .ok()?;
                let s = String::from_utf8(out.stdout).ok()?;
                (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_values_are_parsed_sensibly() {
        assert_eq!(parse_setting_value("8").as_int(), Ok(8));
        assert_eq!(parse_setting_value("-3").as_int(), Ok(-3));
        assert_eq!(parse_setting_value("2e-4").as_float(), Ok(2e-4));
        assert_eq!(parse_setting_value("0.5").as_float(), Ok(0.5));
        assert_eq!(parse_setting_value("true").as_bool(), Ok(true));
        assert!(parse_setting_value("()").is_unit());
        assert_eq!(
            parse_setting_value("path/x").into_string().unwrap(),
            "path/x"
        );
        assert_eq!(parse_setting_value("\"8\"").into_string().unwrap(), "8");
        assert_eq!(parse_setting_value("inf").into_string().unwrap(), "inf");
        assert_eq!(parse_setting_value("e5").into_string().unwrap(), "e5");
        let a = parse_setting_value("[\"en\", \"ur\"]")
            .into_array()
            .unwrap();
        assert_eq!(a.len(), 2);
        assert!(parse_assignment("r").is_err());
        assert!(parse_assignment("1r=3").is_err());
        let (k, s) = parse_assignment("lr=2e-4").unwrap();
        assert_eq!((k.as_str(), s.raw.as_str()), ("lr", "2e-4"));
    }

    #[test]
    fn shards() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!(s, Shard { index: 2, count: 3 });
        assert!(s.owns(1) && s.owns(4) && !s.owns(0) && !s.owns(2));
        for bad in ["0/2", "3/2", "1/0", "x/2", "12"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
