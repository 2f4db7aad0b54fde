//! Bad values given to bindings end in a script error that names the function, the bad value
//! and the script position (issue 17): negative counts, closures with the wrong number of
//! parameters, non-finite optimizer options, a log file that is a directory, and training data
//! whose responses `max_len` cut off entirely.

use crate::common;
use common::fixture;

/// Runs `script` and returns (message, line, column) of its error.
fn error_of(script: &str) -> (String, usize, usize) {
    let out = tempfile::tempdir().unwrap();
    let mut host = peftlab::api::host()
        .capture_output()
        .out_dir(out.path())
        .build();
    let e = host.eval(script).unwrap_err();
    let loc = e
        .location
        .clone()
        .unwrap_or_else(|| panic!("no location: {}", e.rendered));
    (e.message, loc.line, loc.column)
}

#[test]
fn negative_counts_are_errors_not_clamped() {
    let d = "let d = dataset([#{ a: 1 }, #{ a: 2 }, #{ a: 3 }]);\n";
    for (call, func) in [
        ("d.take(-1)", "take"),
        ("d.skip(-1)", "skip"),
        ("d.sample(-1, 0)", "sample"),
        ("d.stratified_sample(-1, \"a\", 0)", "stratified_sample"),
    ] {
        let (msg, line, col) = error_of(&format!("{d}let x = {call};"));
        assert_eq!(msg, format!("{func}: n must be >= 0 (got -1)"));
        assert_eq!((line, col), (2, 11), "{call}");
    }
    // zero is a count like any other
    let mut host = peftlab::api::host().capture_output().build();
    let v = host
        .eval(&format!("{d}[d.take(0).len(), d.skip(0).len()]"))
        .unwrap();
    assert_eq!(v.to_string(), "[0, 3]");
}

#[test]
fn closures_with_the_wrong_number_of_parameters_are_named() {
    let d = "let d = dataset([#{ a: 1 }, #{ a: 2 }]);\n";
    let cases = [
        (
            "d.filter(|r, i| true)",
            "the closure passed to filter takes 2 parameters but is called with 1 argument",
        ),
        (
            "d.map(|| #{ b: 1 })",
            "the closure passed to map takes 0 parameters but is called with 1 argument",
        ),
        (
            "table([#{ a: 1 }]).filter(|x, y, z| true)",
            "the closure passed to filter takes 3 parameters but is called with 1 argument",
        ),
        (
            "run_cells(\"c\", [#{ r: 1 }], |c, seed| #{ acc: 1.0 })",
            "the closure passed to run_cells takes 2 parameters but is called with 1 argument",
        ),
    ];
    for (call, want) in cases {
        let (msg, line, _) = error_of(&format!("{d}let x = {call};"));
        assert_eq!(msg, want, "{call}");
        assert_eq!(line, 2, "{call}");
    }
    // captured variables are not parameters
    let (msg, _, _) = error_of(&format!(
        "{d}let k = 1;\nlet x = d.filter(|r, i| r.a == k);"
    ));
    assert_eq!(
        msg,
        "the closure passed to filter takes 2 parameters but is called with 1 argument"
    );
    // a named function passed as a function pointer
    let (msg, _, _) = error_of(&format!(
        "fn two(a, b) {{ true }}\n{d}let x = d.filter(Fn(\"two\"));"
    ));
    assert_eq!(
        msg,
        "the function 'two' passed to filter takes 2 parameters but is called with 1 argument"
    );
    // an error inside a closure of the right arity is left as it is
    let (msg, _, _) = error_of(&format!("{d}let x = d.filter(|r| no_such_fn(r));"));
    assert!(msg.contains("no_such_fn"), "{msg}");
}

fn model_script(rest: &str) -> String {
    format!(
        "let m = load_model(\"{}\", #{{ progress: false }});\nm.add_adapter(#{{ r: 2, seed: 1 }});\n{rest}",
        fixture("models/tiny-llama").display()
    )
}

#[test]
fn non_finite_optimizer_options_are_refused() {
    for (opt, shown) in [
        (
            "lr: parse_float(\"NaN\")",
            "lr must be a finite number >= 0 (got NaN)",
        ),
        (
            "eps: parse_float(\"inf\")",
            "eps must be a finite number > 0 (got inf)",
        ),
        (
            "weight_decay: parse_float(\"NaN\")",
            "weight_decay must be a finite number >= 0 (got NaN)",
        ),
        (
            "betas: [0.9, 1.0]",
            "betas[1] must be a number in [0, 1) (got 1)",
        ),
    ] {
        let s = model_script(&format!(
            "let l = m.train_step([[5, 6, 7, 8]], [[5, 6, 7, 8]], #{{ {opt} }});"
        ));
        let (msg, line, _) = error_of(&s);
        assert_eq!(msg, format!("train_step: {shown}"), "{opt}");
        assert_eq!(line, 3);
    }
    let s = model_script(
        "let rep = m.train([#{ instruction: \"a\", output: \"b\" }], #{ lr: parse_float(\"NaN\"), progress: false });",
    );
    let (msg, _, _) = error_of(&s);
    assert_eq!(msg, "train: lr must be a finite number >= 0 (got NaN)");
}

#[test]
fn log_file_that_is_a_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().display().to_string();
    let s = model_script(&format!(
        "let rep = m.train([#{{ instruction: \"a\", output: \"b\" }}], #{{ log_file: \"{p}\", progress: false }});"
    ));
    let (msg, line, _) = error_of(&s);
    assert_eq!(
        msg,
        format!(
            "train: log_file '{p}': is a directory (give a file path, e.g. '{}')",
            dir.path().join("train.jsonl").display()
        )
    );
    assert_eq!(line, 3);
}

#[test]
fn max_len_that_cuts_every_response_says_so() {
    let long = "word ".repeat(40);
    let s = model_script(&format!(
        "let rows = [#{{ instruction: \"{long}\", output: \"yes\" }}, #{{ instruction: \"{long}\", output: \"no\" }}];\n\
         let rep = m.train(rows, #{{ max_len: 8, progress: false }});"
    ));
    let (msg, line, _) = error_of(&s);
    assert_eq!(
        msg,
        "train: no example keeps a response token after truncation to max_len = 8 (2 of 2 \
         examples were cut, prompts included); raise max_len or shorten the prompts"
    );
    assert_eq!(line, 4);
}

/// `task_examples` errors name the function (not `evaluate`), the bad value and the position.
#[test]
fn task_examples_errors_name_the_function_and_the_value() {
    let data = fixture("evaldata/multitask/xnli").display().to_string();
    for (opts, want) in [
        (
            format!("#{{ data: {data:?}, langs: [\"de\"] }}"),
            "task_examples: no data for language 'de' (looked for: de) and split 'train'",
        ),
        (
            format!("#{{ data: {data:?}, langs: [\"xx\"] }}"),
            "task_examples: task 'xnli' has no language 'xx' (expected one of: ar, bg, de",
        ),
        (
            format!("#{{ data: {data:?}, limit: -3 }}"),
            "task_examples: option 'limit': must be >= 0, got -3",
        ),
        (
            format!("#{{ data: {data:?}, shots: 1 }}"),
            "task_examples: unknown option 'shots' (expected one of: data, langs, split, prompt, limit, seed)",
        ),
    ] {
        let (msg, line, col) = error_of(&format!("let x = 1;\nlet d = task_examples(\"xnli\", {opts});"));
        assert!(msg.starts_with(want), "{msg}");
        assert_eq!((line, col), (2, 9), "{msg}");
    }
    let (msg, _, _) = error_of("task_examples(\"xnlj\", #{})");
    assert!(
        msg.starts_with("task_examples: unknown task 'xnlj' (expected one of: xnli,"),
        "{msg}"
    );
}
