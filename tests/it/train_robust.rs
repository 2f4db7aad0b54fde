//! Training robustness through the binary: a run killed with SIGKILL resumes from its last
//! checkpoint to exactly the adapter of an uninterrupted run (also past a corrupt checkpoint or a
//! lost `latest` pointer); the log file gets one JSON line per step, each step once; old
//! checkpoints are pruned; a diverging run stops with an error naming the step.

use crate::common;
use common::*;
use peftlab::train::TrainOptions;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn script(ck: &str, log: &str, adapter: &str) -> String {
    script_with(ck, log, adapter, "")
}

/// The training script, with `extra` train options (`, key: value, ...`).
fn script_with(ck: &str, log: &str, adapter: &str, extra: &str) -> String {
    format!(
        r#"
let m = load_model("{model}", #{{ progress: false }});
m.add_adapter(#{{ r: 4, dropout: 0.1, seed: 9 }});
let data = ui_strings("train", ["de"]).take(40);
let rep = m.train(data, #{{ lr: 2e-3, epochs: 6, batch_size: 4, seed: 5, checkpoint_dir: "{ck}",
                           checkpoint_every: 1, log_file: "{log}", progress: false{extra} }});
m.save_adapter("{adapter}");
print(rep.steps);
print(rep.resumed_from);
"#,
        model = fixture("models/tiny-llama").display()
    )
}

fn step_of(ck: &std::path::Path) -> usize {
    std::fs::read_to_string(ck.join("latest"))
        .ok()
        .and_then(|s| s.trim().trim_start_matches("step-").parse().ok())
        .unwrap_or(0)
}

#[test]
fn sigkill_then_resume_gives_the_uninterrupted_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    write(
        dir.path(),
        "full.rhai",
        &script(&p("ck_full"), &p("full.jsonl"), &p("full_adapter")),
    );
    let r = run(dir.path(), &["run", "full.rhai", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), vec!["60", "0"]);
    let log = std::fs::read_to_string(p("full.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 60, "one JSON line per optimizer step");
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    for k in ["step", "loss", "lr", "grad_norm", "tokens", "seconds"] {
        assert!(first.get(k).is_some(), "log line lacks {k}: {first}");
    }

    write(
        dir.path(),
        "cut.rhai",
        &script(&p("ck_cut"), &p("cut.jsonl"), &p("cut_adapter")),
    );
    let mut child = peftlab(dir.path())
        .args(["run", "cut.rhai", "--out", "out2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ck = dir.path().join("ck_cut");
    let t0 = Instant::now();
    while step_of(&ck) < 5 {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed run reported success");
    let killed_at = step_of(&ck);
    assert!(killed_at < 60, "killed after the last step");
    let r = run(dir.path(), &["run", "cut.rhai", "--out", "out2"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "60");
    assert!(
        lines[1].parse::<usize>().unwrap() >= 5,
        "did not resume: {}",
        lines[1]
    );
    assert_same_adapters(dir.path(), &format!("killed at step {killed_at}"));
    // The log has every step once although the killed run had logged steps past its last
    // checkpoint; only the newest keep_checkpoints (default 2) checkpoints remain.
    assert_eq!(logged_steps(&p("cut.jsonl")), (1..=60).collect::<Vec<_>>());
    for ck in ["ck_full", "ck_cut"] {
        assert_eq!(
            entries(&dir.path().join(ck)),
            ["latest", "step-00000059", "step-00000060"],
            "{ck}"
        );
    }
}

/// The `step` of every line of a log file, in order.
fn logged_steps(path: &str) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// The sorted names in a directory.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn constant_lr_script(ck: &str, log: &str, adapter: &str, max_steps: &str) -> String {
    // A constant schedule: the learning rate does not depend on the total number of steps,
    // so a run cut short by max_steps (not part of the run's fingerprint) follows the same
    // trajectory as the full run.
    script_with(
        ck,
        log,
        adapter,
        &format!(", schedule: \"constant\", keep_checkpoints: 3, max_steps: {max_steps}"),
    )
}

#[test]
fn resume_falls_back_past_a_corrupt_checkpoint_and_a_lost_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    write(
        dir.path(),
        "full.rhai",
        &constant_lr_script(&p("ck_full"), &p("full.jsonl"), &p("full_adapter"), "()"),
    );
    let r = run(dir.path(), &["run", "full.rhai", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), vec!["60", "0"]);

    // A run stopped after 10 steps, keeping checkpoints 8, 9 and 10.
    write(
        dir.path(),
        "cut.rhai",
        &constant_lr_script(&p("ck_cut"), &p("cut.jsonl"), &p("cut_adapter"), "10"),
    );
    let r = run(dir.path(), &["run", "cut.rhai", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let ck = dir.path().join("ck_cut");
    assert_eq!(
        entries(&ck),
        ["latest", "step-00000008", "step-00000009", "step-00000010"]
    );
    // Damage: a flipped byte in the newest checkpoint's tensors, the `latest` pointer deleted,
    // and an unfinished checkpoint write left behind.
    let params = ck.join("step-00000010/params.safetensors");
    let mut bytes = std::fs::read(&params).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x10;
    std::fs::write(&params, bytes).unwrap();
    std::fs::remove_file(ck.join("latest")).unwrap();
    std::fs::create_dir(ck.join(".tmp-step-00000011-4242")).unwrap();
    std::fs::write(
        ck.join(".tmp-step-00000011-4242/params.safetensors"),
        "partial",
    )
    .unwrap();

    // The full run, resumed: from step 9, with warnings that say why.
    write(
        dir.path(),
        "cut.rhai",
        &constant_lr_script(&p("ck_cut"), &p("cut.jsonl"), &p("cut_adapter"), "()"),
    );
    let r = run(dir.path(), &["run", "cut.rhai", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        vec!["60", "9"],
        "{}",
        r.stderr
    );
    for want in [
        "warning: train: ",
        "removed 1 unfinished checkpoint write",
        "the 'latest' pointer is missing",
        "skipping an unusable checkpoint",
        "step-00000010/params.safetensors: content changed",
        "resuming from the older checkpoint",
    ] {
        assert!(
            r.stderr.contains(want),
            "missing '{want}' in:\n{}",
            r.stderr
        );
    }
    assert_same_adapters(dir.path(), "after the fallback");
    assert_eq!(logged_steps(&p("cut.jsonl")), (1..=60).collect::<Vec<_>>());
    assert_eq!(
        entries(&ck),
        ["latest", "step-00000058", "step-00000059", "step-00000060"]
    );
}

#[test]
fn keep_checkpoints_must_be_positive() {
    let o = TrainOptions {
        keep_checkpoints: 0,
        ..Default::default()
    };
    let e = o.validate().unwrap_err().to_string();
    assert!(e.contains("keep_checkpoints must be >= 1 (got 0)"), "{e}");
}

#[test]
fn a_nan_loss_stops_training_with_the_step() {
    // An adapter whose B matrix holds NaN (e.g. a corrupt file) makes the first loss NaN.
    use peftlab::tensor::{load_safetensors, save_safetensors, HostData};
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("adapters/lora/adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    let mut t = load_safetensors(&fixture("adapters/lora/adapter_model.safetensors")).unwrap();
    let key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
    if let Some(HostData::F32(v)) = t.get_mut(key).map(|x| &mut x.data) {
        v[0] = f32::NAN;
    }
    save_safetensors(&t, &dir.path().join("adapter_model.safetensors")).unwrap();
    let mut m = model("tiny-llama");
    m.load_adapter(dir.path()).unwrap();
    let d = peftlab::eval::ui_strings("train", Some(&["de".to_string()]), None).unwrap();
    let rows = d.rows()[..8].to_vec();
    let ck = dir.path().join("ck").display().to_string();
    let o = TrainOptions {
        checkpoint_dir: Some(ck),
        batch_size: 4,
        ..Default::default()
    };
    let e = m
        .train(&rows, &o, &mut |_| {}, &|| false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-finite loss NaN at step 1"), "{e}");
}

/// The adapter of the resumed run (`cut_adapter`) equals the uninterrupted one's
/// (`full_adapter`) bit for bit.
fn assert_same_adapters(dir: &std::path::Path, when: &str) {
    let load = |name: &str| {
        peftlab::tensor::load_safetensors(&dir.join(name).join("adapter_model.safetensors"))
            .unwrap()
    };
    assert_eq!(
        load("full_adapter"),
        load("cut_adapter"),
        "the resumed adapter differs from the uninterrupted one ({when})"
    );
}
