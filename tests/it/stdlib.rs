//! The embedded standard library (`std/study`, `std/report`), run in-process through `Host`.

use peftlab::host::resolver::STDLIB;

fn eval(code: &str) -> (String, String) {
    let mut host = peftlab::api::host().capture_output().build();
    match host.eval(code) {
        Ok(_) => (host.output(), String::new()),
        Err(e) => (host.output(), e.rendered),
    }
}

fn eval_ok(code: &str) -> String {
    let (out, err) = eval(code);
    assert_eq!(err, "", "{code}");
    out
}

#[test]
fn every_std_module_compiles_imports_and_documents_its_functions() {
    let host = peftlab::api::host().capture_output().build();
    for (path, text) in STDLIB {
        let ast = host
            .engine()
            .compile(text)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(!ast.doc().is_empty(), "{path} has no //! module doc");
        let public = ast
            .iter_functions()
            .filter(|f| f.access == rhai::FnAccess::Public);
        for f in public.filter(|f| !f.name.starts_with("anon$")) {
            assert!(
                !f.comments.is_empty(),
                "{path}::{} has no doc comment",
                f.name
            );
        }
        let out = eval_ok(&format!("import \"{path}\" as m;\nprint(\"ok\");"));
        assert_eq!(out, "ok\n");
    }
}

#[test]
fn grid_order_is_alphabetical_keys_first_slowest() {
    let out = eval_ok(
        r#"import "std/study" as s;
let g = s::grid(#{ method: ["lora", "dora"], r: [8, 16], seed: [1, 2, 3] });
print(g.len());
for c in g { print(s::label(c)); }"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "12");
    assert_eq!(
        &lines[1..],
        &[
            "method=lora,r=8,seed=1",
            "method=lora,r=8,seed=2",
            "method=lora,r=8,seed=3",
            "method=lora,r=16,seed=1",
            "method=lora,r=16,seed=2",
            "method=lora,r=16,seed=3",
            "method=dora,r=8,seed=1",
            "method=dora,r=8,seed=2",
            "method=dora,r=8,seed=3",
            "method=dora,r=16,seed=1",
            "method=dora,r=16,seed=2",
            "method=dora,r=16,seed=3",
        ]
    );
}

#[test]
fn grid_with_order_fixed_values_and_empty_lists() {
    let out = eval_ok(
        r#"import "std/study" as s;
for c in s::grid(#{ r: [8, 16], method: ["lora", "dora"], lr: 2e-4 }, ["r", "method", "lr"]) { print(s::label(c)); }
print(s::grid(#{ r: [], method: ["lora"] }).len());
print(s::grid(#{}).len());"#,
    );
    // r varies slowest, then method; labels list keys alphabetically.
    assert_eq!(
        out,
        "lr=0.0002,method=lora,r=8\nlr=0.0002,method=dora,r=8\nlr=0.0002,method=lora,r=16\n\
         lr=0.0002,method=dora,r=16\n0\n1\n"
    );
    let (_, err) = eval("import \"std/study\" as s; s::grid(#{ a: [1] }, [\"b\"]);");
    assert!(
        err.contains("grid: order names b, which is not a key of the spec"),
        "{err}"
    );
    let (_, err) = eval("import \"std/study\" as s; s::grid(#{ a: [1], b: [2] }, [\"a\"]);");
    assert!(err.contains("grid: key 'b' is missing from order"), "{err}");
    let (_, err) = eval("import \"std/study\" as s; s::grid([1]);");
    assert!(
        err.contains("grid: expected a map of arrays, got array"),
        "{err}"
    );
}

#[test]
fn repeat_exclude_and_matches() {
    let out = eval_ok(
        r#"import "std/study" as s;
for c in s::repeat(s::grid(#{ r: [8, 16] }), [7, 9]) { print(s::label(c)); }
print(s::repeat(#{ m: "x" }, 3).len());
for c in s::exclude(s::grid(#{ method: ["lora", "vera"], r: [8, 256] }), #{ method: "vera", r: 8 }) { print(s::label(c)); }
print(s::matches(#{ a: 1, b: 2 }, #{ a: 1 }));"#,
    );
    assert_eq!(
        out,
        "r=8,seed=7\nr=8,seed=9\nr=16,seed=7\nr=16,seed=9\n3\nmethod=lora,r=8\nmethod=lora,r=256\nmethod=vera,r=256\ntrue\n"
    );
    let (_, err) = eval("import \"std/study\" as s; s::repeat(#{ seed: 1 }, 2);");
    assert!(
        err.contains("repeat: cell #{\"seed\": 1} already has a seed"),
        "{err}"
    );
    let (_, err) = eval("import \"std/study\" as s; s::repeat(#{ a: 1 }, 0);");
    assert!(
        err.contains("repeat: the number of seeds must be at least 1, got 0"),
        "{err}"
    );
}

#[test]
fn report_formats_aligned_tables_and_numbers() {
    let out = eval_ok(
        r#"import "std/report" as report;
let rows = [#{ method: "lora", acc: 0.81234, n: 100 }, #{ method: "dora", acc: 0.8, n: 7, note: "best" }];
print(report::format_table(rows));
report::print_table(rows, #{ columns: ["method", "acc"], digits: 1 });
print(report::num(2e-6, 2));
print(report::num((), 2));
print(report::pct(0.8123, 1));"#,
    );
    // Columns: keys of the first row (alphabetical), then `note`, which only the second row has.
    let expected = concat!(
        "  acc  method    n  note\n",
        "-----  ------  ---  ----\n",
        "0.812  lora    100\n",
        "0.800  dora      7  best\n",
        "\n",
        "method  acc\n",
        "------  ---\n",
        "lora    0.8\n",
        "dora    0.8\n",
        "2.00e-6\n",
        "\n",
        "81.2%\n",
    );
    assert_eq!(out, expected);
    let (_, err) =
        eval("import \"std/report\" as report; report::format_table([], #{ digit: 2 });");
    assert!(
        err.contains(
            "format_table: unknown option 'digit' (expected one of: columns, digits, sep)"
        ),
        "{err}"
    );
}

/// `std/compare`: the cells are paired by seed, the two best methods are found by mean, each
/// pair's items files are joined and tested, and every number equals the direct call (the
/// McNemar counts and exact p-values by hand).
#[test]
fn compare_beyond_anova_pairs_cells_and_pools_items() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = peftlab::api::host()
        .capture_output()
        .out_dir(dir.path())
        .build();
    // Per seed, 4 items: dora / lora correctness. Only-dora-right (n01) 2, 1, 0 and
    // only-lora-right (n10) 0, 0, 1; exact p = min(1, 2·P(X ≤ min | n, ½)) = 2·¼ = 0.5, 1, 1;
    // Holm: 3·0.5 = 1.5 → 1, then 1, 1.
    let code = r#"
import "std/compare" as compare;
fn items(flags) {
    let s = "";
    for i in 0..flags.len() {
        s += `{"task":"t","lang":"ur","id":"i${i}","prompt_hash":"h","correct":${flags[i] == 1}}` + "\n";
    }
    s
}
let pat = #{ dora: [[1, 1, 0, 1], [1, 0, 1, 1], [0, 0, 0, 1]],
             lora: [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1]],
             vera: [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]] };
let acc = #{ lora: [0.50, 0.55, 0.52], dora: [0.56, 0.60, 0.57], vera: [0.40, 0.41, 0.45] };
let rows = [];
for m in ["lora", "dora", "vera"] {
    for s in 0..3 {
        let f = `${m}-${s + 1}.jsonl`;
        write_text(items(pat[m][s]), out_path(f));
        rows.push(#{ method: m, seed: s + 1, acc: acc[m][s], items_file: f,
                     items_sha256: sha256_file(out_path(f)) });
    }
}
let t = table(rows);
let r = compare::beyond_anova(t, #{ metric: "acc", factor: "method", reference: "lora",
                                    margin: 0.1, pair_by: ["seed"] });
let d = tost(acc.dora, acc.lora, #{ margin: 0.1, paired: true });
let dora = r.equivalence.filter(|x| x.level == "dora").rows()[0];
print(`tost ${dora.p == d.p} ${dora.n} ${dora.equivalent}`);
let pw = anova_power(t, "acc", "method");
print(`power ${r.power.power == pw.power} ${r.power.seeds_needed == pw.n_per_group_needed}`);
let m = mixed_lm(t, "acc ~ method + (1 | seed)", #{ reference: #{ method: "lora" } });
print(`mixed ${r.mixed.fixed.rows()[1].estimate == m.fixed.rows()[1].estimate}`);
print(`best ${r.best}`);
print(`mcnemar ${r.mcnemar.column("n01")} ${r.mcnemar.column("n10")} ${r.mcnemar.column("items")} ${r.mcnemar.column("p")} ${r.mcnemar.column("p_holm")}`);
"#;
    let _ = host.eval(code).unwrap_or_else(|e| panic!("{}", e.rendered));
    let out = host.output();
    assert!(out.contains("tost true 3 true"), "{out}");
    // one cell per method and seed: seeds needed = cells per group needed
    assert!(out.contains("power true true"), "{out}");
    assert!(out.contains("mixed true"), "{out}");
    assert!(out.contains("best [\"dora\", \"lora\"]"), "{out}");
    assert!(
        out.contains("mcnemar [2, 1, 0] [0, 0, 1] [4, 4, 4] [0.5, 1.0, 1.0] [1.0, 1.0, 1.0]"),
        "{out}"
    );
    assert!(out.contains("differ item by item in 0 of 3 pairs"), "{out}");
    assert!(out.contains("Equivalence to lora within ±0.1"), "{out}");
    assert!(out.contains("McNemar, dora vs lora"), "{out}");
}

/// `std/compare` reports what it cannot compute and goes on (no items files, one seed).
#[test]
fn compare_beyond_anova_explains_what_it_cannot_compute() {
    let out = eval_ok(
        r#"import "std/compare" as compare;
let t = table([#{ m: "a", seed: 1, y: 0.5 }, #{ m: "b", seed: 1, y: 0.6 }, #{ m: "a", seed: 1, y: 0.55 }]);
let r = compare::beyond_anova(t, #{ metric: "y", factor: "m", reference: "a" });
print(`${r.mixed == ()} ${r.mcnemar == ()}`);"#,
    );
    assert!(
        out.contains("Mixed model not fitted: mixed_lm: grouping factor 'seed' has a single level"),
        "{out}"
    );
    assert!(
        out.contains("McNemar not computed: the results have no items_file column"),
        "{out}"
    );
    assert!(out.contains("true true"), "{out}");
    let (_, err) = eval(
        r#"import "std/compare" as compare;
compare::beyond_anova(table([#{ m: "a", y: 1.0 }]), #{ metric: "y", factor: "m", reference: "a", margn: 0.1 });"#,
    );
    assert!(err.contains("unknown option 'margn'"), "{err}");
    let (_, err) = eval(
        r#"import "std/compare" as compare;
compare::beyond_anova(table([#{ m: "a", y: 1.0 }]), #{ metric: "y", factor: "mm", reference: "a" });"#,
    );
    assert!(
        err.contains("beyond_anova: factor 'mm' is not a column"),
        "{err}"
    );
    // Cells over share × seed paired by seed alone are ambiguous: an error, not a silent mispairing.
    let out = eval_ok(
        r#"import "std/compare" as compare;
let rows = [];
for m in ["a", "b"] { for sh in [0.1, 0.5] { for s in [1, 2] {
    rows.push(#{ m: m, share: sh, seed: s, y: s.to_float() + sh + if m == "a" { 0.0 } else { 0.01 } });
} } }
let r = compare::beyond_anova(table(rows), #{ metric: "y", factor: "m", reference: "a" });
print(`${r.equivalence == ()}`);
let ok = compare::beyond_anova(table(rows), #{ metric: "y", factor: "m", reference: "a", pair_by: ["share", "seed"] });
print(`${ok.equivalence.rows()[0].n}`);"#,
    );
    assert!(
        out.contains("the m=b cell with [\"seed=1\"] matches 2 m=a cells; add the columns"),
        "{out}"
    );
    assert!(out.contains("true\n"), "{out}");
    assert!(out.ends_with("4\n"), "{out}");
}
