//! No panic reaches the user: every registered native function, called from a script with
//! wrong-typed, missing, extra, `()` and edge-case arguments, must end in a script error (or a
//! result), never in a Rust panic (exit code 101, "panicked" on stderr) or a crash by signal.
//!
//! The list of functions comes from `peftlab doc --json` (the engine's metadata), so bindings
//! added later are covered automatically. For each function the test generates calls where one
//! parameter at a time takes each edge value while the others get a valid default for their
//! declared type, plus calls with no arguments and with one argument too many. All calls of all
//! functions go into one script, each inside `try { } catch { }`, preceded by a `print` marker
//! so that a failure names the offending call.
//!
//! Handle parameters (`Model`, `Dataset`, ...) need a value of that type: [`HANDLE_CONSTRUCTORS`]
//! gives a script expression for each handle type; a function taking a handle type without an
//! entry is skipped and listed in the test output (add an entry when you add a handle type).
//! [`SKIP`] lists functions that legitimately run for a long time on valid edge inputs.
//!
//! A second test does the same for option maps: it discovers the keys of every function's
//! option map (an unknown key makes the error list them) and the values of enum-like keys (a
//! string that is not a variant makes the error list the variants), then puts every extreme value
//! of [`OPTION_EDGE_VALUES`] (i64::MAX, −1, 0, 10¹², NaN, ±inf, an array nested 10,000 deep,
//! wrong types) into every key, alone and next to each variant of each enum-like key.

use crate::common;

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

/// Script expressions that build a value of each handle type (cheap, no files needed).
const HANDLE_CONSTRUCTORS: &[(&str, &str)] = &[
    ("Stopwatch", "stopwatch()"),
    ("Tensor", "tensor([[1.0, 2.0], [3.0, 4.0]])"),
    ("Table", "table([#{ g: \"a\", v: 1.0 }, #{ g: \"a\", v: 2.0 }, #{ g: \"b\", v: 3.0 }, #{ g: \"b\", v: 5.0 }])"),
    ("Dataset", "dataset([#{ instruction: \"i\", input: \"\", output: \"o\", lang: \"de\" }])"),
    ("Model", concat!("load_model(\"", env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/models/tiny-llama\")")),
    ("Adapter", concat!("load_model(\"", env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/models/tiny-llama\").add_adapter(#{ r: 2 })")),
];

/// Functions not called, with the reason.
const SKIP: &[(&str, &str)] = &[(
    "sleep",
    "waits as long as asked: sleep(9223372036854775807) never returns",
)];

/// Edge values tried in every parameter position.
const EDGE_VALUES: &[&str] = &[
    "()",
    "0",
    "-1",
    "1",
    "9223372036854775807",
    "-9223372036854775807",
    "0.0",
    "-1.5",
    "1e300",
    "1e12",
    "1000000000000",
    "parse_float(\"NaN\")",
    "parse_float(\"inf\")",
    "-parse_float(\"inf\")",
    "__deep",
    "\"\"",
    "\"x\"",
    "\"no/such/dir/file.bin\"",
    "'c'",
    "true",
    "[]",
    "[1, \"a\", (), [2.5]]",
    "#{}",
    "#{ zzz: 1, r: -1 }",
    "|x| x",
];

/// A valid-looking default for a parameter of the given friendly type.
fn default_for(typ: &str) -> Option<String> {
    let v = match typ {
        "int" => "1",
        "float" => "0.5",
        "bool" => "true",
        "string" => "\"x\"",
        "char" => "'c'",
        "array" => "[]",
        "map" => "#{}",
        "Fn" => "|x| x",
        "blob" => "blob(2)",
        "any" | "" | "()" => "()",
        other => {
            return HANDLE_CONSTRUCTORS
                .iter()
                .find(|(t, _)| *t == other)
                .map(|(_, c)| c.to_string())
        }
    };
    Some(v.to_string())
}

/// The parameter types of a function of `peftlab doc --json`, and a valid default argument
/// for each (None when a handle type has no constructor).
fn signature_defaults(f: &serde_json::Value) -> (Vec<String>, Option<Vec<String>>) {
    let types: Vec<String> = f["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap_or("").to_string())
        .collect();
    let defaults = types.iter().map(|t| default_for(t)).collect();
    (types, defaults)
}

/// One call expression (or statement) for a function name and argument list.
fn call(name: &str, args: &[String]) -> Option<String> {
    if let Some(prop) = name.strip_prefix("get$") {
        return Some(format!("let __o = {}; __o.{prop};", args.first()?));
    }
    if let Some(prop) = name.strip_prefix("set$") {
        return Some(format!(
            "let __o = {}; __o.{prop} = {};",
            args.first()?,
            args.get(1)?
        ));
    }
    if name == "index$get$" {
        return Some(format!(
            "let __o = {}; __o[{}];",
            args.first()?,
            args.get(1)?
        ));
    }
    if name == "index$set$" {
        return Some(format!(
            "let __o = {}; __o[{}] = {};",
            args.first()?,
            args.get(1)?,
            args.get(2)?
        ));
    }
    if name.contains('$') {
        return None;
    }
    Some(format!("{name}({});", args.join(", ")))
}

#[test]
fn no_registered_function_panics_on_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let doc = common::run(dir.path(), &["doc", "--json"]);
    assert_eq!(doc.code, Some(0), "{}", doc.stderr);
    let fns: serde_json::Value = serde_json::from_str(&doc.stdout).unwrap();
    let natives: Vec<&serde_json::Value> = fns
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["module"] == "")
        .collect();
    assert!(
        natives.len() >= 30,
        "too few functions listed: {}",
        natives.len()
    );

    let mut script: Vec<String> = Vec::new();
    let mut skipped = Vec::new();
    let mut calls = 0usize;
    let mut seen_arity = std::collections::HashSet::new();
    for f in &natives {
        let name = f["name"].as_str().unwrap();
        let sig = f["signature"].as_str().unwrap();
        if let Some((_, why)) = SKIP.iter().find(|(n, _)| *n == name) {
            skipped.push(format!("{sig}: {why}"));
            continue;
        }
        let (_, defaults) = signature_defaults(f);
        let Some(defaults) = defaults else {
            skipped.push(format!(
                "{sig}: no constructor for a parameter type in HANDLE_CONSTRUCTORS"
            ));
            continue;
        };
        let mut arg_lists: Vec<Vec<String>> = Vec::new();
        if seen_arity.insert((name.to_string(), 0usize)) {
            arg_lists.push(Vec::new());
        }
        let mut extra = defaults.clone();
        extra.push("()".into());
        arg_lists.push(extra);
        arg_lists.push(defaults.clone());
        for i in 0..defaults.len() {
            for v in EDGE_VALUES {
                let mut args = defaults.clone();
                args[i] = v.to_string();
                arg_lists.push(args);
            }
        }
        for args in arg_lists {
            let Some(stmt) = call(name, &args) else {
                continue;
            };
            calls += 1;
            script.push(stmt);
        }
    }
    let ended = run_calls(
        dir.path(),
        "nopanic",
        DEEP,
        &script,
        Duration::from_secs(600),
    );
    println!(
        "{calls} calls to {} functions ({ended} ended the script at a limit); skipped:\n  {}",
        natives.len(),
        skipped.join("\n  ")
    );
}

/// Extreme values put into option maps, besides the wrong types of [`EDGE_VALUES`].
const OPTION_EDGE_VALUES: &[&str] = &[
    "9223372036854775807",
    "-9223372036854775807",
    "-1",
    "0",
    "1000000000000",
    "1e12",
    "parse_float(\"NaN\")",
    "parse_float(\"inf\")",
    "-parse_float(\"inf\")",
    "__deep",
    "\"x\"",
    "[1, \"a\"]",
    "#{ zzz: 1 }",
    "true",
];

/// Options that some values of an enum-like key require before anything else is checked (so
/// that the other keys are reached): `(function, key, value, extra options)`.
const REQUIRED_WITH: &[(&str, &str, &str, &str)] = &[
    ("add_adapter", "method", "adalora", "total_steps: 10"),
    (
        "add_adapter",
        "method",
        "flix",
        "features: #{ lang: [\"en\", \"de\"] }",
    ),
];

/// Arguments that reach a function's option parsing where the generic defaults do not:
/// `(function, map parameter index, arguments)`.
const OPTION_ARGS: &[(&str, usize, &[&str])] = &[(
    "bactrian_partition",
    1,
    &[
        "#{ de: dataset([#{ instruction: \"a\", output: \"b\" }, #{ instruction: \"c\", output: \"d\" }]), \
         en: dataset([#{ instruction: \"e\", output: \"f\" }, #{ instruction: \"g\", output: \"h\" }]) }",
        "#{}",
    ],
)];

/// Maps that are data, not options (their keys are the caller's names).
const NOT_OPTIONS: &[(&str, usize)] = &[
    ("bactrian_partition", 0),
    ("save_tensors", 0),
    ("set_features", 1),
];

/// One function with an option-map parameter.
struct OptFn {
    name: String,
    defaults: Vec<String>,
    map_index: usize,
}

/// The functions of `peftlab doc --json` with a `map` parameter, with valid defaults for the
/// other parameters.
fn option_functions(dir: &std::path::Path) -> Vec<OptFn> {
    let doc = common::run(dir, &["doc", "--json"]);
    assert_eq!(doc.code, Some(0), "{}", doc.stderr);
    let fns: serde_json::Value = serde_json::from_str(&doc.stdout).unwrap();
    let mut out = Vec::new();
    for f in fns.as_array().unwrap().iter().filter(|f| f["module"] == "") {
        let name = f["name"].as_str().unwrap().to_string();
        if name.contains('$') || SKIP.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let (types, Some(defaults)) = signature_defaults(f) else {
            continue;
        };
        for (i, t) in types.iter().enumerate() {
            if *t != "map" || NOT_OPTIONS.contains(&(name.as_str(), i)) {
                continue;
            }
            let defaults = match OPTION_ARGS.iter().find(|(n, j, _)| *n == name && *j == i) {
                Some((_, _, args)) => args.iter().map(|a| a.to_string()).collect(),
                None => defaults.clone(),
            };
            out.push(OptFn {
                name: name.clone(),
                defaults,
                map_index: i,
            });
        }
    }
    out
}

/// The call of `f` with `opts` as its option map.
fn opt_call(f: &OptFn, opts: &str) -> String {
    let mut args = f.defaults.clone();
    args[f.map_index] = opts.to_string();
    call(&f.name, &args).unwrap_or_default()
}

/// Runs a generated script; returns its stdout. Fails on a panic, a crash or a timeout.
fn run_script(dir: &std::path::Path, name: &str, script: &str, limit: Duration) -> String {
    common::write(dir, name, script);
    let child = common::peftlab(dir)
        .args(["run", name, "--out", "out"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = common::wait_with_timeout(child, limit);
    r.assert_no_panic();
    assert_eq!(
        r.code,
        Some(0),
        "the generated script failed outside try/catch:\n{}",
        r.stderr
    );
    assert!(r.stdout.ends_with("all calls done\n"), "{}", r.stderr);
    r.stdout
}

/// Whether a script ended at one of the engine's limits (a system error that `try` cannot
/// catch, like rhai's own size limits): then the run goes on after that call.
fn ended_at_limit(r: &common::Run) -> bool {
    r.code == Some(1)
        && (r.stderr.contains("over the limit of") || r.stderr.contains("is nested deeper than"))
}

/// Runs `calls`, each inside `try { } catch { }` after a `print` marker, in scripts that start
/// with `prelude`; a call that ends the script at a limit is skipped and the run resumes after
/// it. Fails on a panic, a crash, a timeout or any other uncaught error. Returns how many calls
/// ended a script.
fn run_calls(
    dir: &std::path::Path,
    name: &str,
    prelude: &str,
    calls: &[String],
    limit: Duration,
) -> usize {
    let mut from = 0;
    let mut ended = 0;
    let start = std::time::Instant::now();
    while from < calls.len() {
        let mut script = String::from(prelude);
        for (i, stmt) in calls.iter().enumerate().skip(from) {
            let marker = format!("{i}: {stmt}")
                .replace('\\', "\\\\")
                .replace('`', "'")
                .replace("${", "$ {");
            let _ = writeln!(
                script,
                "print(`{marker}`);\ntry {{ {stmt} }} catch (e) {{ }}"
            );
        }
        script.push_str("print(\"all calls done\");\n");
        let file = format!("{name}.rhai");
        common::write(dir, &file, &script);
        let child = common::peftlab(dir)
            .args(["run", &file, "--out", "out"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let left = limit
            .saturating_sub(start.elapsed())
            .max(Duration::from_secs(30));
        let r = common::wait_with_timeout(child, left);
        r.assert_no_panic();
        if r.code == Some(0) {
            assert!(r.stdout.ends_with("all calls done\n"), "{}", r.stderr);
            return ended;
        }
        assert!(
            ended_at_limit(&r),
            "the generated script failed outside try/catch:\n{}",
            r.stderr
        );
        let last = r
            .stdout
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once(": ")
                    .and_then(|(n, _)| n.parse::<usize>().ok())
            })
            .expect("no call marker before the limit error");
        assert!(last >= from, "no progress at call {from}");
        ended += 1;
        from = last + 1;
    }
    ended
}

/// The names listed after "expected one of: " in an error message.
fn expected_names(msg: &str) -> Option<Vec<String>> {
    let rest = msg.split("expected one of: ").nth(1)?;
    let list = rest.split(')').next()?;
    Some(list.split(", ").map(|s| s.trim().to_string()).collect())
}

const DEEP: &str = "let __deep = 0;\nfor __i in 0..10000 { __deep = [__deep]; }\n";

#[test]
fn no_option_key_panics_on_extreme_values() {
    let dir = tempfile::tempdir().unwrap();
    let fns = option_functions(dir.path());
    assert!(fns.len() >= 20, "too few option functions: {}", fns.len());

    // 1. The keys of each option map: parse_opts lists them for an unknown key.
    let mut probe = String::new();
    for (i, f) in fns.iter().enumerate() {
        let _ = writeln!(
            probe,
            "try {{ {} }} catch (e) {{ print(`@@{i} ${{e}}`); }}",
            opt_call(f, "#{ zz_probe: 1 }")
        );
    }
    probe.push_str("print(\"all calls done\");\n");
    let out = run_script(dir.path(), "keys.rhai", &probe, Duration::from_secs(300));
    let mut keys: Vec<Vec<String>> = vec![Vec::new(); fns.len()];
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("@@") else {
            continue;
        };
        let (i, msg) = rest.split_once(' ').unwrap();
        if msg.contains("'zz_probe'") {
            keys[i.parse::<usize>().unwrap()] = expected_names(msg).unwrap_or_default();
        }
    }
    let without: Vec<String> = fns
        .iter()
        .zip(&keys)
        .filter(|(_, k)| k.is_empty())
        .map(|(f, _)| format!("{} (argument {})", f.name, f.map_index + 1))
        .collect();
    assert!(
        without.is_empty(),
        "no option keys found for {without:?}: give them arguments in OPTION_ARGS, or list \
         data maps in NOT_OPTIONS"
    );
    let with_keys = keys.iter().filter(|k| !k.is_empty()).count();
    assert!(with_keys >= 20, "keys found for {with_keys} functions only");

    // 2. The values of enum-like keys (a string that is not a variant lists the variants).
    let mut probe = String::new();
    for (i, f) in fns.iter().enumerate() {
        for (j, k) in keys[i].iter().enumerate() {
            let _ = writeln!(
                probe,
                "try {{ {} }} catch (e) {{ print(`@@{i}/{j} ${{e}}`); }}",
                opt_call(f, &format!("#{{ {k}: \"zz_probe\" }}"))
            );
        }
    }
    probe.push_str("print(\"all calls done\");\n");
    let out = run_script(
        dir.path(),
        "variants.rhai",
        &probe,
        Duration::from_secs(300),
    );
    let mut bases: Vec<Vec<String>> = vec![vec!["".to_string()]; fns.len()];
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("@@") else {
            continue;
        };
        let (ij, msg) = rest.split_once(' ').unwrap();
        let (i, j) = ij.split_once('/').unwrap();
        let (i, j): (usize, usize) = (i.parse().unwrap(), j.parse().unwrap());
        if !msg.contains("'zz_probe'") {
            continue;
        }
        let key = &keys[i][j];
        for v in expected_names(msg).unwrap_or_default() {
            let extra = REQUIRED_WITH
                .iter()
                .find(|(f, k, val, _)| *f == fns[i].name && k == key && *val == v)
                .map(|(_, _, _, e)| format!(", {e}"))
                .unwrap_or_default();
            bases[i].push(format!("{key}: \"{v}\"{extra}"));
        }
    }

    // 3. Every key of every option map, under every base, takes every extreme value.
    let mut script: Vec<String> = Vec::new();
    let mut calls = 0usize;
    for (i, f) in fns.iter().enumerate() {
        for base in &bases[i] {
            for k in &keys[i] {
                if base.starts_with(&format!("{k}:")) || base.contains(&format!(", {k}:")) {
                    continue;
                }
                for v in OPTION_EDGE_VALUES {
                    let opts = if base.is_empty() {
                        format!("#{{ {k}: {v} }}")
                    } else {
                        format!("#{{ {base}, {k}: {v} }}")
                    };
                    calls += 1;
                    script.push(opt_call(f, &opts));
                }
            }
        }
    }
    let ended = run_calls(
        dir.path(),
        "options",
        DEEP,
        &script,
        Duration::from_secs(900),
    );
    let n_bases: usize = bases.iter().map(Vec::len).sum();
    println!(
        "{calls} calls over {} option maps ({with_keys} with discovered keys, {n_bases} bases \
         with enum values, {ended} ended the script at a limit)",
        fns.len(),
    );
}

/// Runs a script file in a fresh directory; returns the result (no panic allowed).
fn run_one(dir: &std::path::Path, text: &str) -> common::Run {
    common::write(dir, "case.rhai", text);
    let child = common::peftlab(dir)
        .args(["run", "case.rhai", "--out", "out"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = common::wait_with_timeout(child, Duration::from_secs(120));
    r.assert_no_panic();
    r
}

/// Asserts a script error (exit 1) whose message contains `msg`, at `line:col` of case.rhai.
fn assert_script_error(r: &common::Run, msg: &str, line_col: &str) {
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains(msg), "expected {msg:?} in:\n{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(" --> case.rhai:{line_col}")),
        "expected position {line_col} in:\n{}",
        r.stderr
    );
}

const TINY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/models/tiny-llama"
);

#[test]
fn deeply_nested_values_are_script_errors_not_stack_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let deep = "let a = 0;\nfor i in 0..6000 { a = [a]; }\nlet b = a;\n";
    let too_deep = "is nested deeper than 512 levels (raise the limit with --max-depth)";
    // line 4 of each script holds the operation.
    for (op, pos) in [
        ("let same = a == b;", "4:14"),
        ("let s = `${a}`;", "4:"),
        ("print(a);", "4:"),
        ("let t = table([#{ v: a }]);", "4:9"),
        ("write_json_value(a, out_path(\"a.json\"));", "4:1"),
        (
            "let d = dataset([#{ instruction: \"i\", output: \"o\", v: a }]); d.hash();",
            "4:9",
        ),
        (
            "let t = run_cells(\"c\", [#{ x: 1 }], |c| #{ v: a });",
            "4:9",
        ),
    ] {
        let r = run_one(dir.path(), &format!("{deep}{op}\nprint(\"after\");\n"));
        assert_script_error(&r, too_deep, pos);
        assert!(!r.stdout.contains("after"), "{op} went on: {}", r.stdout);
    }
    // Within the limit everything works, and --max-depth raises the limit.
    let r = run_one(
        dir.path(),
        "let a = 0;\nfor i in 0..500 { a = [a]; }\nlet b = a;\nprint(a == b);\n",
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "true\n"),
        "{}",
        r.stderr
    );
    common::write(
        dir.path(),
        "raised.rhai",
        "let a = 0;\nfor i in 0..6000 { a = [a]; }\nlet b = a;\nprint(a == b);\n",
    );
    let r = common::run(dir.path(), &["--max-depth", "7000", "run", "raised.rhai"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "true\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn huge_sizes_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(String, &str, &str)> = vec![
        ("let a = [];\na.pad(1000000000000, 0);".into(), "Size of array", "2:3"),
        ("let s = \"x\";\ns.pad(1000000000000, 'y');".into(), "Length of string", "2:3"),
        (
            "import \"std/study\" as study;\nlet v = []; v.pad(1000, 0);\nlet g = study::grid(#{ a: v, b: v, c: v });".into(),
            "grid: the spec has 1000 × 1000 × 1000 cells, more than the array limit of 16777216",
            "3:16",
        ),
        (
            format!("let m = load_model({TINY:?}); let ids = []; ids.pad(50000, 1);\nlet x = m.logits([ids]);"),
            "logits: row 0 has 50000 ids, more than this model's max_position_embeddings (256)",
            "2:11",
        ),
        (
            format!("let m = load_model({TINY:?});\nm.add_adapter(#{{ r: 1000000000 }});"),
            "add_adapter: the lora adapter with r = 1000000000 on",
            "2:3",
        ),
        (
            format!("let m = load_model({TINY:?});\nm.add_adapter(#{{ method: \"vera\", r: 9223372036854775807 }});"),
            "add_adapter: the vera adapter with r = 9223372036854775807 on 4 modules",
            "2:3",
        ),
        (
            format!("let m = load_model({TINY:?});\nm.add_adapter(#{{ method: \"adalora\", total_steps: 10, init_r: 9223372036854775807 }});"),
            "add_adapter: the adalora adapter with init_r = 9223372036854775807 on",
            "2:3",
        ),
        (
            format!("let m = load_model({TINY:?});\nm.add_adapter(#{{ method: \"flix\", features: #{{ lang: [\"en\"] }}, feature_rank: #{{ lang: 9223372036854775807 }} }});"),
            "add_adapter: the flix adapter with r = 8 and feature_rank = {\"lang\": 9223372036854775807} on",
            "2:3",
        ),
        (
            format!("let m = load_model({TINY:?});\nlet s = m.generate(\"Hallo\", #{{ max_new_tokens: 1000000000000 }});"),
            "generate: max_new_tokens = 1000000000000 is more than this model's max_position_embeddings (256)",
            "2:11",
        ),
        (
            "let a = [0.1, 0.2, 0.3];\nlet p = paired_bootstrap(a, a, #{ n: 9223372036854775807 });".into(),
            "paired_bootstrap: n = 9223372036854775807 resamples needs",
            "2:9",
        ),
        (
            format!("let m = load_model({TINY:?});\nm.add_adapter(#{{ method: \"dora\", r: 9223372036854775807 }});"),
            "add_adapter: the dora adapter with r = 9223372036854775807 on 14 modules",
            "2:3",
        ),
        (
            "let a = [0.1, 0.2, 0.3];\nlet p = paired_bootstrap(a, a, #{ n: 1000000000000 });".into(),
            "paired_bootstrap: n = 1000000000000 resamples needs 8.0 TB, more than the",
            "2:9",
        ),
    ];
    for (text, msg, pos) in &cases {
        let r = run_one(dir.path(), text);
        assert_script_error(&r, msg, pos);
    }
    // A config.json promising 10¹² layers is refused before loading anything.
    let model = dir.path().join("huge");
    std::fs::create_dir_all(&model).unwrap();
    for e in std::fs::read_dir(TINY).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, model.join(p.file_name().unwrap())).unwrap();
    }
    let cfg = std::fs::read_to_string(model.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["num_hidden_layers"] = serde_json::json!(1_000_000_000_000u64);
    std::fs::write(model.join("config.json"), v.to_string()).unwrap();
    let r = run_one(dir.path(), "let m = load_model(\"huge\");");
    assert_script_error(&r, "config.json: a model with 1000000000000 layers", "1:9");
}

/// Starts a script, presses Ctrl-C after `after`, and expects it to stop within 20 s.
fn interrupt_after(text: &str, after: Duration) {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "long.rhai", text);
    let child = common::peftlab(dir.path())
        .args(["run", "long.rhai", "--out", "out"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(after);
    common::sigint(pid);
    let start = std::time::Instant::now();
    let r = common::wait_with_timeout(child, Duration::from_secs(60));
    r.assert_no_panic();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?} to stop",
        start.elapsed()
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("interrupted"), "{}", r.stderr);
    assert!(!r.stdout.contains("finished"), "{}", r.stdout);
}

#[test]
fn long_native_loops_stop_on_ctrl_c() {
    // 10⁸ power iterations of PiSSA's randomized SVD.
    interrupt_after(
        &format!(
            "let m = load_model({TINY:?});\nprint(\"loaded\");\n\
             m.add_adapter(#{{ method: \"pissa\", init: \"pissa_niter_100000000\" }});\nprint(\"finished\");\n"
        ),
        Duration::from_secs(3),
    );
    // A bootstrap of 2·10⁸ resamples over 1,000 items.
    interrupt_after(
        "let a = []; a.pad(1000, 0.5);\nlet b = []; b.pad(1000, 0.25);\n\
         let p = paired_bootstrap(a, b, #{ n: 200000000 });\nprint(\"finished\");\n",
        Duration::from_secs(2),
    );
    // The logit lens over 100,000 texts.
    interrupt_after(
        &format!(
            "let m = load_model({TINY:?});\nlet texts = []; texts.pad(100000, \"Hallo Welt, wie geht es\");\n\
             let t = m.layer_languages(texts, #{{ langs: [\"de\", \"en\"] }});\nprint(\"finished\");\n"
        ),
        Duration::from_secs(3),
    );
}
