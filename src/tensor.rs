//! Host tensors: the values scripts inspect (`logits`, `hidden_states`, `load_tensors`).
//!
//! A [`HostTensor`] is a shape plus row-major f32 or i64 data, independent of the compute
//! backend. It reads and writes safetensors files and converts to nested arrays.

use crate::value::{num, Value};
use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

/// Errors of host tensor operations.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// Shapes that must agree do not.
    #[error("shape mismatch: {0:?} vs {1:?}")]
    ShapeMismatch(Vec<usize>, Vec<usize>),
    /// An index or range outside the tensor.
    #[error("{0}")]
    Index(String),
    /// A malformed nested array or unsupported element.
    #[error("{0}")]
    Value(String),
    /// File problems.
    #[error("{path}: {msg}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Row-major element storage.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// Floating point values.
    F32(Vec<f32>),
    /// Integer values.
    I64(Vec<i64>),
}

/// A tensor held in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Elements, row-major.
    pub data: HostData,
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl HostTensor {
    /// A float tensor; errors if the element count does not match the shape.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, TensorError> {
        if numel(&shape) != data.len() {
            return Err(TensorError::Value(format!(
                "{} values do not fill shape {shape:?}",
                data.len()
            )));
        }
        Ok(HostTensor {
            shape,
            data: HostData::F32(data),
        })
    }

    /// An integer tensor; errors if the element count does not match the shape.
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Result<Self, TensorError> {
        if numel(&shape) != data.len() {
            return Err(TensorError::Value(format!(
                "{} values do not fill shape {shape:?}",
                data.len()
            )));
        }
        Ok(HostTensor {
            shape,
            data: HostData::I64(data),
        })
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Whether the elements are integers.
    pub fn is_int(&self) -> bool {
        matches!(self.data, HostData::I64(_))
    }

    /// Elements as f64 (integers converted).
    pub fn values_f64(&self) -> Vec<f64> {
        match &self.data {
            HostData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            HostData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Elements as f32 (integers converted).
    pub fn values_f32(&self) -> Vec<f32> {
        match &self.data {
            HostData::F32(v) => v.clone(),
            HostData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    fn select_range(&self, axis: usize, start: usize, end: usize) -> Result<Self, TensorError> {
        let dims = self.shape.len();
        if axis >= dims {
            return Err(TensorError::Index(format!(
                "axis {axis} out of range for a tensor of rank {dims}"
            )));
        }
        let n = self.shape[axis];
        if start > end || end > n {
            return Err(TensorError::Index(format!(
                "range {start}..{end} out of bounds for axis {axis} of size {n}"
            )));
        }
        let outer: usize = self.shape[..axis].iter().product();
        let inner: usize = self.shape[axis + 1..].iter().product();
        let mut shape = self.shape.clone();
        shape[axis] = end - start;
        fn pick<T: Copy>(
            v: &[T],
            outer: usize,
            n: usize,
            inner: usize,
            s: usize,
            e: usize,
        ) -> Vec<T> {
            let mut out = Vec::with_capacity(outer * (e - s) * inner);
            for o in 0..outer {
                let base = o * n * inner;
                out.extend_from_slice(&v[base + s * inner..base + e * inner]);
            }
            out
        }
        let data = match &self.data {
            HostData::F32(v) => HostData::F32(pick(v, outer, n, inner, start, end)),
            HostData::I64(v) => HostData::I64(pick(v, outer, n, inner, start, end)),
        };
        Ok(HostTensor { shape, data })
    }

    /// `t.slice(axis, start, end)`: a sub-range along one axis.
    pub fn slice(&self, axis: i64, start: i64, end: i64) -> Result<Self, TensorError> {
        let rank = self.shape.len() as i64;
        let axis = if axis < 0 { axis + rank } else { axis };
        if axis < 0 || axis >= rank {
            return Err(TensorError::Index(format!(
                "axis {axis} out of range for rank {rank}"
            )));
        }
        let n = self.shape[axis as usize] as i64;
        let norm = |x: i64| if x < 0 { x + n } else { x };
        let (s, e) = (norm(start), norm(end));
        if s < 0 || e < 0 {
            return Err(TensorError::Index(format!(
                "range {start}..{end} out of bounds for axis {axis} of size {n}"
            )));
        }
        self.select_range(axis as usize, s as usize, e as usize)
    }

    /// `t[i]`: the sub-tensor at index `i` of axis 0 (negative counts from the end).
    pub fn index(&self, i: i64) -> Result<Self, TensorError> {
        let Some(&n) = self.shape.first() else {
            return Err(TensorError::Index("cannot index a scalar tensor".into()));
        };
        let j = if i < 0 { i + n as i64 } else { i };
        if j < 0 || j >= n as i64 {
            return Err(TensorError::Index(format!(
                "index {i} out of bounds for axis 0 of size {n}"
            )));
        }
        let mut t = self.select_range(0, j as usize, j as usize + 1)?;
        t.shape.remove(0);
        Ok(t)
    }

    /// Index of the largest element of a 1-D tensor (first on ties, like torch.argmax).
    pub fn argmax(&self) -> Result<usize, TensorError> {
        if self.shape.len() != 1 || self.numel() == 0 {
            return Err(TensorError::Index(format!(
                "argmax needs a non-empty 1-D tensor (shape {:?})",
                self.shape
            )));
        }
        let v = self.values_f64();
        let mut best = 0;
        for (i, x) in v.iter().enumerate() {
            if *x > v[best] || (v[best].is_nan() && !x.is_nan()) {
                best = i;
            }
        }
        Ok(best)
    }

    /// Sum of all elements (in f64).
    pub fn sum(&self) -> f64 {
        self.values_f64().iter().sum()
    }

    /// Mean of all elements (NaN for an empty tensor).
    pub fn mean(&self) -> f64 {
        self.sum() / self.numel() as f64
    }

    /// Largest absolute element-wise difference; shapes must be equal.
    pub fn max_abs_diff(&self, other: &HostTensor) -> Result<f64, TensorError> {
        if self.shape != other.shape {
            return Err(TensorError::ShapeMismatch(
                self.shape.clone(),
                other.shape.clone(),
            ));
        }
        let (a, b) = (self.values_f64(), other.values_f64());
        Ok(a.iter().zip(&b).fold(0.0f64, |m, (x, y)| {
            let d = (x - y).abs();
            if d.is_nan() || d > m {
                d
            } else {
                m
            }
        }))
    }

    /// Nested arrays (ints for integer tensors); a 0-d tensor gives a number.
    pub fn to_value(&self) -> Value {
        fn rec(shape: &[usize], data: &HostData, off: usize) -> Value {
            if shape.is_empty() {
                return match data {
                    HostData::F32(v) => num(f64::from(v[off])),
                    HostData::I64(v) => Value::from(v[off]),
                };
            }
            let inner: usize = shape[1..].iter().product();
            Value::Array(
                (0..shape[0])
                    .map(|i| rec(&shape[1..], data, off + i * inner))
                    .collect(),
            )
        }
        rec(&self.shape, &self.data, 0)
    }

    /// Builds a tensor from nested arrays of numbers: i64 when every element is an integer,
    /// f32 otherwise. Ragged arrays are an error.
    pub fn from_value(v: &Value) -> Result<Self, TensorError> {
        fn shape_of(v: &Value) -> Vec<usize> {
            match v {
                Value::Array(a) => {
                    let mut s = vec![a.len()];
                    if let Some(first) = a.first() {
                        s.extend(shape_of(first));
                    }
                    s
                }
                _ => vec![],
            }
        }
        let shape = shape_of(v);
        let mut floats = Vec::new();
        let mut all_int = true;
        fn walk(
            v: &Value,
            shape: &[usize],
            out: &mut Vec<f64>,
            all_int: &mut bool,
            path: &str,
        ) -> Result<(), TensorError> {
            match (v, shape.first()) {
                (Value::Array(a), Some(&n)) => {
                    if a.len() != n {
                        return Err(TensorError::Value(format!(
                            "ragged nested array at {path}: {} elements, expected {n}",
                            a.len()
                        )));
                    }
                    for (i, x) in a.iter().enumerate() {
                        walk(x, &shape[1..], out, all_int, &format!("{path}[{i}]"))?;
                    }
                    Ok(())
                }
                (Value::Number(n), None) => {
                    if !n.is_i64() {
                        *all_int = false;
                    }
                    out.push(n.as_f64().unwrap_or(f64::NAN));
                    Ok(())
                }
                (other, _) => Err(TensorError::Value(format!(
                    "expected a number or a nested array of numbers at {path}, got {other}"
                ))),
            }
        }
        walk(v, &shape, &mut floats, &mut all_int, "value")?;
        if all_int && !floats.is_empty() {
            Ok(HostTensor {
                shape,
                data: HostData::I64(floats.iter().map(|&x| x as i64).collect()),
            })
        } else {
            Ok(HostTensor {
                shape,
                data: HostData::F32(floats.iter().map(|&x| x as f32).collect()),
            })
        }
    }

    /// One-line summary, e.g. `Tensor(f32 [4, 12, 1000], mean=0.0012)`.
    pub fn summary(&self) -> String {
        let kind = if self.is_int() { "i64" } else { "f32" };
        if self.numel() <= 8 {
            format!("Tensor({kind} {:?}, {})", self.shape, self.to_value())
        } else {
            format!("Tensor({kind} {:?}, mean={:.6})", self.shape, self.mean())
        }
    }
}

/// Reads every tensor of a safetensors file (floats → f32, integers and bools → i64).
pub fn load_safetensors(path: &Path) -> Result<BTreeMap<String, HostTensor>, TensorError> {
    let err = |msg: String| TensorError::File {
        path: path.display().to_string(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|source| TensorError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| err(format!("not a valid safetensors file ({e:?})")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let b = view.data();
        let data = match view.dtype() {
            Dtype::F32 => HostData::F32(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::F64 => HostData::F32(
                b.chunks_exact(8)
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        f64::from_le_bytes(a) as f32
                    })
                    .collect(),
            ),
            Dtype::BF16 => HostData::F32(
                b.chunks_exact(2)
                    .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            Dtype::F16 => HostData::F32(
                b.chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            Dtype::I64 => HostData::I64(
                b.chunks_exact(8)
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        i64::from_le_bytes(a)
                    })
                    .collect(),
            ),
            Dtype::I32 => HostData::I64(
                b.chunks_exact(4)
                    .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            ),
            Dtype::I16 => HostData::I64(
                b.chunks_exact(2)
                    .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
                    .collect(),
            ),
            Dtype::I8 => HostData::I64(b.iter().map(|&x| i64::from(x as i8)).collect()),
            Dtype::U8 | Dtype::BOOL => HostData::I64(b.iter().map(|&x| i64::from(x)).collect()),
            other => return Err(err(format!("tensor '{name}': unsupported dtype {other:?}"))),
        };
        out.insert(name, HostTensor { shape, data });
    }
    Ok(out)
}

/// Writes tensors to a safetensors file (f32 or i64), atomically.
pub fn save_safetensors(
    tensors: &BTreeMap<String, HostTensor>,
    path: &Path,
) -> Result<(), TensorError> {
    let err = |msg: String| TensorError::File {
        path: path.display().to_string(),
        msg,
    };
    let buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, t)| match &t.data {
            HostData::F32(v) => (
                k.clone(),
                Dtype::F32,
                t.shape.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            HostData::I64(v) => (
                k.clone(),
                Dtype::I64,
                t.shape.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(k, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| err(format!("{e:?}")))
        })
        .collect::<Result<_, _>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| err(format!("{e:?}")))?;
    crate::fsutil::write_atomic(path, &bytes).map_err(|source| TensorError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl std::fmt::Display for HostTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Index of the first maximum of a row of scores (greedy decoding, accuracy); `0` for an
/// empty row; a NaN never wins against an earlier value.
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_slice_argmax() {
        let t = HostTensor::f32(vec![2, 3], vec![1.0, 5.0, 2.0, 7.0, 0.0, 7.0]).unwrap();
        let r = t.index(1).unwrap();
        assert_eq!(r.shape, vec![3]);
        assert_eq!(r.argmax().unwrap(), 0); // first of the tied maxima, like torch
        let s = t.slice(1, 1, 3).unwrap();
        assert_eq!(s.values_f32(), vec![5.0, 2.0, 0.0, 7.0]);
        assert!(t.index(2).is_err());
        assert!(t.slice(0, 1, 3).is_err());
        assert_eq!(t.sum(), 22.0);
    }

    #[test]
    fn nested_roundtrip_and_ragged_error() {
        let v: Value = serde_json::json!([[1, 2], [3, 4]]);
        let t = HostTensor::from_value(&v).unwrap();
        assert!(t.is_int());
        assert_eq!(t.to_value(), v);
        let bad: Value = serde_json::json!([[1, 2], [3]]);
        assert!(HostTensor::from_value(&bad)
            .unwrap_err()
            .to_string()
            .contains("ragged"));
        let f = HostTensor::from_value(&serde_json::json!([1, 2.5])).unwrap();
        assert!(!f.is_int());
    }
}
