//! Tests of `Table`: construction, selection, grouping, pivoting, text and file round trips.

use super::display::fmt_g4;
use super::*;
use serde_json::json;

fn sample() -> Table {
    let v = json!([
        {"method": "LoRA", "lang": "hi", "f1": 0.5, "seed": 0},
        {"method": "LoRA", "lang": "sw", "f1": 0.25, "seed": 0},
        {"method": "DoRA", "lang": "hi", "f1": 0.75, "seed": 0},
        {"method": "LoRA", "lang": "hi", "f1": 0.7, "seed": 1},
        {"method": "DoRA", "lang": "sw", "f1": 0.5, "seed": 1, "note": "late"}
    ]);
    match v {
        Value::Array(items) => Table::from_values(items).unwrap(),
        _ => unreachable!(),
    }
}

#[test]
fn construction_and_columns() {
    let t = sample();
    assert_eq!(t.len(), 5);
    assert_eq!(t.columns(), ["method", "lang", "f1", "seed", "note"]);
    assert_eq!(t.column("note").unwrap()[0], Value::Null);
    let e = Table::from_values(vec![json!({"a": 1}), json!(3)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "table: element 1 is a number, expected a map (object)"
    );
    let e = t.column("F1").unwrap_err().to_string();
    assert!(
        e.contains("unknown column 'F1'") && e.contains("method, lang"),
        "{e}"
    );
    assert_eq!(
        t.summary(),
        "Table(5 rows × 5 cols: method, lang, f1, seed, note)"
    );
}

#[test]
fn numeric_column_errors_name_the_row() {
    let t = sample();
    assert_eq!(t.numeric_column("f1").unwrap(), [0.5, 0.25, 0.75, 0.7, 0.5]);
    let e = t.numeric_column("method").unwrap_err().to_string();
    assert_eq!(
        e,
        "numeric_column: column 'method' is not numeric: row 0 has \"LoRA\""
    );
    let e = t.numeric_column("note").unwrap_err().to_string();
    assert!(
        e.ends_with("column 'note' is not numeric: row 0 has a missing value (null)"),
        "{e}"
    );
}

#[test]
fn unknown_column_of_an_empty_table_says_it_is_empty() {
    let e = Table::new().column("f1").unwrap_err().to_string();
    assert_eq!(
        e,
        "column: unknown column 'f1' (the table is empty: it has no rows)"
    );
    let e = sample().column("F1").unwrap_err().to_string();
    assert!(
        e.ends_with("(columns: method, lang, f1, seed, note)"),
        "{e}"
    );
}

#[test]
fn filter_select_sort_concat() {
    let t = sample();
    let hi = t.filter(|r| r.get("lang") == Some(&json!("hi")));
    assert_eq!(hi.len(), 3);
    let s = t.select(&["f1", "method"]).unwrap();
    assert_eq!(s.columns(), ["f1", "method"]);
    assert_eq!(s.rows()[0].keys().collect::<Vec<_>>(), ["f1", "method"]);
    assert!(t.select(&["nope"]).is_err());
    let sorted = t.sort_by("f1", true).unwrap();
    assert_eq!(
        sorted.numeric_column("f1").unwrap(),
        [0.75, 0.7, 0.5, 0.5, 0.25]
    );
    // Stable: the two 0.5 rows keep their order (LoRA before DoRA).
    assert_eq!(sorted.rows()[2]["method"], json!("LoRA"));
    let by_note = t.sort_by("note", false).unwrap();
    assert_eq!(by_note.rows()[0]["note"], json!("late")); // nulls last
    assert_eq!(t.concat(&hi).len(), 8);
}

#[test]
fn groups_group_mean_pivot() {
    let t = sample();
    let g = t.groups("f1", "method").unwrap();
    assert_eq!(g[0], ("LoRA".to_string(), vec![0.5, 0.25, 0.7]));
    assert_eq!(g[1], ("DoRA".to_string(), vec![0.75, 0.5]));

    let m = t.group_mean(&["method", "lang"], "f1").unwrap();
    assert_eq!(m.columns(), ["method", "lang", "f1", "n", "sd"]);
    assert_eq!(m.len(), 4);
    // LoRA/hi: (0.5 + 0.7)/2 = 0.6, sd = |0.7 − 0.5|/√2.
    let r = &m.rows()[0];
    assert!((r["f1"].as_f64().unwrap() - 0.6).abs() < 1e-15);
    assert_eq!(r["n"], json!(2));
    assert!((r["sd"].as_f64().unwrap() - 0.2 / 2f64.sqrt()).abs() < 1e-15);
    assert_eq!(m.rows()[1]["sd"], Value::Null); // n = 1
    let m1 = t.group_mean(&["seed"], "f1").unwrap();
    assert_eq!(m1.rows()[0]["seed"], json!(0)); // the key keeps its type

    let p = t.pivot("method", "lang", "f1").unwrap();
    assert_eq!(p.columns(), ["method", "hi", "sw"]);
    assert!((p.rows()[0]["hi"].as_f64().unwrap() - 0.6).abs() < 1e-15);
    assert_eq!(p.rows()[1]["sw"], json!(0.5));
    let p2 = t
        .filter(|r| r["lang"] == json!("hi"))
        .pivot("lang", "method", "f1");
    assert_eq!(p2.unwrap().len(), 1);
    let e = t.groups("method", "lang").unwrap_err().to_string();
    assert!(e.contains("'method' is not numeric"), "{e}");
}

#[test]
fn display_is_aligned() {
    let t = sample().select(&["method", "f1"]).unwrap();
    let text = t.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Table(5 rows × 2 cols: method, f1)");
    assert_eq!(lines[1], "method    f1");
    assert_eq!(lines[2], "------  ----");
    assert_eq!(lines[3], "LoRA     0.5");
    assert_eq!(lines[4], "LoRA    0.25");
    assert_eq!(fmt_g4(0.595278), "0.5953");
    assert_eq!(fmt_g4(59.281936), "59.28");
    assert_eq!(fmt_g4(6.289938e-7), "6.29e-07");
    assert_eq!(fmt_g4(12345.6), "1.235e+04");
    assert_eq!(fmt_g4(9.99996), "10");
    assert_eq!(fmt_g4(-0.001), "-0.001");
    assert_eq!(fmt_g4(0.0), "0");
}

#[test]
fn csv_and_json_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = sample();
    let csv_path = dir.path().join("t.csv");
    t.write_csv(&csv_path).unwrap();
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("method,lang,f1,seed,note"));
    assert_eq!(lines.next(), Some("LoRA,hi,0.5,0,"));
    let back = Table::read_csv(&csv_path).unwrap();
    assert_eq!(back.columns(), t.columns());
    assert_eq!(back.rows()[4]["note"], json!("late"));
    assert_eq!(back.rows()[0]["note"], Value::Null);
    assert_eq!(back.rows()[0]["seed"], json!(0));
    assert_eq!(
        back.numeric_column("f1").unwrap(),
        t.numeric_column("f1").unwrap()
    );
    // Quoting and parsing of awkward fields.
    let odd = Table::from_csv_str("a,b,c\n\"x, y\",1e-3,NA\ntrue,-2,\"q\"\"uote\"\n").unwrap();
    assert_eq!(odd.rows()[0]["a"], json!("x, y"));
    assert_eq!(odd.rows()[0]["b"], json!(0.001));
    assert_eq!(odd.rows()[0]["c"], Value::Null);
    assert_eq!(odd.rows()[1]["a"], json!(true));
    assert_eq!(odd.rows()[1]["b"], json!(-2));
    assert_eq!(odd.rows()[1]["c"], json!("q\"uote"));
    let again = Table::from_csv_str(&odd.to_csv_string().unwrap()).unwrap();
    assert_eq!(again, odd);

    let json_path = dir.path().join("t.json");
    t.write_json(&json_path).unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 5);
    // Every record has every column (tidy), null where absent.
    assert_eq!(arr[0]["note"], Value::Null);
    assert_eq!(arr[0].as_object().unwrap().len(), 5);
    let back = Table::read_json(&json_path).unwrap();
    assert_eq!(back.rows()[4], t.rows()[4]);
    let jsonl = dir.path().join("t.jsonl");
    std::fs::write(&jsonl, "{\"a\": 1}\n\n{\"a\": 2, \"b\": \"x\"}\n").unwrap();
    let t2 = Table::read_json(&jsonl).unwrap();
    assert_eq!((t2.len(), t2.columns().len()), (2, 2));
    let e = Table::from_csv_str("a,b,a\n1,2,3\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("duplicate column name 'a'"), "{e}");
    let e = Table::read_csv(dir.path().join("missing.csv")).unwrap_err();
    assert!(e.to_string().starts_with("read_csv: "), "{e}");
}

#[test]
fn display_elides_long_tables() {
    let rows: Vec<Value> = (0..100).map(|i| json!({"i": i})).collect();
    let t = Table::from_values(rows).unwrap();
    let text = t.to_text();
    let lines: Vec<&str> = text.lines().collect();
    // summary, header, rule, 35 head rows, the elision line, 5 tail rows.
    assert_eq!(lines.len(), 3 + 35 + 1 + 5);
    assert_eq!(lines[3 + 35], "… (60 more rows)");
    assert_eq!(lines.last().copied(), Some("99"));
    assert_eq!(Table::new().summary(), "Table(0 rows × 0 cols)");
}
