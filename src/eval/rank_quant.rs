//! The evaluation prompts of the rank×quantisation study (appendix C, figures 7–13), verbatim,
//! as the prompt family `rank_quant`.
//!
//! Every prompt is the Alpaca system prompt (figure 13), a blank line, then an Alpaca-style
//! block: `### Instruction:`, the task's instruction with the item inside it, and the response
//! header. The text of each figure is kept character for character as
//! `shared/research/seed_studies.md` §1.8 reconstructs it, including `### Response` without a
//! colon in XNLI (figure 7), `Context:{{context}}` without a space (MLQA/XQuAD), the curly
//! apostrophe of `What’s` and the literal rendering of XCOPA's Jinja `{% if %}` (two spaces
//! before "a cause"/"an effect", one after).
//!
//! Choices the paper leaves open, made here and documented in README:
//! * the system prompt is joined to `### Instruction:` by a blank line, as in Alpaca;
//! * a newline follows the response header and the answer comes right after it (the layout of
//!   peftlab's `alpaca` training template, so training and evaluation agree);
//! * few-shot examples go where the instructions say ("in the same format as the examples
//!   below"): after the instruction text, before the item, each one the item block of the
//!   example, a newline and its answer, followed by a blank line;
//! * answers: XNLI `True` / `Neither` / `False` for entailment / neutral / contradiction (the
//!   options the prompt names), Belebele the letter `A`–`D`, XCOPA the text of the alternative,
//!   MLQA/XQuAD the first answer span, XL-Sum the reference summary.

/// The Alpaca system prompt (figure 13).
pub const SYSTEM: &str = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.";

/// XNLI's instruction (figure 7), up to the item.
pub const XNLI: &str = "The task is to solve Natural Language Inference (NLI) problems. NLI is the task of determining the inference relation between two (short, ordered) texts: entailment, contradiction, or neutral. Answer as concisely as possible in the same format as the examples below:";

/// XCOPA's instruction (figure 8), up to the item.
pub const XCOPA: &str = "The task is to perform open-domain commonsense causal reasoning. You will be provided a premise and two alternatives, where the task is to select the alternative that more plausibly has a causal relation with the premise. Answer as concisely as possible in the same format as the examples below:";

/// Belebele's instruction (figure 9), up to the item.
pub const BELEBELE: &str = "The task is to perform reading comprehension task. Given the following passage, query, and answer choices, output the letter corresponding to the correct answer.";

/// The instruction of MLQA and XQuAD (figures 10 and 11, identical), up to the item.
pub const QA: &str = "The task is to solve reading comprehension problems. You will be provided questions on a set of passages and you will need to provide the answer as it appears in the passage. The answer should be in the same language as the question and the passage.";

/// XL-Sum's instruction (figure 12), up to the item.
pub const XLSUM: &str = "The task is to summarize any given article. You should summarize all important information concisely in the same language in which you have been provided the document. Following the examples provided below:";

/// A prompt in three parts, so that few-shot examples can go inside the instruction: `head`
/// (system prompt, `### Instruction:` and the instruction text, with the separator that follows
/// it), the item `block`, and the `tail` (response header and the newline after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    /// Everything before the item.
    pub head: String,
    /// The item.
    pub block: String,
    /// Everything after the item.
    pub tail: String,
}

impl Framed {
    /// A prompt of the family: `instruction` followed by `sep` (the text the figure puts between
    /// the instruction and the item), the item `block`, and the response `header` (with or
    /// without the colon) after `before_header`.
    pub fn new(
        instruction: &str,
        sep: &str,
        block: String,
        before_header: &str,
        header: &str,
    ) -> Framed {
        Framed {
            head: format!("{SYSTEM}\n\n### Instruction:\n{instruction}{sep}"),
            block,
            tail: format!("{before_header}{header}\n"),
        }
    }

    /// The whole prompt with few-shot `examples` (each the item block of an example and its
    /// answer) between the instruction and the item.
    pub fn render(&self, examples: &[(String, String)]) -> String {
        let mut s = self.head.clone();
        for (block, answer) in examples {
            s.push_str(block);
            s.push('\n');
            s.push_str(answer);
            s.push_str("\n\n");
        }
        s.push_str(&self.block);
        s.push_str(&self.tail);
        s
    }
}

/// XNLI (figure 7): premise, hypothesis; `### Response` without the colon, as printed.
pub fn xnli(premise: &str, hypothesis: &str) -> Framed {
    Framed::new(
        XNLI,
        "\n",
        format!("{premise}\nQuestion: {hypothesis} True, False, or Neither?"),
        "\n",
        "### Response",
    )
}

/// XCOPA (figure 8): the Jinja `{% if question == "cause" %} a cause {% else %} an effect {%
/// endif %}` rendered literally.
pub fn xcopa(premise: &str, choice1: &str, choice2: &str, is_cause: bool) -> Framed {
    let what = if is_cause { " a cause " } else { " an effect " };
    Framed::new(
        XCOPA,
        "\n",
        format!(
            "Given this premise:\n{premise}\nWhat\u{2019}s the best option?\n-choice1 : {choice1}\n-choice2 : {choice2}\nWe are looking for {what}"
        ),
        "\n",
        "### Response:",
    )
}

/// Belebele (figure 9): passage, question and the four answers.
pub fn belebele(passage: &str, question: &str, answers: [&str; 4]) -> Framed {
    let [a, b, c, d] = answers;
    Framed::new(
        BELEBELE,
        "\n\n",
        format!("Passage: {passage}\nQuery: {question}\nChoices:\nA: {a}\nB: {b}\nC: {c}\nD: {d}"),
        "\n\n",
        "### Response:",
    )
}

/// MLQA and XQuAD (figures 10 and 11): context and question.
pub fn qa(context: &str, question: &str) -> Framed {
    Framed::new(
        QA,
        "\n\n",
        format!(
            "Context:{context}\nQuestion:{question}\n\nReferring to the passage above, the correct answer to the given question is"
        ),
        "\n\n",
        "### Response:",
    )
}

/// XL-Sum (figure 12): the article.
pub fn xlsum(text: &str) -> Framed {
    Framed::new(XLSUM, "\n\n", text.to_string(), "\n\n", "### Response:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shots_go_between_the_instruction_and_the_item() {
        let f = xnli("P", "H");
        assert_eq!(f.render(&[]), format!("{}{}{}", f.head, f.block, f.tail));
        let shot = xnli("P1", "H1");
        let s = f.render(&[(shot.block.clone(), "True".into())]);
        assert!(s.ends_with(
            "below:\nP1\nQuestion: H1 True, False, or Neither?\nTrue\n\nP\nQuestion: H True, False, or Neither?\n### Response\n"
        ));
        assert!(s.starts_with(&format!("{SYSTEM}\n\n### Instruction:\nThe task is")));
    }
}
