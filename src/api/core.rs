//! Core bindings that every study script needs: output paths, `--set` settings, timing, file
//! hashes, JSON and text files, environment, number formatting.
//!
//! These are also the reference examples of the binding helpers in [`crate::host`]: option maps
//! (`write_json_value`), domain-error mapping (`sha256_file`), a handle type (`Stopwatch`) and
//! interruptible native loops (`sleep`).

use std::path::{Component, Path, PathBuf};
use std::time::{Instant, SystemTime};

use rhai::{Dynamic, Engine, Map, FLOAT, INT};
use serde::Deserialize;

use crate::host::convert::{from_json, to_json};
use crate::host::files;
use crate::host::{
    bind, fail, interrupted, parse_opts, register_handle, Handle, ResultExt, RhaiResult, Session,
    Setting,
};

/// A stopwatch for timing parts of a study (a handle: copies share the same clock).
#[derive(Debug, Clone)]
pub struct Stopwatch {
    start: Instant,
    lap: Instant,
}

impl std::fmt::Display for Stopwatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stopwatch({:.3} s)", self.start.elapsed().as_secs_f64())
    }
}

/// Options of `write_json_value`.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct JsonOpts {
    /// Indent the output (default true).
    pretty: bool,
}

impl Default for JsonOpts {
    fn default() -> Self {
        JsonOpts { pretty: true }
    }
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"Helpers every study script needs: the `--set` settings, the output directory, files and
hashes for provenance, clocks, number formatting and the size limits.

Settings given with `peftlab run s.rhai --set key=value` are visible three ways: as top-level
constants (`r`), as `settings::r` (also inside `fn` bodies, where top-level variables are
invisible) and through `get_setting("r", default)`.

The std modules are imported by path: `import "std/study" as study;` (`grid`, `repeat`,
`exclude`, `matches`, `label`), `import "std/report" as report;` (`format_table`,
`print_table`, `num`, `pct`, `join`, `check_opts`) and `import "std/compare" as compare;`
(`beyond_anova`, `pair_cells`); they are listed at the end of this reference.

Limits: arrays hold at most 16,777,216 elements (nested arrays' elements counted), strings
256 MiB, maps 1,048,576 entries (nested maps' counted), and values nest at most 512 levels (for
`==`, printing, and conversion to JSON, tables, datasets and cell results). Beyond a limit a
script gets an error naming the limit (a system error, like rhai's own size limits: `try` does
not catch it when it comes from the engine or from printing); raise one with the global flags
`--max-array-size N`, `--max-string-size BYTES`, `--max-map-size N`, `--max-depth N` (0 turns a
size limit off). Size options (ranks, resample counts, sequence lengths, a checkpoint's layer
count) are also checked against the memory this machine has available before anything is
allocated, so they end in an error, not an aborted process."#;

/// Registers the core bindings.
pub fn register(engine: &mut Engine, session: &Session) {
    register_paths(engine, session);
    register_settings(engine, session);
    register_time(engine);
    register_files(engine);
    register_format(engine);
    register_limits(engine);
}

fn register_limits(engine: &mut Engine) {
    bind(
        engine,
        "limits",
        [],
        "
        The size limits in force, as a map: `max_array_size` (elements, nested arrays' included),
        `max_string_size` (bytes), `max_map_size` (entries, nested maps' included) and
        `max_depth` (levels of nesting). A value beyond a limit is a script error; raise a limit
        with the command-line flag of the same name (`--max-array-size N`, ...).

        ```rhai
        let l = limits();
        print(l.max_depth);                 // 512 unless --max-depth was given
        ```",
        || -> Map {
            let l = crate::limits::get();
            let n = |x: usize| Dynamic::from_int(INT::try_from(x).unwrap_or(INT::MAX));
            let mut m = Map::new();
            m.insert("max_array_size".into(), n(l.max_array_size));
            m.insert("max_string_size".into(), n(l.max_string_size));
            m.insert("max_map_size".into(), n(l.max_map_size));
            m.insert("max_depth".into(), n(l.max_depth));
            m
        },
    );
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn register_paths(engine: &mut Engine, session: &Session) {
    let s = session.clone();
    bind(
        engine,
        "out_dir",
        [],
        "The output directory (`--out`, default `runs/<script-stem>/`); created if missing.\n\nExample: `print(out_dir());` (`runs/grid` for `peftlab run grid.rhai`)",
        move || -> RhaiResult<String> {
            std::fs::create_dir_all(s.out_dir()).ctx("out_dir")?;
            Ok(path_str(s.out_dir()))
        },
    );
    let s = session.clone();
    bind(
        engine,
        "out_path",
        ["name"],
        "
        The path of `name` inside the output directory; creates its parent directories.

        ```rhai
        write_csv(t, out_path(\"tables/anova.csv\"));   // runs/<script>/tables/anova.csv
        ```",
        move |name: &str| -> RhaiResult<String> {
            let rel = Path::new(name);
            if name.is_empty()
                || rel.is_absolute()
                || rel.components().any(|c| matches!(c, Component::ParentDir))
            {
                return Err(fail(format!(
                    "out_path: expected a relative path without '..', got {name:?}"
                )));
            }
            let p = s.out_dir().join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).ctx("out_path")?;
            }
            Ok(path_str(&p))
        },
    );
    let s = session.clone();
    bind(
        engine,
        "script_dir",
        [],
        "The directory of the running script (`.` in the REPL); resolve data paths against it.\n\nExample: `let d = load_dataset(script_dir() + \"/data/train.jsonl\");`",
        move || {
            let d = s.script_dir();
            if d.as_os_str().is_empty() {
                ".".to_string()
            } else {
                path_str(d)
            }
        },
    );
    bind(
        engine,
        "exists",
        ["path"],
        "Whether a file or directory exists.\n\nExample: `if !exists(\"data/xnli\") { print(\"download XNLI first\"); }`",
        |p: &str| Path::new(p).exists(),
    );
    bind(
        engine,
        "env",
        ["name"],
        "The value of an environment variable, or `()` when unset.\n\nExample: `let dev = env(\"PEFTLAB_DEVICE\") ?? \"cpu\";`",
        |name: &str| -> Dynamic {
            std::env::var(name)
                .map(Dynamic::from)
                .unwrap_or(Dynamic::UNIT)
        },
    );
}

/// `get_setting(name, default)`: the setting converted to the default's type where that loses
/// nothing (int → float, anything → its text for a string default).
fn coerce_setting(name: &str, s: &Setting, default: Dynamic) -> RhaiResult<Dynamic> {
    let v = &s.value;
    let mismatch = |want: &str| {
        fail(format!(
            "get_setting: --set {name}={} is not {want} (the default is {default})",
            s.raw
        ))
    };
    if default.is_unit() {
        Ok(v.clone())
    } else if default.is_float() {
        v.as_float()
            .or_else(|_| v.as_int().map(|i| i as FLOAT))
            .map(Dynamic::from_float)
            .map_err(|_| mismatch("a number"))
    } else if default.is_int() {
        v.as_int()
            .map(Dynamic::from_int)
            .map_err(|_| mismatch("an integer"))
    } else if default.is_bool() {
        v.as_bool()
            .map(Dynamic::from_bool)
            .map_err(|_| mismatch("true or false"))
    } else if default.is_string() {
        Ok(if v.is_string() {
            v.clone()
        } else {
            s.raw.clone().into()
        })
    } else if default.is_array() && !v.is_array() {
        Err(mismatch("an array"))
    } else if default.is_map() && !v.is_map() {
        Err(mismatch("a map"))
    } else {
        Ok(v.clone())
    }
}

fn register_settings(engine: &mut Engine, session: &Session) {
    let s = session.clone();
    bind(
        engine,
        "get_setting",
        ["name", "default"],
        "
        The value of `--set name=...`, or `default` when it was not given.

        The setting is converted to the type of `default` where nothing is lost (an integer for a
        float default; the text for a string default); other mismatches are errors. Settings are
        also top-level constants (`r`) and, inside functions, `settings::r`.

        ```rhai
        let r = get_setting(\"r\", 8);          // peftlab run s.rhai --set r=16
        let lr = get_setting(\"lr\", 2e-4);     // --set lr=1 gives 1.0
        ```",
        move |name: &str, default: Dynamic| -> RhaiResult<Dynamic> {
            match s.setting(name) {
                Some(set) => coerce_setting(name, set, default),
                None => Ok(default),
            }
        },
    );
    let s = session.clone();
    bind(
        engine,
        "get_setting",
        ["name"],
        "The value of `--set name=...`; an error when it was not given.\n\nExample: `let model_path = get_setting(\"model\");` (`peftlab run s.rhai --set model=models/tiny`)",
        move |name: &str| -> RhaiResult<Dynamic> {
            match s.setting(name) {
                Some(set) => Ok(set.value.clone()),
                None => {
                    let given: Vec<&str> = s.settings().keys().map(String::as_str).collect();
                    Err(fail(format!("get_setting: no setting '{name}' (given: {}); pass --set {name}=... or use get_setting(\"{name}\", default)", if given.is_empty() { "none".to_string() } else { given.join(", ") })))
                }
            }
        },
    );
    let s = session.clone();
    bind(
        engine,
        "has_setting",
        ["name"],
        "Whether `--set name=...` was given.\n\nExample: `if has_setting(\"quick\") { print(\"quick run\"); }`",
        move |name: &str| s.setting(name).is_some(),
    );
    let s = session.clone();
    bind(
        engine,
        "settings",
        [],
        "All `--set` settings as a map.\n\nExample: `for k in settings().keys() { print(k); }`",
        move || -> Map {
            s.settings()
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.value.clone()))
                .collect()
        },
    );
    let s = session.clone();
    bind(
        engine,
        "shard",
        [],
        "`#{ index, count }` of `--shard I/N` (index 1-based), or `()`.\n\n```rhai\nlet s = shard();\nif s != () { print(`shard ${s.index} of ${s.count}`); }\n```",
        move || -> Dynamic {
            match s.shard() {
                Some(sh) => {
                    let mut m = Map::new();
                    m.insert("index".into(), Dynamic::from_int(sh.index as INT));
                    m.insert("count".into(), Dynamic::from_int(sh.count as INT));
                    m.into()
                }
                None => Dynamic::UNIT,
            }
        },
    );
}

fn sleep_for(secs: FLOAT) -> RhaiResult<()> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(fail(format!(
            "sleep: expected a non-negative number of seconds, got {secs}"
        )));
    }
    let until = Instant::now() + std::time::Duration::from_secs_f64(secs.min(1e9));
    while Instant::now() < until {
        interrupted()?;
        std::thread::sleep((until - Instant::now()).min(std::time::Duration::from_millis(10)));
    }
    Ok(())
}

fn register_time(engine: &mut Engine) {
    bind(
        engine,
        "now",
        [],
        "Seconds since 1970-01-01 UTC (wall clock, float); see `elapsed`.\n\nExample: `let t0 = now(); m.train(d, #{}); print(now() - t0);`",
        || files::unix_seconds(SystemTime::now()),
    );
    bind(
        engine,
        "elapsed",
        ["t"],
        "
        Seconds since `t`, a value of `now()`.

        ```rhai
        let t = now();
        m.train(d, #{});
        print(`training took ${elapsed(t)} s`);
        ```",
        |t: FLOAT| files::unix_seconds(SystemTime::now()) - t,
    );
    bind(
        engine,
        "elapsed",
        ["t"],
        "Seconds since `t` (integer seconds since 1970).\n\nExample: `let t = 1700000000; print(elapsed(t) > 0.0);`",
        |t: INT| files::unix_seconds(SystemTime::now()) - t as FLOAT,
    );
    bind(
        engine,
        "timestamp",
        [],
        "The current time as an RFC 3339 UTC string (`2024-02-29T13:05:09Z`).\n\nExample: `write_text(timestamp(), out_path(\"started.txt\"));`",
        || files::rfc3339_utc(SystemTime::now()),
    );
    bind(
        engine,
        "sleep",
        ["seconds"],
        "Waits `seconds` (Ctrl-C interrupts).\n\nExample: `sleep(0.5);`",
        sleep_for,
    );
    bind(
        engine,
        "sleep",
        ["seconds"],
        "Waits `seconds` (Ctrl-C interrupts).\n\nExample: `sleep(0.5);`",
        |s: INT| sleep_for(s as FLOAT),
    );

    register_handle::<Stopwatch>(engine, "Stopwatch");
    bind(
        engine,
        "stopwatch",
        [],
        "
        A running stopwatch (a handle: copies share the clock).

        ```rhai
        let sw = stopwatch();
        // ... work ...
        print(sw.lap());       // seconds since the previous lap (or the start)
        print(sw.elapsed());   // seconds since the start
        ```",
        || {
            let now = Instant::now();
            Handle::new(Stopwatch {
                start: now,
                lap: now,
            })
        },
    );
    bind(
        engine,
        "elapsed",
        ["sw"],
        "Seconds since the stopwatch started.\n\nExample: `let sw = stopwatch(); m.train(d, #{}); print(sw.elapsed());`",
        |sw: &mut Handle<Stopwatch>| -> RhaiResult<FLOAT> {
            Ok(sw.borrow("elapsed")?.start.elapsed().as_secs_f64())
        },
    );
    bind(
        engine,
        "lap",
        ["sw"],
        "Seconds since the previous `lap` (or the start); starts a new lap.\n\nExample: `let sw = stopwatch(); m.train(d, #{}); print(sw.lap()); m.evaluate(\"xnli\", #{ data: \"data/xnli\" }); print(sw.lap());`",
        |sw: &mut Handle<Stopwatch>| -> RhaiResult<FLOAT> {
            let mut w = sw.borrow_mut("lap")?;
            let secs = w.lap.elapsed().as_secs_f64();
            w.lap = Instant::now();
            Ok(secs)
        },
    );
    bind(
        engine,
        "reset",
        ["sw"],
        "Restarts the stopwatch.\n\nExample: `sw.reset();`",
        |sw: &mut Handle<Stopwatch>| -> RhaiResult<()> {
            let mut w = sw.borrow_mut("reset")?;
            w.start = Instant::now();
            w.lap = w.start;
            Ok(())
        },
    );
}

fn register_files(engine: &mut Engine) {
    bind(engine, "sha256_file", ["path"], "
        Lowercase hex SHA-256 of a file (for provenance: data and weight files).

        ```rhai
        run_cells(\"grid\", cells, |c| #{ acc: 0.5, provenance: #{ data_sha256: sha256_file(\"data/train.jsonl\") } });
        ```", |p: &str| files::sha256_file(Path::new(p)).ctx("sha256_file"));
    bind(
        engine,
        "sha256",
        ["text"],
        "Lowercase hex SHA-256 of a string (UTF-8 bytes).\n\nExample: `sha256(\"abc\")` is `\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"`.",
        |t: &str| files::sha256_bytes(t.as_bytes()),
    );
    bind(
        engine,
        "read_json_value",
        ["path"],
        "Reads a JSON file as script values (objects → maps, null → `()`); the inverse of \
         `write_json_value`. `read_json` reads records as a Table.\n\nExample: `let cfg = read_json_value(\"config.json\"); print(cfg.lr);`",
        |p: &str| -> RhaiResult<Dynamic> {
            Ok(from_json(
                &files::read_json(Path::new(p)).ctx("read_json_value")?,
            ))
        },
    );
    bind(
        engine,
        "write_json_value",
        ["value", "path"],
        "Writes any plain value (map, array, number, ...) as pretty JSON, atomically.\n\nExample: `write_json_value(#{ acc: 0.81, langs: [\"en\", \"ur\"] }, out_path(\"summary.json\"));`",
        |v: Dynamic, p: &str| -> RhaiResult<()> { write_json_value(v, p, Map::new()) },
    );
    bind(
        engine,
        "write_json_value",
        ["value", "path", "opts"],
        "
        Writes a plain value as JSON, atomically; creates parent directories.

        Options: `pretty` (bool, default true).

        ```rhai
        write_json_value(#{ acc: 0.81 }, out_path(\"summary.json\"), #{ pretty: false });
        ```",
        write_json_value,
    );
    bind(
        engine,
        "read_text",
        ["path"],
        "Reads a UTF-8 text file.\n\nExample: `let prompt = read_text(\"prompts/system.txt\");`",
        |p: &str| {
            std::fs::read_to_string(p)
                .map_err(|e| fail(format!("read_text: cannot read '{p}': {e}")))
        },
    );
    bind(
        engine,
        "write_text",
        ["text", "path"],
        "Writes a text file atomically; creates parent directories. The text comes first: `write_text(text, path)` (a path over 120 characters is cut to its first 80 in errors, with its length and a hint at the argument order).\n\nExample: `write_text(m.generate(\"Once upon a time\", #{}), out_path(\"sample.txt\"));`",
        |t: &str, p: &str| files::write_atomic(&PathBuf::from(p), t.as_bytes()).ctx("write_text"),
    );
}

fn write_json_value(v: Dynamic, p: &str, opts: Map) -> RhaiResult<()> {
    let o: JsonOpts = parse_opts("write_json_value", &opts)?;
    let json = to_json(&v).map_err(|e| fail(format!("write_json_value: {e}")))?;
    files::write_json(Path::new(p), &json, o.pretty).ctx("write_json_value")
}

fn format_number(x: FLOAT, digits: INT) -> RhaiResult<String> {
    if !(0..=17).contains(&digits) {
        return Err(fail(format!(
            "format_number: digits must be 0..=17, got {digits}"
        )));
    }
    let d = digits as usize;
    Ok(if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if x != 0.0 && (x.abs() < 0.5 * 10f64.powi(-(digits as i32)) || x.abs() >= 1e15) {
        format!("{x:.d$e}")
    } else {
        format!("{x:.d$}")
    })
}

fn register_format(engine: &mut Engine) {
    bind(
        engine,
        "format_number",
        ["x", "digits"],
        "
        A float with `digits` decimals; numbers too small to show (or ≥ 1e15) in scientific
        notation; NaN as `NaN`.

        ```rhai
        format_number(0.81234, 3)   // \"0.812\"
        format_number(2e-6, 2)      // \"2.00e-6\"
        ```",
        |x: FLOAT, digits: INT| format_number(x, digits),
    );
    bind(
        engine,
        "format_number",
        ["x", "digits"],
        "An integer as text (digits are ignored).\n\nExample: `format_number(42, 3)` is `\"42\"`.",
        |x: INT, _digits: INT| x.to_string(),
    );
    bind(
        engine,
        "format_number",
        ["x"],
        "A float with 3 decimals.\n\nExample: `format_number(0.81234)` is `\"0.812\"`.",
        |x: FLOAT| format_number(x, 3),
    );
    bind(
        engine,
        "format_number",
        ["x"],
        "An integer as text.\n\nExample: `format_number(42)` is `\"42\"`.",
        |x: INT| x.to_string(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(format_number(0.81234, 3).unwrap(), "0.812");
        assert_eq!(format_number(2e-6, 2).unwrap(), "2.00e-6");
        assert_eq!(format_number(-1.5, 0).unwrap(), "-2");
        assert_eq!(format_number(0.0, 2).unwrap(), "0.00");
        assert_eq!(format_number(f64::NAN, 2).unwrap(), "NaN");
        assert!(format_number(1.0, -1).is_err());
    }
}
