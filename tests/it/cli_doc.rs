//! `peftlab doc`: signatures and documentation of the registered functions and std modules.

use crate::common;

use common::run;

#[test]
fn doc_lists_functions_with_signatures_and_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["doc"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("  out_path(name: string) -> string\n      The path of `name` inside the output directory; creates its parent directories.\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("  run_cells(name: string, cells: array, f: Fn) -> Table\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("  elapsed(sw: Stopwatch) -> float\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("\nstd/study\n  std/study::exclude(cells, pattern)\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("  std/study::grid(spec)\n      Cartesian product of a map of value lists, as an array of cell maps.\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("  std/report::format_table(rows, opts)\n"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("align("),
        "private std functions must not be listed"
    );
}

#[test]
fn doc_name_shows_full_documentation_of_all_overloads() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["doc", "get_setting"]);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.starts_with("get_setting(name: string) -> any\n    The value of `--set name=...`; an error when it was not given.\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("get_setting(name: string, default: any) -> any\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("    let r = get_setting(\"r\", 8);"),
        "{}",
        r.stdout
    );
    let r = run(dir.path(), &["doc", "study"]);
    assert_eq!(r.code, Some(0));
    assert!(
        r.stdout.starts_with("std/study\n\nStudy designs:"),
        "{}",
        r.stdout
    );
    let r = run(dir.path(), &["doc", "study::repeat"]);
    assert!(
        r.stdout
            .starts_with("std/study::repeat(cells, seeds)\n    Repeats each cell once per seed"),
        "{}",
        r.stdout
    );
    let r = run(dir.path(), &["doc", "no_such_function_xyz"]);
    assert_eq!(r.code, Some(1));
    assert!(r
        .stderr
        .contains("no function or std module named 'no_such_function_xyz'"));
}

#[test]
fn doc_json_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["doc", "--json"]);
    assert_eq!(r.code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let f = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "sha256_file")
        .unwrap();
    assert_eq!(f["signature"], "sha256_file(path: string) -> string");
    assert_eq!(f["params"][0]["name"], "path");
    assert!(f["doc"]
        .as_str()
        .unwrap()
        .starts_with("Lowercase hex SHA-256 of a file"));
    // Every native function (except generated property accessors) carries a doc comment and
    // named parameters: bindings are registered with `host::bind`.
    let natives = v.as_array().unwrap().iter().filter(|f| f["module"] == "");
    for f in natives.filter(|f| !f["name"].as_str().unwrap().contains('$')) {
        assert!(
            !f["doc"].as_str().unwrap().is_empty(),
            "{} has no doc",
            f["signature"]
        );
        for p in f["params"].as_array().unwrap() {
            assert_ne!(
                p["name"], "_",
                "{} has an unnamed parameter",
                f["signature"]
            );
        }
    }
}
