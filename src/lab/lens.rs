//! The logit lens on the model handle: every layer's hidden state through the final norm and
//! the output head, top-k tokens per position, their language (see [`crate::lens`]).

use super::Model;
use crate::adapter::AdapterCtx;
use crate::backend::LmBackend;
use crate::lens::{proportions, LangId};
use crate::model::llama::{Batch, CausalLm};
use crate::model::to_host;
use crate::model::ModelError;
use crate::tensor::HostTensor;
use crate::value::{num, Row, Value};
use crate::with_lm;
use burn::tensor::{Tensor, TensorData};
use std::collections::HashMap;

/// Token languages of one `layer_languages` call: each distinct decoded string is identified
/// once (the same tokens recur across layers, positions and texts, and identification is the
/// costly part of the analysis).
pub struct TokenLangs<'a> {
    id: &'a LangId,
    seen: HashMap<String, Option<usize>>,
}

impl<'a> TokenLangs<'a> {
    /// An empty cache over `id`.
    pub fn new(id: &'a LangId) -> Self {
        TokenLangs {
            id,
            seen: HashMap::new(),
        }
    }

    /// The language index of `token` (see [`LangId::identify`]), identified on first sight.
    pub fn identify(&mut self, token: String) -> Option<usize> {
        let id = self.id;
        *self
            .seen
            .entry(token)
            .or_insert_with_key(|t| id.identify(t))
    }

    /// How many distinct strings were identified.
    pub fn distinct(&self) -> usize {
        self.seen.len()
    }
}

/// Indices of the `k` largest values (descending; ties by lower index).
pub fn top_k(v: &[f32], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..v.len() as u32).collect();
    let k = k.min(v.len());
    idx.select_nth_unstable_by(k.saturating_sub(1), |&a, &b| {
        v[b as usize].total_cmp(&v[a as usize]).then(a.cmp(&b))
    });
    idx.truncate(k);
    idx.sort_by(|&a, &b| v[b as usize].total_cmp(&v[a as usize]).then(a.cmp(&b)));
    idx
}

fn lens_rows<B: LmBackend>(
    lm: &CausalLm<B>,
    h: Tensor<B, 2>,
    normed: bool,
    k: usize,
) -> Result<Vec<Vec<u32>>, ModelError> {
    let ctx = AdapterCtx::eval();
    let h = if normed { h } else { lm.norm.forward(h) };
    let (shape, v) = to_host(lm.head(h, &ctx))?;
    let vocab = shape[1];
    Ok(v.chunks(vocab).map(|row| top_k(row, k)).collect())
}

impl Model {
    /// The logit lens on given hidden rows `[N, H]`: top-k token ids per row. `normed` says the
    /// rows are already after the final norm (the last hidden state is).
    pub fn lens_tokens(
        &self,
        hidden: &HostTensor,
        normed: bool,
        k: usize,
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        if hidden.shape.len() != 2 || hidden.shape[1] != self.config().hidden_size {
            return Err(ModelError::Input(format!(
                "lens: hidden rows must be [N, {}] (got {:?})",
                self.config().hidden_size,
                hidden.shape
            )));
        }
        with_lm!(&self.lm, lm => {
            let t = Tensor::<_, 2>::from_data(TensorData::new(hidden.values_f32(), [hidden.shape[0], hidden.shape[1]]), &lm.device);
            lens_rows(lm, t, normed, k)
        })
    }

    /// `layer_languages`: one row per hidden state (0 = embeddings, last = final layer) with the
    /// proportion of top-k lens tokens in each language and `other`, averaged over texts.
    /// `positions` is `"all"` or `"last"`.
    pub fn layer_languages(
        &self,
        texts: &[String],
        langs: &[String],
        k: usize,
        positions: &str,
    ) -> Result<Vec<Row>, ModelError> {
        let id = LangId::new(langs).map_err(|e| ModelError::Input(e.to_string()))?;
        if !matches!(positions, "all" | "last") {
            return Err(ModelError::Input(format!(
                "layer_languages: positions must be \"all\" or \"last\" (got {positions:?})"
            )));
        }
        if texts.is_empty() || k == 0 {
            return Err(ModelError::Input(
                "layer_languages: needs at least one text and top_k >= 1".into(),
            ));
        }
        let mut cache = TokenLangs::new(&id);
        let n_states = self.config().num_layers + 1;
        let mut sums = vec![vec![0f64; langs.len() + 1]; n_states];
        for text in texts {
            crate::interrupt::check()?;
            let ids = self.encode(text)?;
            if ids.is_empty() {
                return Err(ModelError::Input(format!(
                    "layer_languages: the text {text:?} encodes to no tokens"
                )));
            }
            let rows: Vec<usize> = if positions == "last" {
                vec![ids.len() - 1]
            } else {
                (0..ids.len()).collect()
            };
            let states = with_lm!(&self.lm, lm => {
                let batch = Batch { valid: vec![vec![true; ids.len()]], ids: vec![ids.clone()], segments: None };
                let f = lm.forward(&batch, None, true, &AdapterCtx::eval())?;
                let last = f.all_hidden.len() - 1;
                f.all_hidden
                    .into_iter()
                    .enumerate()
                    .map(|(i, h)| {
                        let idx = Tensor::from_data(TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()]), &lm.device);
                        lens_rows(lm, h.select(0, idx), i == last, k)
                    })
                    .collect::<Result<Vec<_>, _>>()?
            });
            for (layer, toks) in states.iter().enumerate() {
                let mut found = Vec::new();
                for row in toks {
                    for &t in row {
                        let s = self.tokenizer.decode(&[t])?;
                        found.push(cache.identify(s));
                    }
                }
                for (j, p) in proportions(&found, langs.len()).into_iter().enumerate() {
                    sums[layer][j] += p;
                }
            }
        }
        let n = texts.len() as f64;
        Ok(sums
            .into_iter()
            .enumerate()
            .map(|(layer, s)| {
                let mut r = Row::new();
                r.insert("layer".into(), Value::from(layer));
                for (j, code) in langs.iter().enumerate() {
                    r.insert(code.clone(), num(s[j] / n));
                }
                r.insert("other".into(), num(s[langs.len()] / n));
                r.insert("n_texts".into(), Value::from(texts.len()));
                r
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_languages_are_identified_once_per_string() {
        let id = LangId::new(&["en".into(), "ur".into()]).unwrap();
        let mut c = TokenLangs::new(&id);
        let toks = [" the", "ہے", " the", "42", "ہے", " the", "نہیں"];
        let got: Vec<_> = toks.iter().map(|t| c.identify(t.to_string())).collect();
        assert_eq!(
            got,
            vec![Some(0), Some(1), Some(0), None, Some(1), Some(0), Some(1)]
        );
        assert_eq!(c.distinct(), 4);
    }
}
