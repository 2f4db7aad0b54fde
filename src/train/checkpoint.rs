//! Resumable training checkpoints, written atomically.
//!
//! A checkpoint is a directory `step-NNNNNNNN/` with `params.safetensors` (every trainable
//! tensor with its Adam moments, f32, bit-exact) and `state.json` (optimizer step, losses,
//! tokens, AdaLoRA allocator). It is written under a temporary name and renamed, then the file
//! `latest` is replaced atomically, so a run killed at any moment leaves the last complete
//! checkpoint intact. Random streams are derived from `(seed, step)`, so no generator state
//! needs saving: a resumed run draws exactly what the uninterrupted run would have.

use super::TrainError;
use crate::adapter::adalora::RankAllocator;
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
    /// AdaLoRA allocator state.
    pub allocator: Option<RankAllocator>,
    /// A fingerprint of the run's options and data, to refuse resuming a different run.
    pub fingerprint: String,
}

/// Writes a checkpoint and points `latest` at it; returns its directory.
pub fn write(
    dir: &Path,
    state: &TrainState,
    tensors: &BTreeMap<String, HostTensor>,
) -> Result<PathBuf, TrainError> {
    let name = format!("step-{:08}", state.step);
    let final_dir = dir.join(&name);
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::file(tmp.display(), e))?;
    save_safetensors(tensors, &tmp.join("params.safetensors"))
        .map_err(|e| TrainError::file(tmp.display(), e))?;
    let text = serde_json::to_string(state).map_err(|e| TrainError::file(tmp.display(), e))?;
    crate::fsutil::write_atomic(&tmp.join("state.json"), text.as_bytes())
        .map_err(|e| TrainError::file(tmp.display(), e))?;
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir).map_err(|e| TrainError::file(final_dir.display(), e))?;
    crate::fsutil::write_atomic(&dir.join("latest"), name.as_bytes())
        .map_err(|e| TrainError::file(dir.display(), e))?;
    Ok(final_dir)
}

/// A checkpoint read back: its state, tensors and directory.
pub type Checkpoint = (TrainState, BTreeMap<String, HostTensor>, PathBuf);

/// Reads the checkpoint `latest` points at, if any.
pub fn read_latest(dir: &Path) -> Result<Option<Checkpoint>, TrainError> {
    let latest = dir.join("latest");
    let Ok(name) = std::fs::read_to_string(&latest) else {
        return Ok(None);
    };
    let ck = dir.join(name.trim());
    let text = std::fs::read_to_string(ck.join("state.json"))
        .map_err(|e| TrainError::file(ck.display(), e))?;
    let state: TrainState = serde_json::from_str(&text)
        .map_err(|e| TrainError::file(ck.join("state.json").display(), e))?;
    let tensors = load_safetensors(&ck.join("params.safetensors"))
        .map_err(|e| TrainError::file(ck.display(), e))?;
    Ok(Some((state, tensors, ck)))
}
