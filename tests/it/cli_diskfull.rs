//! A write that fails half-way (a full disk) keeps the previous file: every file writer goes
//! through the atomic write (temporary file in the same directory, then rename).
//!
//! The full disk is simulated without root with the file size limit: `ulimit -f 1` (1 KiB) with
//! SIGXFSZ ignored makes every write past 1 KiB fail with EFBIG ("File too large"), exactly
//! where a full disk would fail with ENOSPC. Each script overwrites an existing small file with
//! a bigger one.

use crate::common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `peftlab run s.rhai` in `dir` under a 1 KiB file size limit.
fn run_limited(dir: &Path) -> Run {
    let cmd = format!(
        "trap '' XFSZ; ulimit -f 1; exec '{}' run s.rhai --out out",
        bin().display()
    );
    let out = Command::new("bash")
        .args(["-c", &cmd])
        .current_dir(dir)
        .env("PEFTLAB_HISTORY", "")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    Run::from_output(out)
}

const ROWS: &str = r#"
let rows = [];
for i in 0..200 { rows.push(#{ id: i, text: "a row long enough to make the file grow", score: i * 0.5 }); }
"#;

#[test]
fn a_failed_overwrite_keeps_the_old_file_byte_for_byte() {
    let cases = [
        (
            "res.csv",
            "write_csv(table(rows), \"res.csv\");",
            "write_csv",
        ),
        (
            "res.json",
            "write_json(table(rows), \"res.json\");",
            "write_json",
        ),
        ("d.jsonl", "dataset(rows).save(\"d.jsonl\");", "save"),
        ("d.csv", "dataset(rows).save(\"d.csv\");", "save"),
        ("d.json", "dataset(rows).save(\"d.json\");", "save"),
        (
            "t.txt",
            "let s = \"\"; for r in rows { s += r.text; } write_text(s, \"t.txt\");",
            "write_text",
        ),
    ];
    for (file, code, func) in cases {
        let dir = tempfile::tempdir().unwrap();
        let old = format!("the previous result of {file}\n");
        write(dir.path(), file, &old);
        write(
            dir.path(),
            "s.rhai",
            &format!("{ROWS}\n{code}\nprint(\"not reached\");\n"),
        );
        let r = run_limited(dir.path());
        r.assert_no_panic();
        assert_eq!(r.code, Some(1), "{file}: {}", r.stderr);
        assert!(
            r.stderr.contains(func)
                && r.stderr.contains(file)
                && r.stderr.contains("File too large"),
            "{file}: unclear error:\n{}",
            r.stderr
        );
        assert!(!r.stdout.contains("not reached"), "{file}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(file)).unwrap(),
            old,
            "{file}: the previous file was damaged"
        );
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "{file}: temporary files left: {left:?}");
    }
}

#[test]
fn without_the_limit_the_same_writes_replace_the_file() {
    // The control: the scripts above do write bigger files when the disk has room.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "res.csv", "old\n");
    write(
        dir.path(),
        "s.rhai",
        &format!(
            "{ROWS}\nwrite_csv(table(rows), \"res.csv\");\ndataset(rows).save(\"d.jsonl\");\n"
        ),
    );
    let r = run(dir.path(), &["run", "s.rhai", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let csv = std::fs::read_to_string(dir.path().join("res.csv")).unwrap();
    assert!(csv.len() > 1024 && csv.lines().count() == 201, "{csv}");
    let jsonl = std::fs::read_to_string(dir.path().join("d.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 200);
}
