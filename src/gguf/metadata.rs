//! GGUF metadata values and typed access to them.
//!
//! The value types are those of the GGUF specification (ggml `docs/gguf.md`, `gguf_metadata_value_type`):
//! ids 0..=12 = u8, i8, u16, i16, u32, i32, f32, bool, string, array, u64, i64, f64. Arrays are
//! stored as typed vectors (so a 150k-entry token list costs one `Vec<String>`), and may nest.

use super::GgufError;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// u8 (type 0).
    U8(u8),
    /// i8 (type 1).
    I8(i8),
    /// u16 (type 2).
    U16(u16),
    /// i16 (type 3).
    I16(i16),
    /// u32 (type 4).
    U32(u32),
    /// i32 (type 5).
    I32(i32),
    /// f32 (type 6).
    F32(f32),
    /// bool (type 7).
    Bool(bool),
    /// UTF-8 string (type 8).
    Str(String),
    /// array (type 9).
    Array(MetaArray),
    /// u64 (type 10).
    U64(u64),
    /// i64 (type 11).
    I64(i64),
    /// f64 (type 12).
    F64(f64),
}

/// A metadata array: all elements share one type.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaArray {
    /// u8 elements.
    U8(Vec<u8>),
    /// i8 elements.
    I8(Vec<i8>),
    /// u16 elements.
    U16(Vec<u16>),
    /// i16 elements.
    I16(Vec<i16>),
    /// u32 elements.
    U32(Vec<u32>),
    /// i32 elements.
    I32(Vec<i32>),
    /// f32 elements.
    F32(Vec<f32>),
    /// bool elements.
    Bool(Vec<bool>),
    /// string elements.
    Str(Vec<String>),
    /// nested arrays.
    Array(Vec<MetaArray>),
    /// u64 elements.
    U64(Vec<u64>),
    /// i64 elements.
    I64(Vec<i64>),
    /// f64 elements.
    F64(Vec<f64>),
}

impl MetaArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MetaArray::U8(v) => v.len(),
            MetaArray::I8(v) => v.len(),
            MetaArray::U16(v) => v.len(),
            MetaArray::I16(v) => v.len(),
            MetaArray::U32(v) => v.len(),
            MetaArray::I32(v) => v.len(),
            MetaArray::F32(v) => v.len(),
            MetaArray::Bool(v) => v.len(),
            MetaArray::Str(v) => v.len(),
            MetaArray::Array(v) => v.len(),
            MetaArray::U64(v) => v.len(),
            MetaArray::I64(v) => v.len(),
            MetaArray::F64(v) => v.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type name (`"u32"`, `"string"`, `"array"`...).
    pub fn elem_type_name(&self) -> &'static str {
        match self {
            MetaArray::U8(_) => "u8",
            MetaArray::I8(_) => "i8",
            MetaArray::U16(_) => "u16",
            MetaArray::I16(_) => "i16",
            MetaArray::U32(_) => "u32",
            MetaArray::I32(_) => "i32",
            MetaArray::F32(_) => "f32",
            MetaArray::Bool(_) => "bool",
            MetaArray::Str(_) => "string",
            MetaArray::Array(_) => "array",
            MetaArray::U64(_) => "u64",
            MetaArray::I64(_) => "i64",
            MetaArray::F64(_) => "f64",
        }
    }

    /// The elements as `i64` if they are integers (any width; u64 above `i64::MAX` fails).
    pub fn as_i64_vec(&self) -> Option<Vec<i64>> {
        fn conv<T: Copy>(v: &[T], f: impl Fn(T) -> Option<i64>) -> Option<Vec<i64>> {
            v.iter().map(|&x| f(x)).collect()
        }
        match self {
            MetaArray::U8(v) => conv(v, |x| Some(i64::from(x))),
            MetaArray::I8(v) => conv(v, |x| Some(i64::from(x))),
            MetaArray::U16(v) => conv(v, |x| Some(i64::from(x))),
            MetaArray::I16(v) => conv(v, |x| Some(i64::from(x))),
            MetaArray::U32(v) => conv(v, |x| Some(i64::from(x))),
            MetaArray::I32(v) => conv(v, |x| Some(i64::from(x))),
            MetaArray::U64(v) => conv(v, |x| i64::try_from(x).ok()),
            MetaArray::I64(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl MetaValue {
    /// The value type name (`"u32"`, `"string"`, `"array of string"`...).
    pub fn type_name(&self) -> String {
        match self {
            MetaValue::U8(_) => "u8".into(),
            MetaValue::I8(_) => "i8".into(),
            MetaValue::U16(_) => "u16".into(),
            MetaValue::I16(_) => "i16".into(),
            MetaValue::U32(_) => "u32".into(),
            MetaValue::I32(_) => "i32".into(),
            MetaValue::F32(_) => "f32".into(),
            MetaValue::Bool(_) => "bool".into(),
            MetaValue::Str(_) => "string".into(),
            MetaValue::Array(a) => format!("array of {}", a.elem_type_name()),
            MetaValue::U64(_) => "u64".into(),
            MetaValue::I64(_) => "i64".into(),
            MetaValue::F64(_) => "f64".into(),
        }
    }

    /// The value as an `i64` if it is an integer of any width (u64 above `i64::MAX` fails).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::U8(x) => Some(i64::from(x)),
            MetaValue::I8(x) => Some(i64::from(x)),
            MetaValue::U16(x) => Some(i64::from(x)),
            MetaValue::I16(x) => Some(i64::from(x)),
            MetaValue::U32(x) => Some(i64::from(x)),
            MetaValue::I32(x) => Some(i64::from(x)),
            MetaValue::U64(x) => i64::try_from(x).ok(),
            MetaValue::I64(x) => Some(x),
            _ => None,
        }
    }

    /// The value as an `f64` if it is a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(x) => Some(f64::from(x)),
            MetaValue::F64(x) => Some(x),
            _ => self.as_i64().map(|x| x as f64),
        }
    }

    /// A JSON rendering (arrays longer than `max_array` are cut and marked with `"..."`).
    pub fn to_json(&self, max_array: usize) -> serde_json::Value {
        use serde_json::json;
        match self {
            MetaValue::F32(x) => json!(f32_shortest(*x)),
            MetaValue::F64(x) => json!(x),
            MetaValue::Bool(b) => json!(b),
            MetaValue::Str(s) => json!(s),
            MetaValue::Array(a) => array_json(a, max_array),
            MetaValue::U64(x) => json!(x),
            other => json!(other.as_i64()),
        }
    }
}

fn array_json(a: &MetaArray, max: usize) -> serde_json::Value {
    fn cut<T: Clone + Into<serde_json::Value>>(v: &[T], max: usize) -> serde_json::Value {
        let mut out: Vec<serde_json::Value> = v.iter().take(max).cloned().map(Into::into).collect();
        if v.len() > max {
            out.push("...".into());
        }
        serde_json::Value::Array(out)
    }
    match a {
        MetaArray::U8(v) => cut(v, max),
        MetaArray::I8(v) => cut(v, max),
        MetaArray::U16(v) => cut(v, max),
        MetaArray::I16(v) => cut(v, max),
        MetaArray::U32(v) => cut(v, max),
        MetaArray::I32(v) => cut(v, max),
        MetaArray::F32(v) => {
            let w: Vec<f64> = v.iter().map(|&x| f32_shortest(x)).collect();
            cut(&w, max)
        }
        MetaArray::Bool(v) => cut(v, max),
        MetaArray::Str(v) => cut(v, max),
        MetaArray::Array(v) => {
            let mut out: Vec<serde_json::Value> =
                v.iter().take(max).map(|x| array_json(x, max)).collect();
            if v.len() > max {
                out.push("...".into());
            }
            serde_json::Value::Array(out)
        }
        MetaArray::U64(v) => cut(v, max),
        MetaArray::I64(v) => cut(v, max),
        MetaArray::F64(v) => cut(v, max),
    }
}

/// The `f64` with the shortest decimal representation that rounds to `x` as an `f32`
/// (`1e-5f32` gives `1e-5`, not `9.999999747378752e-6`), as `config.json` files write it.
pub fn f32_shortest(x: f32) -> f64 {
    format!("{x}").parse::<f64>().unwrap_or(f64::from(x))
}

/// The metadata of a GGUF file: keys in file order with typed getters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetaValue)>,
    index: std::collections::HashMap<String, usize>,
}

impl Metadata {
    /// An empty metadata set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; a key that is already present is an error (as in llama.cpp's reader).
    pub fn insert(&mut self, key: String, value: MetaValue) -> Result<(), GgufError> {
        if self.index.contains_key(&key) {
            return Err(GgufError::invalid(
                format!("metadata key '{key}'"),
                "duplicate key",
            ));
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All (key, value) pairs in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.index
            .get(key)
            .and_then(|&i| self.entries.get(i))
            .map(|e| &e.1)
    }

    /// True when `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    fn require(&self, key: &str, expected: &'static str) -> Result<&MetaValue, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_owned(),
            expected,
        })
    }

    fn wrong(key: &str, expected: &'static str, v: &MetaValue) -> GgufError {
        GgufError::WrongType {
            key: key.to_owned(),
            expected,
            found: v.type_name(),
        }
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key, "string")? {
            MetaValue::Str(s) => Ok(s),
            v => Err(Self::wrong(key, "string", v)),
        }
    }

    /// An unsigned integer of any width that fits in `u32` (GGUF writers differ in widths).
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        let v = self.require(key, "unsigned integer")?;
        v.as_i64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| Self::wrong(key, "unsigned integer (u32 range)", v))
    }

    /// An unsigned integer of any width that fits in `u64`.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key, "unsigned integer")?;
        match v {
            MetaValue::U64(x) => Ok(*x),
            _ => v
                .as_i64()
                .and_then(|x| u64::try_from(x).ok())
                .ok_or_else(|| Self::wrong(key, "unsigned integer", v)),
        }
    }

    /// A signed integer of any width.
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        let v = self.require(key, "integer")?;
        v.as_i64().ok_or_else(|| Self::wrong(key, "integer", v))
    }

    /// A float (f32 or f64) as `f32`.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key, "float")?;
        match v {
            MetaValue::F32(x) => Ok(*x),
            MetaValue::F64(x) => Ok(*x as f32),
            _ => Err(Self::wrong(key, "float", v)),
        }
    }

    /// A float (f32 or f64) as `f64`; an f32 is widened to its shortest decimal form
    /// (see [`f32_shortest`]).
    pub fn get_f64(&self, key: &str) -> Result<f64, GgufError> {
        let v = self.require(key, "float")?;
        match v {
            MetaValue::F32(x) => Ok(f32_shortest(*x)),
            MetaValue::F64(x) => Ok(*x),
            _ => Err(Self::wrong(key, "float", v)),
        }
    }

    /// A bool.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key, "bool")? {
            MetaValue::Bool(b) => Ok(*b),
            v => Err(Self::wrong(key, "bool", v)),
        }
    }

    /// An array of any element type.
    pub fn get_array(&self, key: &str) -> Result<&MetaArray, GgufError> {
        match self.require(key, "array")? {
            MetaValue::Array(a) => Ok(a),
            v => Err(Self::wrong(key, "array", v)),
        }
    }

    /// An array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        match self.require(key, "array of string")? {
            MetaValue::Array(MetaArray::Str(v)) => Ok(v),
            v => Err(Self::wrong(key, "array of string", v)),
        }
    }

    /// An optional value: `Ok(None)` when absent, an error when present with the wrong type.
    pub fn opt<T>(
        &self,
        key: &str,
        get: impl Fn(&Self, &str) -> Result<T, GgufError>,
    ) -> Result<Option<T>, GgufError> {
        if self.contains(key) {
            get(self, key).map(Some)
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_convert_widths_and_report_types() {
        let mut m = Metadata::new();
        m.insert("a".into(), MetaValue::U8(7)).unwrap();
        m.insert("b".into(), MetaValue::I32(-1)).unwrap();
        m.insert("c".into(), MetaValue::F32(1e-5)).unwrap();
        m.insert("d".into(), MetaValue::Str("x".into())).unwrap();
        assert_eq!(m.get_u32("a").unwrap(), 7);
        assert_eq!(m.get_i64("b").unwrap(), -1);
        let e = m.get_u32("b").unwrap_err().to_string();
        assert!(e.contains("'b'") && e.contains("i32"), "{e}");
        assert_eq!(m.get_f64("c").unwrap(), 1e-5);
        assert_eq!(m.get_f32("c").unwrap(), 1e-5f32);
        let e = m.get_str("zz").unwrap_err().to_string();
        assert!(e.contains("missing metadata key 'zz'"), "{e}");
        let e = m.get_bool("d").unwrap_err().to_string();
        assert_eq!(e, "gguf: metadata 'd' has type string, expected bool");
        assert_eq!(m.opt("zz", Metadata::get_u32).unwrap(), None);
        assert!(m.insert("a".into(), MetaValue::U8(1)).is_err());
    }

    #[test]
    fn f32_shortest_gives_config_style_numbers() {
        assert_eq!(f32_shortest(f32::from_bits(0x3727_c5ac)), 1e-5); // 1e-5f32 = 9.99999974738e-6
        assert_eq!(f32_shortest(100000.0), 100000.0);
        assert_eq!(f32_shortest(1e-6), 1e-6);
    }
}
