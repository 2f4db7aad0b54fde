//! Conversions between script values ([`Dynamic`]) and the JSON-like values of the domain
//! modules ([`crate::value::Value`], [`crate::value::Row`]).
//!
//! Unlike `serde_json::to_value(&dynamic)` — which silently writes a handle as its Rust type name
//! (rhai 1.27 `src/serde/serialize.rs`) — these conversions refuse values that have no JSON form
//! and say where they are (`field 'model': a Model cannot be stored as JSON`). Non-finite floats
//! become `null`. Integers stay integers; JSON integers beyond `i64` become floats.

use rhai::{Array, Dynamic, Engine, Map};

use crate::value::{Row, Value};

/// A script value as JSON; errors name the path of the offending element.
pub fn to_json(v: &Dynamic) -> Result<Value, String> {
    to_json_at(v, "", 0)
}

fn to_json_at(v: &Dynamic, path: &str, depth: usize) -> Result<Value, String> {
    if v.is_shared() {
        return to_json_at(&v.flatten_clone(), path, depth);
    }
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(x) = v.as_float() {
        return Ok(crate::value::num(x));
    }
    if let Ok(c) = v.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if v.is_string() {
        return Ok(Value::String(v.to_string()));
    }
    if v.is_array() || v.is_map() {
        crate::limits::check_depth("the value", depth).map_err(|e| e.to_string())?;
    }
    if let Some(a) = v.read_lock::<Array>() {
        let items: Result<Vec<Value>, String> = a
            .iter()
            .enumerate()
            .map(|(i, x)| to_json_at(x, &format!("{path}[{i}]"), depth + 1))
            .collect();
        return items.map(Value::Array);
    }
    if let Some(m) = v.read_lock::<Map>() {
        let mut row = Row::new();
        for (k, x) in m.iter() {
            let p = if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            };
            row.insert(k.to_string(), to_json_at(x, &p, depth + 1)?);
        }
        return Ok(Value::Object(row));
    }
    let what = simple_type_name(v.type_name());
    if path.is_empty() {
        Err(format!("a value of type {what} cannot be stored as JSON (use plain values: numbers, strings, bools, arrays, maps)"))
    } else {
        Err(format!("'{path}': a value of type {what} cannot be stored as JSON (use plain values: numbers, strings, bools, arrays, maps)"))
    }
}

fn simple_type_name(t: &str) -> String {
    let t = t.rsplit("::").next().unwrap_or(t);
    t.trim_end_matches('>').to_string()
}

/// The display name of a value's type as scripts know it (`int`, `map`, `Model`, ...).
pub fn type_name(engine: &Engine, v: &Dynamic) -> String {
    super::register::friendly_type(engine, v.type_name())
}

/// A JSON value as a script value (`null` → `()`).
pub fn from_json(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(a) => Dynamic::from_array(a.iter().map(from_json).collect()),
        Value::Object(m) => Dynamic::from_map(row_to_map(m)),
    }
}

/// A domain row as a script map.
pub fn row_to_map(row: &Row) -> Map {
    row.iter()
        .map(|(k, v)| (k.as_str().into(), from_json(v)))
        .collect()
}

/// A script map as a domain row (errors name the offending field).
pub fn map_to_row(map: &Map) -> Result<Row, String> {
    match to_json(&Dynamic::from_map(map.clone()))? {
        Value::Object(row) => Ok(row),
        _ => Err("expected a map".into()),
    }
}

/// A script index into `n` rows (`x[i]`): a negative `i` counts from the end. `Err` carries the
/// message for an index out of bounds, naming the operation and the kind of container.
pub fn row_index(op: &str, i: rhai::INT, n: usize, container: &str) -> Result<usize, String> {
    let n_i = n as rhai::INT;
    let j = if i < 0 { i + n_i } else { i };
    if j < 0 || j >= n_i {
        return Err(format!(
            "{op}: index {i} out of bounds for {container} of {n} rows"
        ));
    }
    Ok(j as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_refusals() {
        let e = Engine::new();
        let v: Dynamic = e
            .eval(r#"#{ a: 1, b: [2.5, "x", ()], c: #{ d: true } }"#)
            .unwrap();
        let j = to_json(&v).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"a": 1, "b": [2.5, "x", null], "c": {"d": true}})
        );
        let back = from_json(&j);
        assert_eq!(to_json(&back).unwrap(), j);
        #[derive(Clone)]
        struct Opaque;
        let mut m = Map::new();
        m.insert("model".into(), Dynamic::from(vec![Dynamic::from(Opaque)]));
        let err = map_to_row(&m).unwrap_err();
        assert!(
            err.starts_with("'model[0]': a value of type Opaque cannot be stored as JSON"),
            "{err}"
        );
        assert_eq!(
            to_json(&Dynamic::from_float(f64::NAN)).unwrap(),
            Value::Null
        );
    }
}
