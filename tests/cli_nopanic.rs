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

mod common;

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
    "parse_float(\"NaN\")",
    "parse_float(\"inf\")",
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

    let mut script = String::new();
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
        let types: Vec<&str> = f["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap_or(""))
            .collect();
        let Some(defaults) = types
            .iter()
            .map(|t| default_for(t))
            .collect::<Option<Vec<String>>>()
        else {
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
            let marker = format!("{calls}: {stmt}")
                .replace('\\', "\\\\")
                .replace('`', "'");
            let _ = writeln!(
                script,
                "print(`{}`);\ntry {{ {stmt} }} catch (e) {{ }}",
                marker.replace("${", "$ {")
            );
        }
    }
    script.push_str("print(\"all calls done\");\n");
    common::write(dir.path(), "nopanic.rhai", &script);

    let child = common::peftlab(dir.path())
        .args(["run", "nopanic.rhai", "--out", "out"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = common::wait_with_timeout(child, Duration::from_secs(300));
    r.assert_no_panic();
    assert_eq!(
        r.code,
        Some(0),
        "the generated script failed outside try/catch:\n{}",
        r.stderr
    );
    assert!(r.stdout.ends_with("all calls done\n"), "{}", r.stderr);
    println!(
        "{calls} calls to {} functions; skipped:\n  {}",
        natives.len(),
        skipped.join("\n  ")
    );
}
