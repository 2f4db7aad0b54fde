//! `peftlab run`: error rendering, exit codes, `--set`, output paths, imports, Ctrl-C.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{run, write};

#[test]
fn syntax_error_on_line_3_is_rendered_with_line_and_caret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.rhai",
        "let a = 1;\nlet b = 2;\nlet c = a +* b;\nprint(c);\n",
    );
    let r = run(dir.path(), &["run", "bad.rhai"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("error: syntax error: Unexpected '*'"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(" --> bad.rhai:3:12"), "{}", r.stderr);
    // The source line, then a caret under column 12 naming the line.
    assert!(
        r.stderr
            .contains("3 | let c = a +* b;\n  |            ^ line 3, column 12"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "", "nothing may run");
}

#[test]
fn runtime_error_inside_function_names_call_site() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "f.rhai",
        "fn g(x) {\n    x.nope()\n}\nprint(\"before\");\ng(1);\n",
    );
    let r = run(dir.path(), &["run", "f.rhai"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stdout, "before\n");
    assert!(
        r.stderr.contains("error: Function not found: nope (i64)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(" --> f.rhai:2:7"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("= note: in call to function 'g', called at f.rhai:5:1"),
        "{}",
        r.stderr
    );
}

#[test]
fn unknown_option_lists_valid_keys_at_call_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "o.rhai",
        "let v = #{ a: 1 };\n  write_json_value(v, \"o.json\", #{ pretty: true, prety: 2 });\n",
    );
    let r = run(dir.path(), &["run", "o.rhai"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains("error: write_json_value: unknown option 'prety' (expected one of: pretty)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(" --> o.rhai:2:3"), "{}", r.stderr);
    // Wrong type: names the key, expected and got.
    write(
        dir.path(),
        "t.rhai",
        "write_json_value(1, \"o.json\", #{ pretty: \"yes\" });\n",
    );
    let r = run(dir.path(), &["run", "t.rhai"]);
    assert!(
        r.stderr.contains(
            "write_json_value: option 'pretty': expected a bool (true/false), got string \"yes\""
        ),
        "{}",
        r.stderr
    );
    // Errors from bindings are catchable and carry the message.
    write(
        dir.path(),
        "c.rhai",
        "try { write_json_value(1, \"o.json\", #{ x: 1 }); } catch (e) { print(e); }\n",
    );
    let r = run(dir.path(), &["run", "c.rhai"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "write_json_value: unknown option 'x' (expected one of: pretty)\n"
    );
}

#[test]
fn settings_reach_the_script_and_its_functions() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
fn scaled() { settings::r * 2 }
fn lr_in_fn() { get_setting("lr", 1.0) }
print(`${r} ${type_of(r)}`);
print(`${lr} ${type_of(lr)}`);
print(`${quick} ${type_of(quick)}`);
print(`${model} ${type_of(model)}`);
print(`${scaled()} ${lr_in_fn()}`);
print(get_setting("missing", 7));
print(get_setting("r", 1.5));
print(get_setting("r", "text"));
print(has_setting("quick"));
print(settings().len());
"#;
    write(dir.path(), "s.rhai", script);
    let r = run(
        dir.path(),
        &[
            "run",
            "s.rhai",
            "--set",
            "r=8",
            "--set",
            "lr=2e-4",
            "--set",
            "quick=true",
            "--set",
            "model=path/x",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            "8 i64",
            "0.0002 f64",
            "true bool",
            "path/x string",
            "16 0.0002",
            "7",
            "8.0",
            "8",
            "true",
            "4"
        ]
    );
    // A setting that cannot become the default's type is an error naming it.
    write(dir.path(), "m.rhai", "let r = get_setting(\"r\", 8);\n");
    let r = run(dir.path(), &["run", "m.rhai", "--set", "r=abc"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains("get_setting: --set r=abc is not an integer (the default is 8)"),
        "{}",
        r.stderr
    );
    // An unused setting is reported as a likely typo.
    let r = run(
        dir.path(),
        &["run", "m.rhai", "--set", "r=3", "--set", "rr=4"],
    );
    assert_eq!(r.code, Some(0));
    assert!(
        r.stderr
            .contains("warning: --set rr=... is not used by m.rhai"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("--set r=..."), "{}", r.stderr);
}

/// A setting never replaces a parameter or a local of the same name inside a function or a
/// closure (Rhai's optimizer propagated the settings' constants into function bodies, so
/// `--set bits=[4,16]` became the value of `fn load_opts(bits, ...)`'s parameter), and a
/// setting stays a constant at the top level.
#[test]
fn a_setting_does_not_shadow_parameters_or_locals() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
fn twice(bits) { bits * 2 }
fn local() { let bits = 5; bits }
fn from_settings() { settings::bits.len() }
let g = |bits| bits + 1;
print(`${twice(8)} ${local()} ${g.call(3)} ${from_settings()} ${bits}`);
"#;
    write(dir.path(), "s.rhai", script);
    let r = run(dir.path(), &["run", "s.rhai", "--set", "bits=[4,16]"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "16 5 4 2 [4, 16]");
    write(dir.path(), "c.rhai", "bits = 3;\n");
    let r = run(dir.path(), &["run", "c.rhai", "--set", "bits=[4,16]"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("Cannot modify constant bits"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("c.rhai:1:1"), "{}", r.stderr);
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["run", "missing.rhai"]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("script 'missing.rhai' not found"),
        "{}",
        r.stderr
    );
    write(dir.path(), "ok.rhai", "print(1);\n");
    for args in [
        &["run", "ok.rhai", "--set", "noequals"][..],
        &["run", "ok.rhai", "--set", "1x=2"][..],
        &["run", "ok.rhai", "--shard", "3/2"][..],
        &["run", "ok.rhai", "--shard", "0/2"][..],
        &["nosuchcommand"][..],
        &["run"][..],
    ] {
        let r = run(dir.path(), args);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
    }
    assert_eq!(run(dir.path(), &["--help"]).code, Some(0));
}

#[test]
fn out_dir_defaults_to_runs_script_stem_and_imports_resolve_from_script_dir() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "studies/lib/util.rhai",
        "fn twice(x) { x * 2 }\nexport const NAME = \"util\";\n",
    );
    write(
        dir.path(),
        "studies/exp1.rhai",
        "import \"lib/util\" as u;\nlet p = out_path(\"tables/t.txt\");\nwrite_text(`${u::twice(21)} ${u::NAME}`, p);\nprint(p);\nprint(out_dir());\n",
    );
    // Run from the parent directory: the import must resolve next to the script.
    let r = run(dir.path(), &["run", "studies/exp1.rhai"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let expected = std::path::Path::new("runs")
        .join("exp1")
        .join("tables")
        .join("t.txt");
    assert_eq!(r.stdout.lines().next().unwrap(), expected.to_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(&expected)).unwrap(),
        "42 util"
    );
    let r = run(
        dir.path(),
        &["run", "studies/exp1.rhai", "--out", "elsewhere"],
    );
    assert_eq!(r.stdout.lines().nth(1), Some("elsewhere"));
    assert!(dir.path().join("elsewhere/tables/t.txt").exists());
    // out_path refuses to leave the output directory.
    write(dir.path(), "esc.rhai", "out_path(\"../x\");\n");
    let r = run(dir.path(), &["run", "esc.rhai"]);
    assert!(
        r.stderr
            .contains("out_path: expected a relative path without '..'"),
        "{}",
        r.stderr
    );
}

#[test]
fn deep_recursion_works_in_debug_builds() {
    // rhai's debug-build default call depth is 8; the host sets 64 everywhere.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rec.rhai",
        "fn down(n) { if n == 0 { 0 } else { 1 + down(n - 1) } }\nprint(down(40));\n",
    );
    let r = run(dir.path(), &["run", "rec.rhai"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "40\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn strict_variables_and_map_properties() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "u.rhai", "let x = 1;\nprint(y);\n");
    let r = run(dir.path(), &["run", "u.rhai"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("Undefined variable: y") && r.stderr.contains("u.rhai:2:7"),
        "{}",
        r.stderr
    );
    write(
        dir.path(),
        "p.rhai",
        "let cfg = #{ rank: 8 };\nprint(cfg.rnak);\n",
    );
    let r = run(dir.path(), &["run", "p.rhai"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("rnak") && r.stderr.contains("p.rhai:2:"),
        "{}",
        r.stderr
    );
}

#[test]
fn ctrl_c_stops_a_batch_run_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "loop.rhai",
        "print(\"started\");\nlet i = 0;\nloop {\n    i += 1;\n}\n",
    );
    let mut child = common::peftlab(dir.path())
        .args(["run", "loop.rhai"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the script runs, then interrupt it.
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 8];
    use std::io::Read;
    stdout.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"started\n");
    std::thread::sleep(Duration::from_millis(200));
    common::sigint(child.id());
    let r = common::wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("error: interrupted (Ctrl-C)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("loop.rhai:4:"), "{}", r.stderr);
}

#[test]
fn bench_measures_a_checkpoint_given_with_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::fixture("models/tiny-llama");
    let model = model.to_str().unwrap();
    let args = [
        "bench", "forward", "--model", model, "--iters", "1", "--batch", "1", "--seq", "8",
        "--json",
    ];
    let r = run(dir.path(), &args);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let rows: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert_eq!(rows[0]["bench"], "load");
    assert!(rows[0]["seconds"].as_f64().is_some_and(f64::is_finite));
    assert!(
        rows[1]["bench"].as_str().unwrap().starts_with("forward"),
        "{}",
        rows[1]
    );
    // The real checkpoint was measured: tiny-llama's own parameter count, not a preset's.
    let t = run(
        dir.path(),
        &[
            "bench", "forward", "--model", model, "--iters", "1", "--batch", "1", "--seq", "8",
        ],
    );
    let params = common::model("tiny-llama").info()["params"].clone();
    assert!(
        t.stdout.contains(&format!("{params} params")),
        "{}",
        t.stdout
    );

    let bad = run(
        dir.path(),
        &["bench", "forward", "--model", "no/such/model"],
    );
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("no/such/model"), "{}", bad.stderr);
}

#[test]
fn combine_takes_quoted_keyword_names_and_default_options() {
    let dir = tempfile::tempdir().unwrap();
    let fx = common::fixture("");
    let script = format!(
        "let m = load_model(\"{0}/models/tiny-llama\", #{{ progress: false }});\n\
         m.load_adapter(\"{0}/adapters/multi/saved\");\n\
         let c = m.combine(#{{ \"default\": 1.0, other: 0.5 }});\n\
         print(`${{c.info().name}} r=${{c.info().r}} active=${{c.info().active}}`);\n",
        fx.display()
    );
    write(dir.path(), "c.rhai", &script);
    let r = run(dir.path(), &["run", "c.rhai"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // PEFT's default combination is svd with the largest source rank (default r=4, other r=2).
    assert!(
        r.stdout.contains("combined r=4 active=false"),
        "{}",
        r.stdout
    );
}
