//! The model as an evaluation backend: lm-eval log-likelihoods and greedy generation.

use super::Model;
use crate::eval::{EvalError, LanguageModel, LogLik};
use crate::model::generate::GenSettings;

fn err(e: impl std::fmt::Display) -> EvalError {
    EvalError::Model(e.to_string())
}

impl LanguageModel for Model {
    fn loglikelihood(
        &mut self,
        requests: &[(String, String)],
        batch_size: usize,
    ) -> Result<Vec<LogLik>, EvalError> {
        Ok(self
            .loglikelihoods(requests, batch_size)
            .map_err(err)?
            .into_iter()
            .map(|s| LogLik {
                logprob: s.logprob,
                is_greedy: s.is_greedy,
            })
            .collect())
    }

    /// Prompts are encoded as lm-eval's `tok_batch_encode` does (the tokenizer's default special
    /// tokens, none when the prompt already starts with the BOS string; a prompt that encodes to
    /// nothing becomes the prefix token) and decoded greedily one at a time, so the batch size
    /// cannot change an output.
    fn generate_until(
        &mut self,
        prompts: &[String],
        max_new_tokens: usize,
        stop: &[String],
        _batch_size: usize,
    ) -> Result<Vec<String>, EvalError> {
        let settings = GenSettings {
            stop_at_eos: true,
            ..GenSettings::greedy(max_new_tokens)
        };
        let tok = self.tokenizer.clone();
        prompts
            .iter()
            .map(|p| {
                let mut ids = tok.encode_lm_eval_prompt(p).map_err(err)?;
                if ids.is_empty() {
                    ids.extend(tok.prefix_id);
                }
                self.generate_text_from_ids(&ids, &settings, stop)
                    .map_err(err)
            })
            .collect()
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EvalError> {
        Ok(self.tokenizer.encode_plain(text).map_err(err)?.len())
    }
}
