//! Option maps (`#{ r: 8, alpha: 16 }`) into typed Rust structs.
//!
//! [`parse_opts`] deserializes a Rhai object map into any `#[derive(Deserialize)]` struct with a
//! small serde `Deserializer` over [`Dynamic`] written for this purpose instead of
//! `rhai::serde::from_dynamic`, because the latter (rhai 1.27 `src/serde/de.rs`) never accepts
//! an integer for an `f64`/`f32` field, reports serde errors as "Syntax error", and does not say
//! which key was wrong. Here:
//!
//! - an unknown key is an error listing the valid keys (the struct's field names as serde
//!   passes them to `deserialize_struct`): `add_adapter: unknown option 'alpah' (expected one of:
//!   method, r, alpha)`;
//! - a wrong type names the key, what was expected and what was given:
//!   `add_adapter: option 'r': expected an integer, got string "8"`;
//! - integers are accepted wherever a float is expected (`alpha: 16`), at any nesting depth;
//! - a key whose value is `()` counts as absent, so `()` selects the default (for `Option` fields:
//!   `None`);
//! - unit-only enums are read from strings (`method: "lora"`), unknown values list the variants;
//! - nested maps and arrays work (`betas: [0.9, 0.999]`, `feature_rank: #{ lang: 4 }`) and their
//!   errors carry a path (`option 'betas[1]'`, `option 'feature_rank.lang'`).
//!
//! Do not use `#[serde(flatten)]` in option structs (serde then asks for a plain map and unknown
//! keys can no longer be detected). Handles (models, datasets) cannot be options: pass them as
//! positional arguments.

use std::fmt;

use rhai::{Dynamic, EvalAltResult, Map};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};

use super::error::fail;

/// Parses an option map into `T`; errors are runtime errors prefixed with `fn_name`.
///
/// ```
/// use peftlab::host::opts::parse_opts;
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(default)]
/// struct Opts { r: usize, alpha: f64 }
/// impl Default for Opts { fn default() -> Self { Opts { r: 8, alpha: 16.0 } } }
///
/// let mut m = rhai::Map::new();
/// m.insert("alpha".into(), rhai::Dynamic::from_int(32));
/// let o: Opts = parse_opts("add_adapter", &m).unwrap();
/// assert_eq!((o.r, o.alpha), (8, 32.0));
///
/// m.insert("alpah".into(), rhai::Dynamic::from_int(1));
/// let err = parse_opts::<Opts>("add_adapter", &m).unwrap_err().to_string();
/// assert!(err.contains("add_adapter: unknown option 'alpah' (expected one of: r, alpha)"));
/// ```
pub fn parse_opts<T: DeserializeOwned>(fn_name: &str, opts: &Map) -> Result<T, Box<EvalAltResult>> {
    T::deserialize(MapDe::new(opts, 0)).map_err(|e| fail(format!("{fn_name}: {e}")))
}

/// Deserializes any script value (not only maps) into `T`; `what` names the argument in errors
/// (`"argument 'cells'"`).
pub fn from_value<T: DeserializeOwned>(
    fn_name: &str,
    what: &str,
    value: &Dynamic,
) -> Result<T, Box<EvalAltResult>> {
    T::deserialize(ValueDe(value, 0)).map_err(|e| {
        if e.path.is_empty() {
            fail(format!("{fn_name}: {what}: {}", e.msg))
        } else {
            fail(format!("{fn_name}: {what}, at '{}': {}", e.path, e.msg))
        }
    })
}

/// The error of option parsing: a message and the key path it applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct OptsError {
    path: String,
    msg: String,
}

impl OptsError {
    fn under_key(mut self, key: &str) -> Self {
        self.path = match (self.path.is_empty(), self.path.starts_with('[')) {
            (true, _) => key.to_string(),
            (false, true) => format!("{key}{}", self.path),
            (false, false) => format!("{key}.{}", self.path),
        };
        self
    }

    fn under_index(mut self, i: usize) -> Self {
        self.path = if self.path.is_empty() || self.path.starts_with('[') {
            format!("[{i}]{}", self.path)
        } else {
            format!("[{i}].{}", self.path)
        };
        self
    }
}

impl fmt::Display for OptsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "option '{}': {}", self.path, self.msg)
        }
    }
}

impl std::error::Error for OptsError {}

impl de::Error for OptsError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        OptsError {
            path: String::new(),
            msg: msg.to_string(),
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "expected {}, got {}",
            friendly_expected(&exp.to_string()),
            friendly_unexpected(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "invalid value {} (expected {})",
            friendly_unexpected(&unexp),
            friendly_expected(&exp.to_string())
        ))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format!(
            "unknown value '{variant}' (expected one of: {})",
            expected.join(", ")
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format!(
            "unknown option '{field}' (expected one of: {})",
            expected.join(", ")
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing required option '{field}'"))
    }
}

/// Turns serde's expectation texts into words a script author knows.
fn friendly_expected(exp: &str) -> String {
    match exp {
        "u8" | "u16" | "u32" | "u64" | "usize" | "u128" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" | "i128" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a borrowed string" | "a string" | "a character" | "a char" => "a string".into(),
        "a sequence" => "an array".into(),
        "a boolean" => "a bool (true/false)".into(),
        "unit" => "()".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") => "a map #{...}".into(),
        e if e.starts_with("option") => "a value or ()".into(),
        e => e.to_string(),
    }
}

fn friendly_unexpected(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Unit => "()".into(),
        Unexpected::Bool(b) => format!("bool {b}"),
        Unexpected::Signed(i) => format!("integer {i}"),
        Unexpected::Unsigned(i) => format!("integer {i}"),
        Unexpected::Float(x) => format!("float {x}"),
        Unexpected::Str(s) => format!("string {s:?}"),
        Unexpected::Char(c) => format!("char {c:?}"),
        Unexpected::Seq => "an array".into(),
        Unexpected::Map => "a map".into(),
        other => other.to_string(),
    }
}

fn unexpected_of(v: &Dynamic) -> Unexpected<'_> {
    if v.is_unit() {
        Unexpected::Unit
    } else if let Ok(b) = v.as_bool() {
        Unexpected::Bool(b)
    } else if let Ok(i) = v.as_int() {
        Unexpected::Signed(i)
    } else if let Ok(x) = v.as_float() {
        Unexpected::Float(x)
    } else if v.is_string() {
        Unexpected::Other("a string")
    } else if v.is_array() {
        Unexpected::Seq
    } else if v.is_map() {
        Unexpected::Map
    } else {
        Unexpected::Other(v.type_name())
    }
}

/// Deserializer over one script value at a nesting depth (checked against
/// [`crate::limits::max_depth`] before descending into an array or map).
struct ValueDe<'a>(&'a Dynamic, usize);

/// Deserializer (and `MapAccess`) over an object map; keys with `()` values count as absent.
struct MapDe<'a> {
    entries: Vec<(&'a str, &'a Dynamic)>,
    pos: usize,
    depth: usize,
}

impl<'a> MapDe<'a> {
    fn new(map: &'a Map, depth: usize) -> Self {
        let entries = map
            .iter()
            .filter(|(_, v)| !v.is_unit())
            .map(|(k, v)| (k.as_str(), v));
        MapDe {
            entries: entries.collect(),
            pos: 0,
            depth,
        }
    }
}

struct SeqDe<'a> {
    items: &'a [Dynamic],
    pos: usize,
    depth: usize,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = OptsError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, OptsError> {
        match self.entries.get(self.pos) {
            Some((k, _)) => seed.deserialize((*k).into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, OptsError> {
        let (k, v) = match self.entries.get(self.pos) {
            Some(e) => *e,
            None => return Err(de::Error::custom("value requested past the end of the map")),
        };
        self.pos += 1;
        seed.deserialize(ValueDe(v, self.depth + 1))
            .map_err(|e| e.under_key(k))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.pos)
    }
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = OptsError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, OptsError> {
        match self.items.get(self.pos) {
            Some(v) => {
                let i = self.pos;
                self.pos += 1;
                seed.deserialize(ValueDe(v, self.depth + 1))
                    .map(Some)
                    .map_err(|e| e.under_index(i))
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.pos)
    }
}

impl<'de> de::Deserializer<'de> for MapDe<'_> {
    type Error = OptsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptsError> {
        visitor.visit_map(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, OptsError> {
        if let Some((k, _)) = self.entries.iter().find(|(k, _)| !fields.contains(k)) {
            return Err(de::Error::unknown_field(k, fields));
        }
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Calls `f` with a flattened (unshared) view of `v`: values captured by closures are shared.
fn with_flat<R>(v: &Dynamic, f: impl FnOnce(&Dynamic) -> R) -> R {
    if v.is_shared() {
        f(&v.flatten_clone())
    } else {
        f(v)
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'_> {
    type Error = OptsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptsError> {
        let depth = self.1;
        with_flat(self.0, |v| {
            if (v.is_array() || v.is_map()) && depth > crate::limits::max_depth() {
                return Err(de::Error::custom(
                    crate::limits::check_depth("the value", depth)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default(),
                ));
            }
            if v.is_unit() {
                visitor.visit_unit()
            } else if let Ok(b) = v.as_bool() {
                visitor.visit_bool(b)
            } else if let Ok(i) = v.as_int() {
                visitor.visit_i64(i)
            } else if let Ok(x) = v.as_float() {
                visitor.visit_f64(x)
            } else if let Ok(c) = v.as_char() {
                visitor.visit_char(c)
            } else if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
                visitor.visit_str(s.as_str())
            } else if let Some(a) = v.read_lock::<rhai::Array>() {
                visitor.visit_seq(SeqDe {
                    items: &a,
                    pos: 0,
                    depth,
                })
            } else if let Some(m) = v.read_lock::<Map>() {
                visitor.visit_map(MapDe::new(&m, depth))
            } else if let Some(b) = v.read_lock::<rhai::Blob>() {
                visitor.visit_bytes(&b)
            } else {
                Err(de::Error::custom(format!(
                    "expected a plain value (number, string, bool, array or map), got {}",
                    v.type_name()
                )))
            }
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptsError> {
        if self.0.is_unit() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, OptsError> {
        with_flat(self.0, |v| match v.read_lock::<Map>() {
            Some(m) => {
                de::Deserializer::deserialize_struct(MapDe::new(&m, self.1), name, fields, visitor)
            }
            None => Err(de::Error::invalid_type(unexpected_of(v), &visitor)),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, OptsError> {
        with_flat(self.0, |v| match v.read_lock::<rhai::ImmutableString>() {
            Some(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            None => Err(de::Error::custom(format!(
                "expected one of: {} (a string), got {}",
                variants.join(", "),
                friendly_unexpected(&unexpected_of(v))
            ))),
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, OptsError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq, Default)]
    #[serde(rename_all = "lowercase")]
    enum Method {
        #[default]
        Lora,
        Dora,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(default)]
    struct Opts {
        method: Method,
        r: usize,
        alpha: f64,
        scale: f32,
        layers: Option<Vec<usize>>,
        betas: [f64; 2],
        name: String,
        on: bool,
        rank: std::collections::BTreeMap<String, u32>,
    }

    impl Default for Opts {
        fn default() -> Self {
            Opts {
                method: Method::Lora,
                r: 8,
                alpha: 16.0,
                scale: 1.0,
                layers: Some(vec![0]),
                betas: [0.9, 0.999],
                name: "x".into(),
                on: false,
                rank: Default::default(),
            }
        }
    }

    fn eval_map(src: &str) -> Map {
        rhai::Engine::new().eval::<Map>(src).unwrap()
    }

    fn parse(src: &str) -> Result<Opts, String> {
        parse_opts::<Opts>("f", &eval_map(src)).map_err(|e| match *e {
            EvalAltResult::ErrorRuntime(d, _) => d.to_string(),
            other => panic!("not a runtime error: {other}"),
        })
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse("#{}").unwrap(), Opts::default());
        let o = parse(
            r#"#{ method: "dora", r: 4, alpha: 32, scale: 2, layers: [1, 3], betas: [0.8, 1],
                 name: "n", on: true, rank: #{ lang: 4 } }"#,
        )
        .unwrap();
        assert_eq!(o.method, Method::Dora);
        assert_eq!((o.r, o.alpha, o.scale), (4, 32.0, 2.0));
        assert_eq!(o.layers, Some(vec![1, 3]));
        assert_eq!(o.betas, [0.8, 1.0]);
        assert_eq!((o.name.as_str(), o.on), ("n", true));
        assert_eq!(o.rank.get("lang"), Some(&4));
        // `()` means "default" / None.
        let o = parse("#{ layers: (), r: () }").unwrap();
        assert_eq!((o.layers, o.r), (Some(vec![0]), 8));
    }

    #[test]
    fn errors_name_key_expected_and_got() {
        assert_eq!(
            parse("#{ alpah: 1 }").unwrap_err(),
            "f: unknown option 'alpah' (expected one of: method, r, alpha, scale, layers, betas, \
             name, on, rank)"
        );
        assert_eq!(
            parse(r#"#{ r: "8" }"#).unwrap_err(),
            "f: option 'r': expected a non-negative integer, got string \"8\""
        );
        assert_eq!(
            parse("#{ r: -1 }").unwrap_err(),
            "f: option 'r': invalid value integer -1 (expected a non-negative integer)"
        );
        assert_eq!(
            parse("#{ r: 2.5 }").unwrap_err(),
            "f: option 'r': expected a non-negative integer, got float 2.5"
        );
        assert_eq!(
            parse(r#"#{ method: "lorra" }"#).unwrap_err(),
            "f: option 'method': unknown value 'lorra' (expected one of: lora, dora)"
        );
        assert_eq!(
            parse("#{ betas: [0.9, true] }").unwrap_err(),
            "f: option 'betas[1]': expected a number, got bool true"
        );
        assert_eq!(
            parse(r#"#{ rank: #{ lang: "x" } }"#).unwrap_err(),
            "f: option 'rank.lang': expected a non-negative integer, got string \"x\""
        );
        assert_eq!(
            parse("#{ alpha: [1] }").unwrap_err(),
            "f: option 'alpha': expected a number, got an array"
        );
    }

    #[test]
    fn required_fields_and_from_value() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Req {
            total_steps: u64,
        }
        let e = parse_opts::<Req>("g", &Map::new()).unwrap_err().to_string();
        assert!(
            e.contains("g: missing required option 'total_steps'"),
            "{e}"
        );
        let v: Vec<f64> = from_value(
            "g",
            "argument 'x'",
            &Dynamic::from_array(vec![Dynamic::from_int(1), Dynamic::from_float(0.5)]),
        )
        .unwrap();
        assert_eq!(v, vec![1.0, 0.5]);
        let e = from_value::<Vec<u8>>("g", "argument 'x'", &Dynamic::from("s")).unwrap_err();
        assert!(
            e.to_string().contains("g: argument 'x': expected an array"),
            "{e}"
        );
    }
}
