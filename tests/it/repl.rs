//! `peftlab repl` driven through a pipe: multi-line input, persistent state, commands, Ctrl-C.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use common::{peftlab, write};

fn repl_session(input: &str) -> common::Run {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "lib.rhai",
        "fn triple(x) { x * 3 }\nlet loaded = true;\n",
    );
    let mut child = peftlab(dir.path())
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    common::wait_with_timeout(child, Duration::from_secs(30))
}

#[test]
fn multi_line_functions_and_persistent_variables() {
    let r = repl_session(
        "fn double(x) {\n    x * 2\n}\nlet a = double(21);\na + 1\nlet cfg = #{\n    r: 8,\n    alpha: 16\n};\ncfg.r * double(a)\n\"text\"\n[1, 2, 3]\n",
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, "=> 43\n=> 672\n=> \"text\"\n=> [1, 2, 3]\n");
    assert_eq!(r.stderr, "");
}

#[test]
fn errors_keep_the_session_and_commands_work() {
    let r = repl_session(
        "let a = 5;\nlet b = ;\nnope(a)\na\n:load lib.rhai\ntriple(a)\n:vars\n:fns\n:help grid\n:reset\n:vars\n:frob\n:quit\nprint(\"not reached\");\n",
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out = r.stdout;
    assert!(out.starts_with("=> 5\nloaded lib.rhai\n=> 15\n"), "{out}");
    assert!(
        out.contains("a: int = 5\n") && out.contains("loaded: bool = true\n"),
        "{out}"
    );
    assert!(out.contains("triple(x)\n"), "{out}");
    assert!(
        out.contains("std/study::grid(spec)\n    Cartesian product"),
        "{out}"
    );
    assert!(out.contains("session reset\n(no variables)\n"), "{out}");
    assert!(!out.contains("not reached"));
    assert!(
        r.stderr
            .contains("error: syntax error: Unexpected ';'\n --> <input:2>:1:9"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("error: Function not found: nope (i64)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("unknown command ':frob'"), "{}", r.stderr);
}

#[test]
fn ctrl_c_interrupts_loops_and_native_calls_and_the_session_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = peftlab(dir.path())
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut next_line = |stdout: &mut BufReader<_>| {
        line.clear();
        stdout.read_line(&mut line).unwrap();
        line.clone()
    };

    // An infinite script loop.
    stdin
        .write_all(b"let a = 42;\nlet i = 0;\nprint(\"looping\"); loop { i += 1; }\n")
        .unwrap();
    stdin.flush().unwrap();
    assert_eq!(next_line(&mut stdout), "looping\n");
    std::thread::sleep(Duration::from_millis(300));
    common::sigint(child.id());

    // The session still answers, with its variables.
    stdin
        .write_all(b"a + (if i > 0 { 0 } else { 1000 })\n")
        .unwrap();
    stdin.flush().unwrap();
    assert_eq!(next_line(&mut stdout), "=> 42\n");

    // A long native call polls the interrupt flag.
    stdin
        .write_all(b"print(\"sleeping\"); sleep(600);\n")
        .unwrap();
    stdin.flush().unwrap();
    assert_eq!(next_line(&mut stdout), "sleeping\n");
    std::thread::sleep(Duration::from_millis(300));
    common::sigint(child.id());
    stdin.write_all(b"a * 2\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(next_line(&mut stdout), "=> 84\n");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let r = common::wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(r.code, Some(0));
    assert_eq!(rest, "");
    assert_eq!(
        r.stderr.matches("error: interrupted (Ctrl-C)").count(),
        2,
        "{}",
        r.stderr
    );
}

#[test]
fn repl_runs_a_script_first() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.rhai", "fn sq(x) { x * x }\nlet base = r;\n");
    let mut child = peftlab(dir.path())
        .args(["repl", "s.rhai", "--set", "r=7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"sq(base) + settings::r\n")
        .unwrap();
    let r = common::wait_with_timeout(child, Duration::from_secs(30));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "=> 56\n"),
        "{}",
        r.stderr
    );
}
