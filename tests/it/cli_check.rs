//! `peftlab check`: compile without running; every syntax error with line:column.

use crate::common;

use common::{run, write};

#[test]
fn good_script_passes_without_running() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "good.rhai",
        "import \"std/study\" as study;\nlet cells = study::grid(#{ r: [8, 16] });\nwrite_text(\"ran\", \"ran.txt\");\n",
    );
    let r = run(dir.path(), &["check", "good.rhai"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, "good.rhai: ok\n");
    assert!(
        !dir.path().join("ran.txt").exists(),
        "check must not run the script"
    );
}

#[test]
fn bad_script_reports_each_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let src = "let a = 1;\nlet b = a +;\nprint(b);\nlet c = (2;\nprint(a)\nprint(c);\nimport \"std/nope\" as n;\n";
    write(dir.path(), "bad.rhai", src);
    let r = run(dir.path(), &["check", "bad.rhai"]);
    assert_eq!(r.code, Some(1));
    // Four distinct problems, in line order, and no cascade from the blanked lines.
    assert!(
        r.stderr
            .contains("error: syntax error: Unexpected ';'\n --> bad.rhai:2:12"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(" --> bad.rhai:4:11"), "{}", r.stderr);
    // The missing ';' is reported at the end of line 5, not at the start of line 6.
    assert!(
        r.stderr
            .contains("Expecting ';' to terminate this statement\n --> bad.rhai:5:9"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("no std module 'std/nope'") && r.stderr.contains(" --> bad.rhai:7:8"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.ends_with("bad.rhai: 4 errors\n"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("Undefined variable"),
        "cascade reported: {}",
        r.stderr
    );
}

#[test]
fn settings_are_known_to_check() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.rhai", "print(r + 1);\n");
    let r = run(dir.path(), &["check", "s.rhai"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("Undefined variable: r") && r.stderr.contains("s.rhai:1:7"),
        "{}",
        r.stderr
    );
    let r = run(dir.path(), &["check", "s.rhai", "--set", "r=8"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(run(dir.path(), &["check", "missing.rhai"]).code, Some(2));
}
