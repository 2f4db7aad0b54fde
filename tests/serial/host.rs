//! The host as a library: error positions from bindings, interruption, captured output.

use peftlab::host::{bind, ErrorKind, Host, ResultExt, RhaiResult};

use crate::SERIAL;

#[derive(Debug, thiserror::Error)]
#[error("rank must be > 0 (got {0})")]
struct RankError(i64);

fn host_with_test_bindings() -> Host {
    let mut host = peftlab::api::host().capture_output().build();
    bind(
        host.engine_mut(),
        "lora_rank",
        ["r"],
        "Test binding: fails for r <= 0.",
        |r: i64| -> RhaiResult<i64> {
            if r <= 0 {
                return Err(RankError(r)).ctx("lora_rank");
            }
            Ok(r)
        },
    );
    bind(
        host.engine_mut(),
        "press_ctrl_c",
        [],
        "Test binding: simulates Ctrl-C inside a native call.",
        || -> RhaiResult<()> {
            peftlab::interrupt::trigger();
            peftlab::interrupt::check().ctx("press_ctrl_c")
        },
    );
    host
}

#[test]
fn domain_errors_get_the_call_position_filled_in() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut host = host_with_test_bindings();
    let err = host
        .eval("let a = 1;\nlet b =   lora_rank(0);\n")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Runtime);
    assert_eq!(err.message, "lora_rank: rank must be > 0 (got 0)");
    let loc = err.location.clone().unwrap();
    assert_eq!((loc.line, loc.column), (2, 11));
    assert!(
        err.rendered
            .contains("2 | let b =   lora_rank(0);\n  |           ^ line 2, column 11"),
        "{}",
        err.rendered
    );
    // Inside a script function the position is the call inside the function body.
    let err = host
        .eval("fn f(x) {\n  lora_rank(x)\n}\nf(-3)")
        .unwrap_err();
    let loc = err.location.clone().unwrap();
    assert_eq!((loc.line, loc.column), (2, 3));
    assert!(
        err.rendered.contains("in call to function 'f'"),
        "{}",
        err.rendered
    );
    // Catchable, with the message.
    assert_eq!(
        host.eval("let m = (); try { lora_rank(0); } catch (e) { m = e; } m")
            .unwrap()
            .to_string(),
        "lora_rank: rank must be > 0 (got 0)"
    );
}

#[test]
fn interruption_in_a_native_call_is_not_catchable() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut host = host_with_test_bindings();
    let err = host
        .eval("let x = 0;\ntry { press_ctrl_c(); } catch (e) { x = 1; }\nx = 2;")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Interrupted);
    assert_eq!(err.message, "interrupted (Ctrl-C)");
    // The next evaluation clears the flag; the scope survived.
    assert_eq!(host.eval("x").unwrap().as_int().unwrap(), 0);
}

#[test]
fn output_is_captured_and_values_are_summarized() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut host = peftlab::api::host()
        .capture_output()
        .out_dir("unused")
        .build();
    let _ = host.eval("print(\"hello\"); debug(42);").unwrap();
    assert_eq!(host.output(), "hello\n");
    assert_eq!(host.messages(), "[<input:1>:1:17] 42\n");
    let v = host.eval("let sw = stopwatch(); sw").unwrap();
    assert!(
        host.summarize(&v).starts_with("Stopwatch("),
        "{}",
        host.summarize(&v)
    );
    let v = host
        .eval("let big = []; for i in 0..100 { big.push(i) } big")
        .unwrap();
    assert_eq!(
        host.summarize(&v),
        "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ... (100 items)]"
    );
    let v = host.eval("#{ name: \"x\", list: [sw] }").unwrap();
    assert!(
        host.summarize(&v).starts_with("#{list: [Stopwatch("),
        "{}",
        host.summarize(&v)
    );
    assert_eq!(host.eval("out_dir()").unwrap().to_string(), "unused");
}

#[test]
fn json_values_and_json_tables_have_their_own_readers() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut host = peftlab::api::host()
        .capture_output()
        .out_dir(dir.path().to_str().unwrap())
        .build();
    // A nested value comes back as it was written.
    let v = host
        .eval(
            "write_json_value(#{ a: [1, 2.5, \"x\"], b: #{ c: true } }, out_path(\"v.json\"));\n\
             let v = read_json_value(out_path(\"v.json\"));\n\
             `${v.a[0]} ${v.a[1]} ${v.a[2]} ${v.b.c}`",
        )
        .unwrap();
    assert_eq!(v.to_string(), "1 2.5 x true");
    // An array of records is a Table for read_json.
    let n = host
        .eval(
            "write_json(table([#{ m: \"lora\", f1: 0.5 }, #{ m: \"dora\", f1: 0.25 }]), out_path(\"t.json\"));\n\
             let t = read_json(out_path(\"t.json\"));\n\
             `${t.len()} ${t[1].m} ${t[1].f1}`",
        )
        .unwrap();
    assert_eq!(n.to_string(), "2 dora 0.25");
}

#[test]
fn reading_data_files_stops_on_ctrl_c() {
    use peftlab::data::{io::read_rows, DataError};
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("d.jsonl");
    std::fs::write(&jsonl, "{\"a\": 1}\n{\"a\": 2}\n").unwrap();
    let json = dir.path().join("d.json");
    std::fs::write(&json, "[{\"a\": 1}, {\"a\": 2}]").unwrap();
    let csv = dir.path().join("d.csv");
    std::fs::write(&csv, "a\n1\n2\n").unwrap();
    let parquet = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/evaldata/xnli/de/validation-00000-of-00001.parquet");
    for p in [&jsonl, &json, &csv, &parquet] {
        assert!(read_rows(p, None).is_ok(), "{}", p.display());
        peftlab::interrupt::trigger();
        let r = read_rows(p, None);
        peftlab::interrupt::reset();
        assert!(
            matches!(r, Err(DataError::Interrupted(_))),
            "{}: {r:?}",
            p.display()
        );
    }
}

#[test]
fn tokenising_training_data_stops_on_ctrl_c() {
    use peftlab::train::{batch::tokenize, TrainError};
    use peftlab::{lab::Model, model::LoadOptions};
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models/tiny-llama");
    let m = Model::load(&dir, LoadOptions::default()).unwrap();
    let row: peftlab::value::Row =
        serde_json::from_str(r#"{"instruction": "Say hi", "input": "", "output": "hi"}"#).unwrap();
    let rows = vec![row; 3];
    let (ok, _) = tokenize(&rows, &m.tokenizer, "alpaca", 64, false, &[]).unwrap();
    assert_eq!(ok.len(), 3);
    peftlab::interrupt::trigger();
    let r = tokenize(&rows, &m.tokenizer, "alpaca", 64, false, &[]);
    peftlab::interrupt::reset();
    assert!(
        matches!(r, Err(TrainError::Interrupted { step: 0, .. })),
        "{:?}",
        r.map(|(e, n)| (e.len(), n))
    );
}
