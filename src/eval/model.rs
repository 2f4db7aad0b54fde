//! What evaluation needs from a language model: the request types of lm-evaluation-harness
//! (`lm_eval.api.model.LM.loglikelihood` and `generate_until`) plus a token counter.
//!
//! The evaluation code only builds requests and scores results; tokenisation, batching and the
//! forward passes belong to the implementation (the real model in `model`, or a mock in tests).

use super::EvalError;

/// Summed log-probability of a continuation and whether greedy decoding would produce it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogLik {
    /// Σ log p(continuation token | prefix) over the continuation tokens.
    pub logprob: f64,
    /// Whether every continuation token is the argmax at its position.
    pub is_greedy: bool,
}

/// What evaluation needs from a language model.
pub trait LanguageModel {
    /// lm-eval loglikelihood requests: for each (context, continuation) the summed
    /// log-probability of the continuation tokens and whether they are all greedy. The
    /// implementation follows lm-eval's tokenisation rules (move trailing context spaces to the
    /// continuation, encode together, split at the context length, empty context -> BOS) and
    /// must be batch-invariant.
    fn loglikelihood(
        &mut self,
        requests: &[(String, String)],
        batch_size: usize,
    ) -> Result<Vec<LogLik>, EvalError>;

    /// Greedy generation until one of `stop` or `max_new_tokens`, returning only the new text
    /// (without the stop string).
    fn generate_until(
        &mut self,
        prompts: &[String],
        max_new_tokens: usize,
        stop: &[String],
        batch_size: usize,
    ) -> Result<Vec<String>, EvalError>;

    /// Number of tokens of a text (for mixtures counted in tokens).
    fn count_tokens(&self, text: &str) -> Result<usize, EvalError>;
}
