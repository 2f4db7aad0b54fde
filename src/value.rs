//! Plain data values shared by the domain modules.
//!
//! Dataset rows, table rows and result maps are JSON-like maps. Using `serde_json` values keeps
//! the domain code independent of the scripting engine; the `api` layer converts them to and from
//! Rhai values.

/// One row of a dataset or table: an ordered map from column name to value.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// A JSON-like value (number, string, bool, null, array or map).
pub type Value = serde_json::Value;

/// Reads a numeric field of a row as `f64` (integers are accepted).
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// Renders a value as a plain string key (strings without quotes, others as JSON).
pub fn as_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Builds a JSON number from an `f64`; non-finite values become `null`.
pub fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}
