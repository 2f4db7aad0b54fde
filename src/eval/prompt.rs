//! Prompt families and the Alpaca template.
//!
//! The Alpaca format is the one of Stanford Alpaca (Taori et al. 2023, `train.py`
//! `PROMPT_DICT`) with a newline after `### Response:` (the alpaca-lora layout), the format of
//! the rank×quantisation study's instruction data. The `alpaca` family's evaluation prompts put
//! peftlab's own English instructions in that format; they are *not* the study's evaluation
//! prompts, which are the `rank_quant` family ([`crate::eval::rank_quant`], appendix C verbatim).
//! Training code should build its prompts with [`alpaca_prompt`] so that training and
//! evaluation agree byte for byte.

use std::fmt;

/// Header of the Alpaca prompt with an input.
pub const ALPACA_HEADER: &str = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n";

/// Header of the Alpaca prompt without an input.
pub const ALPACA_HEADER_NO_INPUT: &str =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n";

/// The Alpaca prompt up to and including `### Response:\n`; the no-input variant when `input`
/// is empty.
pub fn alpaca_prompt(instruction: &str, input: &str) -> String {
    if input.is_empty() {
        format!("{ALPACA_HEADER_NO_INPUT}### Instruction:\n{instruction}\n\n### Response:\n")
    } else {
        format!(
            "{ALPACA_HEADER}### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
        )
    }
}

/// Which prompts a task is evaluated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Alpaca-format instructions (English instructions, target-language inputs).
    Alpaca,
    /// lm-evaluation-harness' own templates, with their localized words.
    LmEval,
    /// A plain completion prompt (tasks without an lm-eval template).
    Plain,
    /// The rank×quantisation study's prompts (appendix C), verbatim.
    RankQuant,
}

impl Family {
    /// The option value naming the family.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Alpaca => "alpaca",
            Family::LmEval => "lm-eval",
            Family::Plain => "plain",
            Family::RankQuant => "rank_quant",
        }
    }

    /// Parses an option value.
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "alpaca" => Some(Family::Alpaca),
            "lm-eval" | "lm_eval" | "lmeval" => Some(Family::LmEval),
            "plain" => Some(Family::Plain),
            "rank_quant" | "rank-quant" => Some(Family::RankQuant),
            _ => None,
        }
    }

    /// Text between a query and its answer: lm-eval's `target_delimiter` (" ") for completion
    /// prompts; nothing after the Alpaca `### Response:\n` (also in `rank_quant`).
    pub fn target_delimiter(self) -> &'static str {
        match self {
            Family::Alpaca | Family::RankQuant => "",
            Family::LmEval | Family::Plain => " ",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Joins few-shot examples and the query the way lm-eval does for plain-text prompts
/// (`fewshot_context` / `build_qa_turn`): each example is `query + delimiter + answer + "\n\n"`,
/// followed by the final query.
pub fn with_shots(shots: &[(String, String)], query: &str, delimiter: &str) -> String {
    let mut s = String::new();
    for (q, a) in shots {
        s.push_str(q);
        s.push_str(delimiter);
        s.push_str(a);
        s.push_str("\n\n");
    }
    s.push_str(query);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpaca_layout() {
        let p = alpaca_prompt("Translate.", "Hello");
        assert!(
            p.starts_with("Below is an instruction that describes a task, paired with an input")
        );
        assert!(p.ends_with("### Instruction:\nTranslate.\n\n### Input:\nHello\n\n### Response:\n"));
        assert!(alpaca_prompt("Say hi.", "")
            .ends_with("request.\n\n### Instruction:\nSay hi.\n\n### Response:\n"));
        assert_eq!(
            with_shots(&[("Q1".into(), "A1".into())], "Q2", " "),
            "Q1 A1\n\nQ2"
        );
        assert_eq!(Family::parse("lm-eval"), Some(Family::LmEval));
        assert_eq!(Family::parse("chat"), None);
    }
}
