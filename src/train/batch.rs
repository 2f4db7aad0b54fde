//! Tokenising, masking, truncating, padding and packing training examples.
//!
//! Each example is `encode(prompt + response) + [EOS]`; labels are `-100` on the prompt tokens
//! (the length of `encode(prompt)`) unless `train_on_prompt`. Examples longer than `max_len` are
//! truncated (and counted). Micro-batches are right-padded with the attention mask covering
//! real tokens only. With packing, consecutive examples share a row up to `max_len`; every token
//! carries its segment, attention never crosses segments, positions restart in each segment and
//! the first label of each segment is ignored (as `DataCollatorWithFlattening` does).

use super::template::render;
use super::TrainError;
use crate::model::llama::Batch;
use crate::model::tokenizer::Tokenizer;
use crate::value::Row;
use std::collections::BTreeMap;

/// One tokenised example.
#[derive(Debug, Clone)]
pub struct Example {
    /// Token ids (prompt, response, EOS).
    pub ids: Vec<u32>,
    /// Labels (`-100` = ignored).
    pub labels: Vec<i64>,
    /// FLix features taken from the row.
    pub features: BTreeMap<String, String>,
}

/// Whether a label row has a token to learn from (labels are aligned with the ids, so the
/// first position is never a target).
pub fn has_label(labels: &[i64]) -> bool {
    labels.iter().skip(1).any(|&l| l != -100)
}

/// The error for examples with nothing to learn from; `what` says which ones ("train: no
/// example"). When truncation to `max_len` cut examples, it says so: that is the usual cause.
pub fn no_label_error(what: &str, truncated: usize, n: usize, max_len: usize) -> TrainError {
    if truncated > 0 {
        TrainError::Data(format!(
            "{what} keeps a response token after truncation to max_len = {max_len} \
             ({truncated} of {n} examples were cut, prompts included); raise max_len or shorten \
             the prompts"
        ))
    } else {
        TrainError::Data(format!(
            "{what} has a token to learn from (every label is -100: are the responses empty?)"
        ))
    }
}

/// Tokenises every row; returns the examples and how many were truncated.
pub fn tokenize(
    rows: &[Row],
    tok: &Tokenizer,
    template: &str,
    max_len: usize,
    train_on_prompt: bool,
    feature_keys: &[String],
) -> Result<(Vec<Example>, usize), TrainError> {
    let eos = tok.eos_ids.first().copied().ok_or_else(|| {
        TrainError::Data("the tokenizer has no EOS token to end responses with".into())
    })?;
    let mut out = Vec::with_capacity(rows.len());
    let mut truncated = 0;
    for (i, row) in rows.iter().enumerate() {
        if crate::interrupt::is_set() {
            return Err(TrainError::Interrupted {
                step: 0,
                checkpoint: String::new(),
            });
        }
        let (prompt, response) = render(template, row, i)?;
        let p = tok.encode(&prompt)?;
        let mut ids = tok.encode(&format!("{prompt}{response}"))?;
        ids.push(eos);
        let n_prompt = p.len().min(ids.len());
        let mut labels: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
        if !train_on_prompt {
            labels[..n_prompt].iter_mut().for_each(|l| *l = -100);
        }
        if ids.len() > max_len {
            ids.truncate(max_len);
            labels.truncate(max_len);
            truncated += 1;
        }
        let features = feature_keys
            .iter()
            .filter_map(|k| {
                row.get(k)
                    .and_then(|v| v.as_str())
                    .map(|v| (k.clone(), v.to_string()))
            })
            .collect();
        out.push(Example {
            ids,
            labels,
            features,
        });
    }
    Ok((out, truncated))
}

/// FLix feature dropout: each feature of each example is dropped independently with
/// probability `p`, drawn from the ChaCha stream `(seed, stream)` (the trainer names the stream
/// after the optimizer step and micro-batch, so a resumed run draws the same).
pub fn drop_features(examples: &mut [Example], p: f64, seed: u64, stream: &str) {
    if p <= 0.0 {
        return;
    }
    use rand::RngExt;
    let mut r = crate::rng::derived(seed, stream);
    for e in examples {
        e.features.retain(|_, _| r.random::<f64>() >= p);
    }
}

/// The parts of one (packed) row while it is assembled.
type RowParts = (Vec<u32>, Vec<i64>, Vec<usize>, Vec<u32>);

/// A micro-batch ready for the model.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    /// Padded ids, validity and (packed) segments.
    pub batch: Batch,
    /// Labels aligned with `batch.ids` (`-100` on padding).
    pub labels: Vec<Vec<i64>>,
    /// For each token, the index (into `features`) of its example, or `usize::MAX` on padding.
    pub example_of: Vec<Vec<usize>>,
    /// Features of each example in this batch.
    pub features: Vec<BTreeMap<String, String>>,
    /// Number of label tokens that count in the loss.
    pub n_targets: usize,
}

/// Builds a right-padded (or packed) micro-batch from examples.
pub fn collate(
    examples: &[&Example],
    pad: u32,
    packing: bool,
    max_len: usize,
) -> Result<TrainBatch, TrainError> {
    // Per packed row: ids, labels, example index of each token, segment of each token.
    let mut rows: Vec<RowParts> = Vec::new();
    for (ei, ex) in examples.iter().enumerate() {
        let fits = rows
            .last()
            .is_some_and(|r| packing && r.0.len() + ex.ids.len() <= max_len);
        if !fits {
            rows.push((Vec::new(), Vec::new(), Vec::new(), Vec::new()));
        }
        let Some(row) = rows.last_mut() else { continue };
        let seg = row.3.last().map_or(0, |s| s + 1);
        let mut labels = ex.labels.clone();
        if packing && !row.0.is_empty() {
            if let Some(first) = labels.first_mut() {
                *first = -100;
            }
        }
        row.0.extend(&ex.ids);
        row.1.extend(labels);
        row.2.extend(std::iter::repeat_n(ei, ex.ids.len()));
        row.3.extend(std::iter::repeat_n(seg, ex.ids.len()));
    }
    let t = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    if t == 0 {
        return Err(TrainError::Data("empty batch".into()));
    }
    let mut ids = Vec::new();
    let mut valid = Vec::new();
    let mut labels = Vec::new();
    let mut example_of = Vec::new();
    let mut segments = Vec::new();
    let mut n_targets = 0;
    for (mut i, mut l, mut e, mut s) in rows {
        let n = i.len();
        n_targets += l.iter().skip(1).filter(|&&x| x != -100).count();
        i.resize(t, pad);
        l.resize(t, -100);
        e.resize(t, usize::MAX);
        s.resize(t, u32::MAX);
        let mut v = vec![true; n];
        v.resize(t, false);
        ids.push(i);
        valid.push(v);
        labels.push(l);
        example_of.push(e);
        segments.push(s);
    }
    Ok(TrainBatch {
        batch: Batch {
            ids,
            valid,
            segments: if packing { Some(segments) } else { None },
        },
        labels,
        example_of,
        features: examples.iter().map(|e| e.features.clone()).collect(),
        n_targets,
    })
}
