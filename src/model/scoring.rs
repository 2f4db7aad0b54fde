//! Log-likelihood scoring with lm-evaluation-harness semantics.
//!
//! lm-eval (`api/model.py` `_encode_pair`, `models/huggingface.py` `_loglikelihood_tokens`):
//! trailing whitespace of the context moves to the start of the continuation; context and
//! continuation are encoded together (with the tokenizer's default special tokens) and split at
//! the length of the separately encoded context; an empty context becomes lm-eval's prefix token
//! (BOS, else EOS). The score is the
//! sum of the continuation tokens' log-probabilities, and `is_greedy` says whether each of them
//! is the argmax. Rows are right-padded in a batch; padding never changes a row's numbers beyond
//! floating-point noise (batch-size invariance is tested).

use super::linear::AdapterCtx;
use super::llama::{Batch, CausalLm};
use super::tokenizer::Tokenizer;
use super::ModelError;
use crate::backend::LmBackend;
use crate::text::is_py_space;
use burn::tensor::{Int, Tensor, TensorData};

/// One tokenised request: the full input and how many trailing tokens are scored.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Context tokens followed by continuation tokens.
    pub tokens: Vec<u32>,
    /// Number of continuation tokens (scored), at the end of `tokens`.
    pub n_cont: usize,
}

impl TokenRequest {
    /// Keeps at most `max_length + 1` tokens, dropping from the left, as lm-eval's
    /// `_loglikelihood_tokens` does with `(context_enc + continuation_enc)[-(max_length + 1):]`;
    /// at most `max_length` continuation tokens stay scored.
    pub fn truncate_left(&mut self, max_length: usize) {
        let keep = max_length.saturating_add(1);
        if self.tokens.len() > keep {
            self.tokens.drain(..self.tokens.len() - keep);
        }
        self.n_cont = self.n_cont.min(self.tokens.len().saturating_sub(1));
    }
}

/// The score of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Summed log-probability of the continuation.
    pub logprob: f64,
    /// Whether every continuation token is the argmax.
    pub is_greedy: bool,
    /// Number of continuation tokens.
    pub tokens: usize,
}

/// Tokenises a (context, continuation) pair as lm-eval does (`loglikelihood` and
/// `_encode_pair` in `lm_eval/api/model.py`, `tok_encode` in `models/huggingface.py`).
///
/// - Empty context: the continuation is encoded without special tokens and conditioned on the
///   prefix token, unless it already starts with that token, which then becomes the context.
/// - Otherwise the context's trailing whitespace (Python `str.rstrip`) moves to the
///   continuation; the context and the joint string are encoded with the tokenizer's default
///   special tokens (BOS for Llama-family tokenizers, as lm-eval ≥ 0.4.10 does), and the
///   continuation is the joint encoding after the context's length. The input is the context's
///   own encoding followed by those continuation tokens.
pub fn encode_pair(
    tok: &Tokenizer,
    context: &str,
    continuation: &str,
) -> Result<TokenRequest, ModelError> {
    let prefix = || {
        tok.prefix_id.ok_or_else(|| {
            ModelError::Input("an empty context needs a BOS or EOS token as prefix".into())
        })
    };
    if context.is_empty() {
        let cont = tok.encode_plain(continuation)?;
        let Some(&first) = cont.first() else {
            return Err(ModelError::Input(
                "the continuation encodes to no tokens".into(),
            ));
        };
        let p = prefix()?;
        if first == p {
            if cont.len() == 1 {
                return Err(ModelError::Input(
                    "the continuation is only the prefix token: nothing to score".into(),
                ));
            }
            return Ok(TokenRequest {
                n_cont: cont.len() - 1,
                tokens: cont,
            });
        }
        let n = cont.len();
        let mut tokens = vec![p];
        tokens.extend(cont);
        return Ok(TokenRequest { tokens, n_cont: n });
    }
    let trimmed = context.trim_end_matches(is_py_space);
    let moved = &context[trimmed.len()..];
    let continuation = format!("{moved}{continuation}");
    let whole = tok.encode_lm_eval(&format!("{trimmed}{continuation}"))?;
    let mut tokens = tok.encode_lm_eval(trimmed)?;
    if tokens.len() >= whole.len() {
        return Err(ModelError::Input(format!(
            "the continuation {continuation:?} adds no tokens after the context"
        )));
    }
    let n_cont = whole.len() - tokens.len();
    if tokens.is_empty() {
        // A whitespace-only context with a tokenizer that adds no BOS: lm-eval would score the
        // first token without any context; we condition it on the prefix token.
        tokens.push(prefix()?);
    }
    tokens.extend_from_slice(&whole[whole.len() - n_cont..]);
    Ok(TokenRequest { tokens, n_cont })
}

/// Scores requests in batches of `batch_size`. Only the rows that predict continuation tokens
/// go through the output head, so the vocabulary-sized logits stay small.
pub fn score_tokens<B: LmBackend>(
    lm: &CausalLm<B>,
    requests: &[TokenRequest],
    batch_size: usize,
    pad: u32,
    ctx: &AdapterCtx<B>,
    mut on_batch: impl FnMut(usize) -> Result<(), ModelError>,
) -> Result<Vec<Score>, ModelError> {
    let mut out = Vec::with_capacity(requests.len());
    for chunk in requests.chunks(batch_size.max(1)) {
        crate::interrupt::check()?;
        // The last token is never an input (it is only predicted).
        let inputs: Vec<Vec<u32>> = chunk
            .iter()
            .map(|r| r.tokens[..r.tokens.len() - 1].to_vec())
            .collect();
        let batch = Batch::right_padded(&inputs, pad)?;
        let t = batch.seq();
        let f = lm.forward(&batch, None, false, ctx)?;
        // Rows of the flattened [B·T] hidden states that predict continuation tokens.
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        for (b, r) in chunk.iter().enumerate() {
            let n_in = r.tokens.len() - 1;
            for k in 0..r.n_cont {
                let pos = n_in - r.n_cont + k;
                rows.push((b * t + pos) as i64);
                targets.push(r.tokens[r.tokens.len() - r.n_cont + k]);
            }
        }
        let n = rows.len();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [n]), &lm.device);
        let hidden = f.hidden.select(0, idx);
        let tgt: Vec<i64> = targets.iter().map(|&x| i64::from(x)).collect();
        let tgt = Tensor::<B, 2, Int>::from_data(TensorData::new(tgt, [n, 1]), &lm.device);
        let (lps, greedy) = B::target_logprobs(lm.head(hidden, ctx), tgt)
            .map_err(|e| ModelError::Input(format!("reading log-probs: {e}")))?;
        let mut k = 0;
        for r in chunk {
            let sum: f64 = lps[k..k + r.n_cont].iter().map(|&x| f64::from(x)).sum();
            let is_greedy = greedy[k..k + r.n_cont].iter().all(|&g| g);
            k += r.n_cont;
            out.push(Score {
                logprob: sum,
                is_greedy,
                tokens: r.n_cont,
            });
        }
        on_batch(chunk.len())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::TokenRequest;

    #[test]
    fn truncation_drops_the_oldest_tokens_like_lm_eval() {
        // lm-eval: inp = (ctx + cont)[-(max_length + 1):][:-1], the last len(cont) scored.
        let mut r = TokenRequest {
            tokens: vec![1, 2, 3, 4, 5, 6, 7],
            n_cont: 2,
        };
        r.truncate_left(4);
        assert_eq!(r.tokens, vec![3, 4, 5, 6, 7]);
        assert_eq!(r.n_cont, 2);
        // Short enough: unchanged.
        r.truncate_left(8);
        assert_eq!(r.tokens, vec![3, 4, 5, 6, 7]);
        // A continuation longer than the window keeps only what the window can score.
        let mut r = TokenRequest {
            tokens: vec![1, 2, 3, 4, 5, 6],
            n_cont: 5,
        };
        r.truncate_left(3);
        assert_eq!(r.tokens, vec![3, 4, 5, 6]);
        assert_eq!(r.n_cont, 3);
    }
}
