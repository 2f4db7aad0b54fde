//! Helpers shared by the integration tests: fixtures and models, and running the `peftlab`
//! binary in a temporary directory.
#![allow(dead_code)]

use peftlab::tensor::{load_safetensors, HostTensor};
use peftlab::{lab::Model, model::LoadOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A path under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Loads a fixture model in f32 on the CPU.
pub fn model(name: &str) -> Model {
    Model::load(&fixture(&format!("models/{name}")), LoadOptions::default()).unwrap()
}

/// Reads a safetensors fixture.
pub fn tensors(rel: &str) -> BTreeMap<String, HostTensor> {
    load_safetensors(&fixture(rel)).unwrap()
}

/// A 2-D integer tensor as rows.
pub fn rows(t: &HostTensor) -> Vec<Vec<i64>> {
    serde_json::from_value(t.to_value()).unwrap()
}

/// The probe batch of a model fixture, with padding removed: (rows, mask).
pub fn probe(name: &str) -> (Vec<Vec<u32>>, Vec<Vec<i64>>) {
    let r = tensors(&format!("models/{name}/reference.safetensors"));
    let ids = rows(&r["input_ids"]);
    let mask = rows(&r["attention_mask"]);
    let unpadded = ids
        .iter()
        .zip(&mask)
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, &k)| k == 1)
                .map(|(&i, _)| i as u32)
                .collect()
        })
        .collect();
    (unpadded, mask)
}

/// Max |a-b| over the positions where the mask is 1; `a` and `b` are `[B, T, X]`.
pub fn masked_diff(a: &HostTensor, b: &HostTensor, mask: &[Vec<i64>]) -> f64 {
    assert_eq!(a.shape, b.shape);
    let x = a.shape[2];
    let t = a.shape[1];
    let (va, vb) = (a.values_f32(), b.values_f32());
    let mut m = 0f64;
    for (bi, row) in mask.iter().enumerate() {
        for (ti, &keep) in row.iter().enumerate() {
            if keep == 1 {
                let o = (bi * t + ti) * x;
                for k in 0..x {
                    m = m.max(f64::from((va[o + k] - vb[o + k]).abs()));
                }
            }
        }
    }
    m
}

/// Largest |x| of a tensor.
pub fn max_abs(t: &HostTensor) -> f64 {
    t.values_f32()
        .iter()
        .fold(0f64, |m, v| m.max(f64::from(v.abs())))
}

/// `n` units in the last place of f32 at `magnitude` (`n·ε·magnitude`): the bound for comparing
/// two f32 computations of a value of that size. Two computations that round differently (other
/// batch shapes, summation orders, SIMD widths) cannot be held to less than their resolution, so
/// tests state their bounds in these units, with `n` justified where they use it (issue 17).
pub fn f32_ulps(n: f64, magnitude: f64) -> f64 {
    n * f64::from(f32::EPSILON) * magnitude
}

// ---- command-line helpers ----
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_peftlab"))
}

/// A `peftlab` command in `dir`, without a history file and with progress bars off.
pub fn peftlab(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .env("PEFTLAB_HISTORY", "")
        .env("NO_COLOR", "1");
    c
}

/// Result of a finished command.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Fails the test when the process panicked or died from a signal.
    pub fn assert_no_panic(&self) {
        assert!(
            self.code.is_some() && self.code != Some(101) && !self.stderr.contains("panicked"),
            "process panicked or was killed (code {:?})\nstdout:\n{}\nstderr:\n{}",
            self.code,
            tail(&self.stdout),
            self.stderr
        );
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs `peftlab ARGS` in `dir`.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    let out = peftlab(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run peftlab");
    Run::from_output(out)
}

/// Writes a file (creating directories) and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// Sends SIGINT to a child process (through `kill -INT`).
pub fn sigint(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -INT {pid} failed");
}

/// Waits for a child with a timeout (reading its piped output meanwhile); kills it and fails
/// the test when it takes too long.
pub fn wait_with_timeout(mut child: std::process::Child, limit: Duration) -> Run {
    use std::io::Read;
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(st) => break st,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                let (o, e) = (out_t.join().unwrap(), err_t.join().unwrap());
                panic!(
                    "peftlab did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{e}",
                    tail(&o)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Run {
        code: status.code(),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Every linear layer's base weight and bias, as host values.
pub fn base_weights(m: &Model) -> Vec<(String, Vec<f32>, Option<Vec<f32>>)> {
    peftlab::with_lm!(&m.lm, lm => lm
        .linears()
        .into_iter()
        .map(|(n, l)| {
            let w = peftlab::model::to_host(l.dense_weight()).unwrap().1;
            let b = l.bias.clone().map(|b| peftlab::model::to_host(b).unwrap().1);
            (n, w, b)
        })
        .collect())
}
