//! Tests of the data module: readers (jsonl, json, csv, parquet, HF directories), the dataset
//! operations, mixtures, stratified samples and the Bactrian partition.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::value::Row;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/evaldata")
        .join(rel)
}

fn row(v: serde_json::Value) -> Row {
    match v {
        Value::Object(m) => m,
        _ => Row::new(),
    }
}

fn numbered(n: usize, tag: &str) -> Dataset {
    Dataset::new((0..n).map(|i| row(json!({"i": i, "src": tag}))).collect())
}

#[test]
fn parquet_rows_with_structs_lists_and_nulls() {
    let d = load_dataset(
        fixture("data/mixed.parquet").to_str().unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(d.len(), 3);
    let r0 = d.row(0).unwrap();
    assert_eq!(r0["id"], json!(1));
    assert_eq!(r0["text"], json!("héllo"));
    assert_eq!(r0["score"], json!(0.5));
    assert_eq!(r0["flag"], json!(true));
    assert_eq!(
        r0["answers"],
        json!({"text": ["a", "b"], "answer_start": [0, 3]})
    );
    assert_eq!(r0["small"], json!(1));
    assert_eq!(r0["f32"], json!(1.5));
    let r1 = d.row(1).unwrap();
    assert_eq!(r1["text"], json!("مرحبا"));
    assert_eq!(r1["answers"]["text"], json!(["ج"]));
    let r2 = d.row(2).unwrap();
    assert_eq!(r2["text"], Value::Null);
    assert_eq!(r2["answers"], json!({"text": [], "answer_start": []}));
    let limited = load_dataset(
        fixture("data/mixed.parquet").to_str().unwrap(),
        &LoadOptions {
            split: None,
            limit: Some(2),
        },
    )
    .unwrap();
    assert_eq!(limited.len(), 2);
}

#[test]
fn hf_directory_splits() {
    let dir = fixture("data/hfdir");
    let dir = dir.to_str().unwrap();
    // Two shards under data/, read in name order.
    let t = load_dataset(
        dir,
        &LoadOptions {
            split: Some("test".into()),
            limit: None,
        },
    )
    .unwrap();
    assert_eq!(
        t.column("sentence").unwrap(),
        vec![json!("test 0"), json!("test 1"), json!("test 2")]
    );
    let v = load_dataset(
        dir,
        &LoadOptions {
            split: Some("validation".into()),
            limit: None,
        },
    )
    .unwrap();
    assert_eq!(v.len(), 2);
    // "dev" is an alias of validation.
    let dev = load_dataset(
        dir,
        &LoadOptions {
            split: Some("dev".into()),
            limit: None,
        },
    )
    .unwrap();
    assert_eq!(dev, v);
    let err = load_dataset(
        dir,
        &LoadOptions {
            split: Some("train".into()),
            limit: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no files for split 'train'"), "{err}");
    assert!(
        err.contains("validation.jsonl") && err.contains("test-00000-of-00002.parquet"),
        "{err}"
    );
}

#[test]
fn malformed_jsonl_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    std::fs::write(&p, "{\"a\": 1}\n\n{\"a\": 2,}\n").unwrap();
    let err = load_dataset(p.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.jsonl, line 3"), "{err}");
    std::fs::write(&p, "{\"a\": 1}\n[1, 2]\n").unwrap();
    let err = load_dataset(p.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2") && err.contains("expected a JSON object"),
        "{err}"
    );
}

#[test]
fn json_arrays_json_lines_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    std::fs::write(&a, "[{\"x\": 1}, {\"x\": 2}]").unwrap();
    assert_eq!(
        load_dataset(a.to_str().unwrap(), &LoadOptions::default())
            .unwrap()
            .len(),
        2
    );
    std::fs::write(&a, "[{\"x\": 1}, 3]").unwrap();
    let err = load_dataset(a.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a.json, line 2") && err.contains("element 2"),
        "{err}"
    );
    // JSON lines stored with a .json extension.
    std::fs::write(&a, "{\"x\": 1}\n{\"x\": 2}\n{\"x\": 3}\n").unwrap();
    assert_eq!(
        load_dataset(a.to_str().unwrap(), &LoadOptions::default())
            .unwrap()
            .len(),
        3
    );

    let c = dir.path().join("c.csv");
    std::fs::write(&c, "id,text,score,code\n1,héllo,0.5,007\n2,\"a, b\",,x\n").unwrap();
    let d = load_dataset(c.to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(d.row(0).unwrap()["id"], json!(1));
    assert_eq!(d.row(0).unwrap()["score"], json!(0.5));
    assert_eq!(d.row(0).unwrap()["code"], json!("007"));
    assert_eq!(d.row(1).unwrap()["text"], json!("a, b"));
    assert_eq!(d.row(1).unwrap()["score"], Value::Null);
    std::fs::write(&c, "id,text\n1,a\n2,b,extra\n").unwrap();
    let err = load_dataset(c.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("c.csv, line 3"), "{err}");
}

#[test]
fn duplicate_csv_header_is_an_error_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("dup.csv");
    std::fs::write(&c, "id,text,text\n1,a,b\n").unwrap();
    let err = load_dataset(c.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}, line 1: duplicate column name 'text' (columns 2 and 3); rename one",
            c.display()
        )
    );
}

#[test]
fn duplicate_parquet_column_is_an_error_naming_the_column() {
    use ::parquet::data_type::Int32Type;
    use ::parquet::file::properties::WriterProperties;
    use ::parquet::file::writer::SerializedFileWriter;
    use ::parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dup.parquet");
    let schema =
        Arc::new(parse_message_type("message m { required int32 a; required int32 a; }").unwrap());
    let file = std::fs::File::create(&p).unwrap();
    let mut w =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
            .unwrap();
    let mut rg = w.next_row_group().unwrap();
    for v in [1, 2] {
        let mut col = rg.next_column().unwrap().unwrap();
        col.typed::<Int32Type>()
            .write_batch(&[v], None, None)
            .unwrap();
        col.close().unwrap();
    }
    rg.close().unwrap();
    w.close().unwrap();
    let err = load_dataset(p.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}, line 0: duplicate column name 'a' (columns 1 and 2); rename one",
            p.display()
        )
    );
}

#[test]
fn unreadable_paths_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    // a path that does not exist, with and without an extension
    for name in ["nothing", "nothing.csv", "."] {
        let p = dir.path().join("missing").join(name);
        let err = io::read_rows(&p, None).unwrap_err().to_string();
        assert_eq!(err, format!("{}: no such file or directory", p.display()));
    }
    // a file without an extension
    let p = dir.path().join("rows");
    std::fs::write(&p, "{\"x\": 1}\n").unwrap();
    let err = io::read_rows(&p, None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "load_dataset: {}: the file name has no extension, so its format is unknown \
             (expected one of: .jsonl, .json, .csv, .parquet)",
            p.display()
        )
    );
}

#[test]
fn missing_field_names_field_and_fields_present() {
    let d = Dataset::new(vec![
        row(json!({"id": 1, "text": "a"})),
        row(json!({"id": 2})),
    ]);
    let err = d.column("text").unwrap_err().to_string();
    assert_eq!(
        err,
        "column: row 1: missing field 'text' (fields present: id)"
    );
}

#[test]
fn basic_operations() {
    let d = numbered(10, "a");
    assert_eq!(d.len(), 10);
    assert_eq!(d.take(3).len(), 3);
    assert_eq!(d.skip(8).column("i").unwrap(), vec![json!(8), json!(9)]);
    assert_eq!(d.take(20).len(), 10);
    let evens = d
        .filter(|r| Ok::<_, DataError>(r["i"].as_u64().is_some_and(|i| i % 2 == 0)))
        .unwrap();
    assert_eq!(evens.len(), 5);
    let doubled = d
        .map(|r| {
            let mut r = r.clone();
            let i = r["i"].as_u64().unwrap_or(0);
            r.insert("j".into(), json!(i * 2));
            Ok::<_, DataError>(r)
        })
        .unwrap();
    assert_eq!(doubled.row(3).unwrap()["j"], json!(6));
    // Errors from the closure pass through.
    let e = d.filter(|_| Err::<bool, _>("stop")).unwrap_err();
    assert_eq!(e, "stop");
    let s1 = d.shuffle(7);
    assert_eq!(s1, d.shuffle(7));
    assert_ne!(s1.column("i").unwrap(), d.column("i").unwrap());
    let mut sorted: Vec<u64> = s1
        .column("i")
        .unwrap()
        .iter()
        .filter_map(|v| v.as_u64())
        .collect();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10).collect::<Vec<u64>>());
    let smp = d.sample(4, 1).unwrap();
    assert_eq!(smp.len(), 4);
    assert_eq!(smp, d.sample(4, 1).unwrap());
    assert!(d.sample(11, 1).is_err());
    let c = d.concat(&numbered(2, "b"));
    assert_eq!(c.len(), 12);
    assert_eq!(c.row(11).unwrap()["src"], json!("b"));
    assert!(d.row(10).is_err());
    assert!(d
        .to_string()
        .starts_with("Dataset(10 rows; columns: i, src"));
}

#[test]
fn save_round_trips_and_hash_is_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let d = Dataset::new(vec![
        row(json!({"id": 1, "text": "héllo, \"world\"", "tags": ["a", "b"]})),
        row(json!({"id": 2, "text": "مرحبا", "tags": []})),
    ]);
    for ext in ["jsonl", "json"] {
        let p = dir.path().join(format!("out.{ext}"));
        d.save(&p).unwrap();
        let back = load_dataset(p.to_str().unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(back.rows(), d.rows(), "{ext}");
        assert_eq!(back.hash(), d.hash());
    }
    let p = dir.path().join("sub/out.csv");
    d.save(&p).unwrap();
    let back = load_dataset(p.to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(back.row(0).unwrap()["text"], json!("héllo, \"world\""));
    assert_eq!(back.row(0).unwrap()["tags"], json!("[\"a\",\"b\"]"));
    assert!(d.save(dir.path().join("x.txt")).is_err());
    // Key order does not change the hash; values do.
    let swapped = Dataset::new(vec![
        row(json!({"tags": ["a", "b"], "text": "héllo, \"world\"", "id": 1})),
        row(json!({"text": "مرحبا", "id": 2, "tags": []})),
    ]);
    assert_eq!(swapped.hash(), d.hash());
    assert_ne!(d.take(1).hash(), d.hash());
    // sha256 of the single canonical line `{"a":1}\n`, checked with
    // `printf '{"a":1}\n' | sha256sum`.
    let one = Dataset::new(vec![row(json!({"a": 1}))]);
    assert_eq!(
        one.hash(),
        "e346432021b04179518d9614f3560ccd71354a4ee101ddcb893d6959a9d6301c"
    );
}

fn no_tokens() -> Option<TokenCounter<'static, DataError>> {
    None
}

#[test]
fn mixture_gives_exact_counts() {
    let en = numbered(6000, "en");
    let ur = numbered(300, "ur");
    let opts = MixtureOptions {
        ratios: vec![0.99, 0.01],
        total: 5000,
        seed: 1,
        by: MixBy::Examples,
    };
    let m = mixture(&[&en, &ur], &opts, no_tokens()).unwrap();
    assert_eq!(m.len(), 5000);
    let ur_rows = m.rows().iter().filter(|r| r["src"] == json!("ur")).count();
    assert_eq!(ur_rows, 50);
    // Deterministic per seed, different with another seed.
    assert_eq!(m, mixture(&[&en, &ur], &opts, no_tokens()).unwrap());
    let other = MixtureOptions {
        seed: 2,
        ..opts.clone()
    };
    let m2 = mixture(&[&en, &ur], &other, no_tokens()).unwrap();
    assert_ne!(m.hash(), m2.hash());
    assert_eq!(
        m2.rows().iter().filter(|r| r["src"] == json!("ur")).count(),
        50
    );
    // No row drawn twice.
    let mut ur_ids: Vec<u64> = m
        .rows()
        .iter()
        .filter(|r| r["src"] == json!("ur"))
        .filter_map(|r| r["i"].as_u64())
        .collect();
    ur_ids.sort_unstable();
    ur_ids.dedup();
    assert_eq!(ur_ids.len(), 50);
    // Ratios that do not sum to 1, or too few rows, are errors.
    let bad = MixtureOptions {
        ratios: vec![0.99, 0.1],
        ..opts.clone()
    };
    assert!(mixture(&[&en, &ur], &bad, no_tokens())
        .unwrap_err()
        .to_string()
        .contains("sum to 1"));
    let big = MixtureOptions {
        ratios: vec![0.9, 0.1],
        ..opts.clone()
    };
    let err = mixture(&[&en, &ur], &big, no_tokens())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "mixture: dataset 1 has 300 rows but 500 are needed");
}

#[test]
fn mixture_by_tokens() {
    // Every row of "en" has 10 tokens, every row of "ur" 3: budgets 0.8·100 = 80 and 20.
    // en takes 8 rows (80 tokens); ur takes 6 rows (18 tokens, a 7th would make 21 > 20).
    let en = numbered(50, "en");
    let ur = numbered(50, "ur");
    let opts = MixtureOptions {
        ratios: vec![0.8, 0.2],
        total: 100,
        seed: 3,
        by: MixBy::Tokens,
    };
    let mut count =
        |r: &Row| -> Result<usize, DataError> { Ok(if r["src"] == json!("en") { 10 } else { 3 }) };
    let m = mixture(&[&en, &ur], &opts, Some(&mut count)).unwrap();
    let n_en = m.rows().iter().filter(|r| r["src"] == json!("en")).count();
    assert_eq!((n_en, m.len() - n_en), (8, 6));
    assert!(mixture(&[&en, &ur], &opts, no_tokens()).is_err());
    let small = numbered(2, "ur");
    let err = mixture(&[&en, &small], &opts, Some(&mut count))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "mixture: dataset 1 has only 6 tokens but 20 are needed"
    );
}

/// A dataset with `k` rows `{g, i}` for each stratum `(g, k)`, strata in order.
fn strata(sizes: &[(&str, usize)]) -> Dataset {
    let mut rows = Vec::new();
    for &(g, k) in sizes {
        for i in 0..k {
            rows.push(row(json!({"g": g, "i": i})));
        }
    }
    Dataset::new(rows)
}

/// Rows of each stratum in `d`.
fn stratum_counts(d: &Dataset, groups: &[&str]) -> Vec<usize> {
    groups
        .iter()
        .map(|g| d.rows().iter().filter(|r| r["g"] == json!(g)).count())
        .collect()
}

#[test]
fn stratified_sample_is_proportional() {
    // Groups a: 6 rows, b: 3, c: 1 (N = 10). n = 5: quotas 3.0, 1.5, 0.5; floors 3, 1, 0 (4);
    // the missing unit goes to b (remainder .5 ties with c, b was seen first).
    let d = strata(&[("a", 6), ("b", 3), ("c", 1)]);
    let s = d.stratified_sample(5, "g", 9).unwrap();
    assert_eq!(stratum_counts(&s, &["a", "b", "c"]), [3, 2, 0]);
    assert_eq!(s, d.stratified_sample(5, "g", 9).unwrap());
    // Exact integer remainders: strata of 1, 1 and 7 rows, n = 3. The quotas 1/3, 1/3, 7/3
    // leave three equal remainders of 1/3 and the missing unit goes to the stratum seen first.
    let s2 = strata(&[("x", 1), ("y", 1), ("z", 7)])
        .stratified_sample(3, "g", 4)
        .unwrap();
    assert_eq!(stratum_counts(&s2, &["x", "y", "z"]), [1, 0, 2]);
    assert!(d.stratified_sample(11, "g", 9).is_err());
    let err = d.stratified_sample(2, "lang", 9).unwrap_err().to_string();
    assert!(
        err.contains("missing field 'lang' (fields present: g, i)"),
        "{err}"
    );
}

#[test]
fn bactrian_partition_covers_every_index_at_least_twice() {
    let n = 1003;
    let assign = bactrian_assignment(n, 22, 10, 1, 1).unwrap();
    assert_eq!(assign.len(), 22);
    let mut takers: HashMap<usize, Vec<usize>> = HashMap::new();
    for (lang, idx) in assign.iter().enumerate() {
        for &j in idx {
            takers.entry(j).or_default().push(lang);
        }
    }
    assert_eq!(takers.len(), n, "every index is taken");
    for (j, langs) in &takers {
        // Languages i and i+10 (and i+20 for parts 0 and 1) share part i mod 10.
        assert!(langs.len() == 2 || langs.len() == 3, "index {j}: {langs:?}");
        let part = langs[0] % 10;
        assert!(langs.iter().all(|l| l % 10 == part));
        assert_eq!(langs.len(), if part < 2 { 3 } else { 2 });
    }
    // Part sizes as numpy.array_split: 1003 = 10·100 + 3, parts 0..2 have 101 indices.
    let sizes: Vec<usize> = assign.iter().take(10).map(Vec::len).collect();
    assert_eq!(
        sizes,
        vec![101, 101, 101, 100, 100, 100, 100, 100, 100, 100]
    );
    assert_eq!(assign[0], assign[10]);
    assert_eq!(assign[0], assign[20]);
    assert_eq!(assign, bactrian_assignment(n, 22, 10, 1, 1).unwrap());
    assert_ne!(assign, bactrian_assignment(n, 22, 10, 1, 2).unwrap());

    let langs: Vec<(String, Dataset)> = ["en", "ur", "sw"]
        .iter()
        .map(|l| (l.to_string(), numbered(20, l)))
        .collect();
    let bx = bactrian_partition(&langs, 2, 1, 5).unwrap();
    // Parts of 10 each: en and sw take part 0, ur takes part 1; so 30 rows and every index twice.
    assert_eq!(bx.len(), 30);
    let ur_rows: Vec<&Row> = bx
        .rows()
        .iter()
        .filter(|r| r["lang"] == json!("ur"))
        .collect();
    assert_eq!(ur_rows.len(), 10);
    let mut en_i: Vec<u64> = bx
        .rows()
        .iter()
        .filter(|r| r["lang"] == json!("en"))
        .filter_map(|r| r["i"].as_u64())
        .collect();
    let mut sw_i: Vec<u64> = bx
        .rows()
        .iter()
        .filter(|r| r["lang"] == json!("sw"))
        .filter_map(|r| r["i"].as_u64())
        .collect();
    en_i.sort_unstable();
    sw_i.sort_unstable();
    assert_eq!(en_i, sw_i);
    let bad = vec![
        ("en".to_string(), numbered(20, "en")),
        ("ur".to_string(), numbered(19, "ur")),
    ];
    assert!(bactrian_partition(&bad, 2, 1, 5)
        .unwrap_err()
        .to_string()
        .contains("parallel"));
    assert!(bactrian_assignment(10, 2, 0, 1, 1).is_err());
}

#[test]
fn bactrian_partition_with_huge_partition_count_builds_only_used_parts() {
    // i64::MAX partitions (as a script may pass) is neither a capacity overflow nor a hang: with
    // more partitions than rows every part is at most one row, and only the languages' parts
    // are built.
    let huge = i64::MAX as usize;
    let assign = bactrian_assignment(5, 3, huge, 1, 7).unwrap();
    assert_eq!(assign.len(), 3);
    assert!(assign.iter().all(|p| p.len() == 1), "{assign:?}");
    // The same as asking for exactly as many parts as rows: parts of one row each, in the
    // shuffled order.
    assert_eq!(assign, bactrian_assignment(5, 3, 5, 1, 7).unwrap());
}

#[test]
fn bactrian_x11_takes_two_parts_per_language() {
    // 11 languages, 10 parts of 67 rows out of 670: language i takes parts 2i mod 10 and
    // (2i + 1) mod 10, so 134 rows (20 %) each and every index in at least two languages.
    let n = 670;
    let assign = bactrian_assignment(n, 11, 10, 2, 3).unwrap();
    assert!(assign.iter().all(|a| a.len() == 134));
    let mut uses = vec![0usize; n];
    for a in &assign {
        for &j in a {
            uses[j] += 1;
        }
    }
    assert!(uses.iter().all(|&u| u >= 2), "{:?}", uses.iter().min());
    // Languages 0 and 5 share both parts (0, 1); language 10 wraps to parts 0 and 1 too.
    assert_eq!(assign[0], assign[5]);
    assert_eq!(assign[0], assign[10]);
    assert_ne!(assign[0], assign[1]);
    // One part per language is the rule as written: 67 rows each.
    let one = bactrian_assignment(n, 11, 10, 1, 3).unwrap();
    assert!(one.iter().all(|a| a.len() == 67));
    let e = bactrian_assignment(n, 11, 10, 11, 3)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("parts_per_lang must be in 1..=10 (the partitions), got 11"),
        "{e}"
    );
}
