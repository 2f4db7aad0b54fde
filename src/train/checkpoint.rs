//! Resumable training checkpoints, written atomically.
//!
//! A checkpoint is a directory `step-NNNNNNNN/` with `params.safetensors` (every trainable
//! tensor with its Adam moments, f32, bit-exact) and `state.json` (optimizer step, losses,
//! tokens, AdaLoRA allocator, and the SHA-256 of `params.safetensors`). It is written under a
//! temporary name (`.tmp-step-NNNNNNNN-<pid>`, removed again if the write fails) and renamed,
//! then the file `latest` is replaced atomically, so a run killed at any moment leaves the last
//! complete checkpoint intact. After each write only the newest `keep` checkpoints are kept.
//!
//! Resuming ([`read_resume`]) takes the newest checkpoint that reads back intact: a corrupt or
//! incomplete one is skipped with a warning (the one before it is used), and a missing `latest`
//! pointer is not trusted to mean "no checkpoint": the `step-*` directories are scanned.
//! Random streams are derived from `(seed, step)`, so no generator state needs saving: a
//! resumed run draws exactly what the uninterrupted run would have.

use super::TrainError;
use crate::tensor::{load_safetensors, save_safetensors, HostTensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The scalar part of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps completed.
    pub step: usize,
    /// Loss of every completed step.
    pub losses: Vec<f64>,
    /// Tokens processed.
    pub tokens: usize,
    /// Seconds spent before this checkpoint.
    pub seconds: f64,
    /// The adapter method's own state (AdaLoRA's allocator), as the method wrote it; stored
    /// under the key `allocator` (the only method with state so far), so older checkpoints
    /// still resume.
    #[serde(rename = "allocator")]
    pub method_state: Option<serde_json::Value>,
    /// A fingerprint of the run's options and data, to refuse resuming a different run.
    pub fingerprint: String,
    /// SHA-256 of `params.safetensors` (checked on resume; absent in checkpoints written
    /// before it was recorded, which are then checked only for readability).
    #[serde(default)]
    pub params_sha256: Option<String>,
}

/// The directory name of the checkpoint after `step` optimizer steps.
pub fn step_name(step: usize) -> String {
    format!("step-{step:08}")
}

/// The step of a checkpoint directory name (`step-00000012` → 12).
fn parse_step_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("step-")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The checkpoint directories in `dir` as `(step, path)`, newest (highest step) first.
pub fn list(dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let step = parse_step_name(&e.file_name().to_string_lossy())?;
            Some((step, e.path()))
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.0));
    out
}

/// Removes the temporary directories that an interrupted or failed checkpoint write left in
/// `dir` (`.tmp-step-*`); returns how many were removed.
pub fn remove_leftovers(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-step-"))
        .filter(|e| std::fs::remove_dir_all(e.path()).is_ok())
        .count()
}

/// Lowercase hex SHA-256 of a file.
fn sha256_file(path: &Path) -> Result<String, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::file(path.display(), e))?;
    Ok(crate::text::sha256_hex(&bytes))
}

/// Writes a checkpoint, points `latest` at it and prunes all but the newest `keep` checkpoints
/// (counting this one; directories of later steps, left by another run, are not touched).
/// Returns its directory. A failed write removes its temporary directory.
pub fn write(
    dir: &Path,
    state: &TrainState,
    tensors: &BTreeMap<String, HostTensor>,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let name = step_name(state.step);
    let final_dir = dir.join(&name);
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let fill = || -> Result<(), TrainError> {
        std::fs::create_dir_all(&tmp).map_err(|e| TrainError::file(tmp.display(), e))?;
        let params = tmp.join("params.safetensors");
        save_safetensors(tensors, &params).map_err(|e| TrainError::file(tmp.display(), e))?;
        let mut state = state.clone();
        state.params_sha256 = Some(sha256_file(&params)?);
        let text = serde_json::to_string(&state).map_err(|e| TrainError::file(tmp.display(), e))?;
        crate::fsutil::write_atomic(&tmp.join("state.json"), text.as_bytes())
            .map_err(|e| TrainError::file(tmp.display(), e))?;
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(|e| TrainError::file(final_dir.display(), e))
    };
    fill().inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    crate::fsutil::write_atomic(&dir.join("latest"), name.as_bytes())
        .map_err(|e| TrainError::file(dir.display(), e))?;
    prune(dir, state.step, keep);
    Ok(final_dir)
}

/// Removes checkpoints of steps below `current` so that `keep` remain (this one included).
fn prune(dir: &Path, current: usize, keep: usize) {
    let older: Vec<PathBuf> = list(dir)
        .into_iter()
        .filter(|(s, _)| *s < current)
        .map(|(_, p)| p)
        .collect();
    for p in older.into_iter().skip(keep.saturating_sub(1)) {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// A checkpoint read back: its state, tensors and directory.
pub type Checkpoint = (TrainState, BTreeMap<String, HostTensor>, PathBuf);

/// Reads one checkpoint directory completely, checking it against its recorded step and hash.
pub fn read_dir(ck: &Path) -> Result<Checkpoint, TrainError> {
    let state_path = ck.join("state.json");
    let text = std::fs::read_to_string(&state_path)
        .map_err(|e| TrainError::file(state_path.display(), e))?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| TrainError::file(state_path.display(), e))?;
    let named = ck
        .file_name()
        .and_then(|n| parse_step_name(&n.to_string_lossy()));
    if named.is_some_and(|s| s != state.step) {
        return Err(TrainError::file(
            state_path.display(),
            format!("records step {} in a directory of another step", state.step),
        ));
    }
    let params = ck.join("params.safetensors");
    if let Some(want) = &state.params_sha256 {
        let got = sha256_file(&params)?;
        if &got != want {
            return Err(TrainError::file(
                params.display(),
                format!("content changed since it was written (sha256 {got}, recorded {want})"),
            ));
        }
    }
    let tensors = load_safetensors(&params).map_err(|e| TrainError::file(ck.display(), e))?;
    Ok((state, tensors, ck.to_path_buf()))
}

/// Reads the checkpoint to resume from, or `None` when there is none: the one `latest` points
/// at, else (unreadable, or no pointer) the newest older one that reads back intact. Without a
/// usable `latest` every `step-*` directory is a candidate. Directories of steps after
/// `latest` are not used (a run killed between the rename and the pointer update redoes one
/// step; a stale directory of an earlier, longer run must not win). Every skipped checkpoint
/// and a missing pointer are described in the returned warnings.
pub fn read_resume(dir: &Path) -> (Option<Checkpoint>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut found = list(dir);
    if found.is_empty() {
        return (None, warnings);
    }
    let latest = std::fs::read_to_string(dir.join("latest"))
        .ok()
        .map(|s| s.trim().to_string());
    match &latest {
        None => warnings.push(format!(
            "{}: the 'latest' pointer is missing; looking for the newest complete checkpoint among {} step directories",
            dir.display(),
            found.len()
        )),
        Some(name) => match parse_step_name(name).filter(|_| dir.join(name).is_dir()) {
            Some(step) => found.retain(|(s, _)| *s <= step),
            None => warnings.push(format!(
                "{}: 'latest' names '{name}', which is not a checkpoint here; looking for the newest complete one",
                dir.display()
            )),
        },
    }
    for (i, (_, path)) in found.iter().enumerate() {
        match read_dir(path) {
            Ok(ck) => {
                if i > 0 {
                    warnings.push(format!(
                        "resuming from the older checkpoint {}",
                        path.display()
                    ));
                }
                return (Some(ck), warnings);
            }
            Err(e) => warnings.push(format!("skipping an unusable checkpoint: {e}")),
        }
    }
    warnings.push(format!(
        "{}: no checkpoint is usable; training starts from step 0",
        dir.display()
    ));
    (None, warnings)
}

/// Reads the checkpoint `latest` points at, if any (no fallback; see [`read_resume`]).
pub fn read_latest(dir: &Path) -> Result<Option<Checkpoint>, TrainError> {
    let Ok(name) = std::fs::read_to_string(dir.join("latest")) else {
        return Ok(None);
    };
    read_dir(&dir.join(name.trim())).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: usize) -> TrainState {
        TrainState {
            step,
            losses: vec![1.0; step],
            tokens: 10 * step,
            seconds: 0.5,
            method_state: None,
            fingerprint: "fp".into(),
            params_sha256: None,
        }
    }

    fn tensors(x: f32) -> BTreeMap<String, HostTensor> {
        let mut t = BTreeMap::new();
        t.insert("w".into(), HostTensor::f32(vec![2, 2], vec![x; 4]).unwrap());
        t
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn keeps_the_newest_checkpoints_and_records_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        for s in 1..=5 {
            write(dir.path(), &state(s), &tensors(s as f32), 2).unwrap();
        }
        assert_eq!(
            names(dir.path()),
            ["latest", "step-00000004", "step-00000005"]
        );
        let (st, t, p) = read_latest(dir.path()).unwrap().unwrap();
        assert_eq!(
            (st.step, p.file_name().unwrap().to_str()),
            (5, Some("step-00000005"))
        );
        assert_eq!(t, tensors(5.0));
        let want = sha256_file(&p.join("params.safetensors")).unwrap();
        assert_eq!(st.params_sha256.as_deref(), Some(want.as_str()));
        // keep = 1 keeps only the one just written.
        write(dir.path(), &state(6), &tensors(6.0), 1).unwrap();
        assert_eq!(names(dir.path()), ["latest", "step-00000006"]);
    }

    #[test]
    fn resume_falls_back_past_a_corrupt_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        for s in 1..=3 {
            write(dir.path(), &state(s), &tensors(s as f32), 3).unwrap();
        }
        // One flipped byte in the data of the newest checkpoint: still a readable safetensors
        // file, but not the one written; the hash catches it.
        let p = dir.path().join("step-00000003/params.safetensors");
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 1] ^= 0x40;
        std::fs::write(&p, b).unwrap();
        let (ck, warnings) = read_resume(dir.path());
        let (st, t, _) = ck.unwrap();
        assert_eq!(st.step, 2);
        assert_eq!(t, tensors(2.0));
        assert!(
            warnings[0].contains("skipping an unusable checkpoint")
                && warnings[0].contains("step-00000003")
                && warnings[0].contains("content changed"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("older checkpoint"), "{warnings:?}");
        // A truncated state.json of step 2 as well: step 1 is used.
        std::fs::write(
            dir.path().join("step-00000002/state.json"),
            "{\"step\": 2, \"los",
        )
        .unwrap();
        let (ck, warnings) = read_resume(dir.path());
        assert_eq!(ck.unwrap().0.step, 1);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }

    #[test]
    fn directories_after_the_latest_pointer_are_not_used() {
        let dir = tempfile::tempdir().unwrap();
        for s in [2, 9] {
            write(dir.path(), &state(s), &tensors(s as f32), 5).unwrap();
        }
        // A shorter run (e.g. resume: false) wrote up to step 3 afterwards.
        write(dir.path(), &state(3), &tensors(3.0), 5).unwrap();
        let (ck, warnings) = read_resume(dir.path());
        assert_eq!(ck.unwrap().0.step, 3);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_missing_latest_pointer_scans_the_step_directories() {
        let dir = tempfile::tempdir().unwrap();
        for s in [2, 4] {
            write(dir.path(), &state(s), &tensors(s as f32), 5).unwrap();
        }
        std::fs::remove_file(dir.path().join("latest")).unwrap();
        let (ck, warnings) = read_resume(dir.path());
        assert_eq!(ck.unwrap().0.step, 4);
        assert!(
            warnings[0].contains("'latest' pointer is missing"),
            "{warnings:?}"
        );
        // Nothing usable at all: None, with a warning that says so.
        for s in [2, 4] {
            std::fs::remove_file(dir.path().join(format!("step-{s:08}/params.safetensors")))
                .unwrap();
        }
        let (ck, warnings) = read_resume(dir.path());
        assert!(ck.is_none());
        assert!(
            warnings.last().unwrap().contains("no checkpoint is usable"),
            "{warnings:?}"
        );
        // An empty directory: nothing to say.
        let empty = tempfile::tempdir().unwrap();
        let (ck, warnings) = read_resume(empty.path());
        assert!(ck.is_none() && warnings.is_empty());
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_directory() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &state(1), &tensors(1.0), 2).unwrap();
        // A leftover of a killed run is removed by remove_leftovers.
        std::fs::create_dir(dir.path().join(".tmp-step-00000002-999999")).unwrap();
        assert_eq!(remove_leftovers(dir.path()), 1);
        // The final name is occupied by a plain file, so renaming the finished temporary
        // directory onto it fails (ENOTDIR) after everything was written: the temporary
        // directory must be removed and the previous checkpoint stay the latest.
        std::fs::write(dir.path().join("step-00000002"), "not a directory").unwrap();
        let r = write(dir.path(), &state(2), &tensors(2.0), 2);
        assert!(r.is_err());
        assert!(
            !names(dir.path()).iter().any(|n| n.starts_with(".tmp-")),
            "{:?}",
            names(dir.path())
        );
        assert_eq!(read_latest(dir.path()).unwrap().unwrap().0.step, 1);
    }
}
