//! Prompt templates.
//!
//! `"alpaca"` is the Stanford Alpaca format (Taori et al. 2023), the one the rank×quantisation
//! study quotes: with a non-empty `input` the preamble is "Below is an instruction that
//! describes a task, paired with an input that provides further context. Write a response that
//! appropriately completes the request.", without it "Below is an instruction that describes a
//! task. Write a response that appropriately completes the request.", followed by
//! `### Instruction:` / `### Input:` / `### Response:` sections. The response is the row's
//! `output` (EOS is appended by the batcher). A custom template is any string with `{field}`
//! placeholders that ends with `{output}`: everything before `{output}` is the prompt.

use super::TrainError;
use crate::eval::prompt::alpaca_prompt;
use crate::value::{Row, Value};

fn field<'a>(row: &'a Row, name: &str, i: usize) -> Result<&'a Value, TrainError> {
    row.get(name).ok_or_else(|| {
        TrainError::Data(format!(
            "row {i}: missing field '{name}' (fields present: {})",
            row.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders `(prompt, response)` for row `i`.
pub fn render(template: &str, row: &Row, i: usize) -> Result<(String, String), TrainError> {
    if template == "alpaca" {
        let instruction = text(field(row, "instruction", i)?);
        let input = row.get("input").map(text).unwrap_or_default();
        let output = text(field(row, "output", i)?);
        return Ok((alpaca_prompt(&instruction, &input), output));
    }
    let Some(cut) = template.find("{output}") else {
        return Err(TrainError::Option(format!(
            "template must contain {{output}} (got {template:?})"
        )));
    };
    if !template[cut + "{output}".len()..].is_empty() {
        return Err(TrainError::Option(
            "template: {output} must come last (the response is what the model learns)".into(),
        ));
    }
    let mut prompt = String::new();
    let mut rest = &template[..cut];
    while let Some(open) = rest.find('{') {
        prompt.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err(TrainError::Option(format!(
                "template: unclosed '{{' in {template:?}"
            )));
        };
        let name = &rest[open + 1..open + close];
        prompt.push_str(&text(field(row, name, i)?));
        rest = &rest[open + close + 1..];
    }
    prompt.push_str(rest);
    Ok((prompt, text(field(row, "output", i)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpaca_with_and_without_input_and_custom() {
        let mut row = Row::new();
        row.insert("instruction".into(), "Translate to Urdu.".into());
        row.insert("input".into(), "Open file".into());
        row.insert("output".into(), "فائل کھولیں".into());
        let (p, r) = render("alpaca", &row, 0).unwrap();
        assert_eq!(p, "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate to Urdu.\n\n### Input:\nOpen file\n\n### Response:\n");
        assert_eq!(r, "فائل کھولیں");
        row.insert("input".into(), "".into());
        let (p, _) = render("alpaca", &row, 0).unwrap();
        assert!(
            p.starts_with("Below is an instruction that describes a task. Write")
                && !p.contains("### Input")
        );
        let (p, r) = render("Q: {instruction}\nA: {output}", &row, 0).unwrap();
        assert_eq!(
            (p.as_str(), r.as_str()),
            ("Q: Translate to Urdu.\nA: ", "فائل کھولیں")
        );
        let e = render("{question} {output}", &row, 3)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 3") && e.contains("'question'") && e.contains("instruction"),
            "{e}"
        );
    }
}
