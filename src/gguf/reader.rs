//! GGUF container parser: header, metadata key/values, tensor infos, alignment, data offset.
//!
//! Layout as in ggml's `docs/gguf.md` and llama.cpp's `ggml/src/gguf.cpp`
//! (`gguf_init_from_file_impl`), all little-endian:
//! `"GGUF"`, `u32 version` (2 or 3), `u64 n_tensors`, `u64 n_kv`; `n_kv` times
//! (`string key`, `u32 value_type`, value); `n_tensors` times (`string name`, `u32 n_dims`,
//! `u64 ne[n_dims]`, `u32 ggml_type`, `u64 offset`); padding to `general.alignment`
//! (default 32); the tensor data. A string is `u64 len` + UTF-8 bytes; an array is
//! `u32 elem_type`, `u64 count`, elements.
//!
//! Every length and offset read from the file is checked against the bytes that remain before
//! anything is allocated or sliced, so a truncated or corrupt file gives
//! [`GgufError::Truncated`] (or another [`GgufError`]) and never a panic or a huge allocation.
//! Like llama.cpp, a tensor's offset must be a multiple of the alignment and its first
//! dimension a multiple of its type's block size.

use std::path::Path;

use super::metadata::{MetaArray, MetaValue, Metadata};
use super::types::GgmlType;
use super::GgufError;

/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Maximum number of dimensions of a ggml tensor (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// Maximum nesting depth of metadata arrays (a guard against stack exhaustion).
const MAX_ARRAY_DEPTH: usize = 8;

/// One tensor's entry in the GGUF tensor-info table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The GGUF tensor name (e.g. `blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the contiguous one (a matrix `[in, out]`).
    pub dims: Vec<u64>,
    /// Element type.
    pub ty: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Number of elements.
    pub n_elements: u64,
    /// Number of bytes of data.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// The shape in row-major (PyTorch / Hugging Face) order: the reverse of `dims`.
    pub fn shape_row_major(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

enum Storage {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file: metadata, tensor infos and the (memory-mapped) bytes.
pub struct GgufFile {
    storage: Storage,
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    index: std::collections::HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("file_len", &self.file_len())
            .field("n_kv", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and parses a GGUF file.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            return Self::parse(Storage::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and private to this process. As with every mmap-based
        // model loader (llama.cpp, safetensors, candle), changing the file on disk while it is
        // mapped is not supported; all parsing below is bounds-checked against the map length.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(Storage::Mmap(map))
    }

    /// Parses a GGUF file held in memory (used by tests and for files built in memory).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::parse(Storage::Owned(bytes))
    }

    fn parse(storage: Storage) -> Result<Self, GgufError> {
        let h = parse_header(storage.bytes())?;
        let mut index = std::collections::HashMap::with_capacity(h.tensors.len());
        for (i, t) in h.tensors.iter().enumerate() {
            if index.insert(t.name.clone(), i).is_some() {
                return Err(GgufError::invalid(
                    format!("tensor info {i}"),
                    format!("duplicate tensor name '{}'", t.name),
                ));
            }
        }
        Ok(GgufFile {
            storage,
            version: h.version,
            metadata: h.metadata,
            tensors: h.tensors,
            index,
            alignment: h.alignment,
            data_offset: h.data_offset,
        })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of the tensor called `name` (GGUF name).
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).and_then(|&i| self.tensors.get(i))
    }

    /// The data alignment (`general.alignment` or 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.storage.bytes().len() as u64
    }

    /// The raw bytes of a tensor's data (bounds were checked when the file was opened).
    pub fn tensor_data(&self, info: &TensorInfo) -> Result<&[u8], GgufError> {
        let start = self.data_offset.checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(info.n_bytes));
        let bytes = self.storage.bytes();
        match (start, end) {
            (Some(s), Some(e)) if e <= bytes.len() as u64 => bytes
                .get(s as usize..e as usize)
                .ok_or_else(|| truncated(format!("data of tensor '{}'", info.name), e, bytes)),
            _ => Err(truncated(
                format!("data of tensor '{}'", info.name),
                end.unwrap_or(u64::MAX),
                bytes,
            )),
        }
    }

    /// Dequantises the tensor called `name` (GGUF name) to `f32`, in file (ggml) order.
    pub fn read_tensor_f32(&self, name: &str) -> Result<Vec<f32>, GgufError> {
        let info = self
            .tensor(name)
            .ok_or_else(|| GgufError::MissingTensor { name: name.into() })?;
        let data = self.tensor_data(info)?;
        super::dequant::dequantize(info.ty, data, info.n_elements as usize)
            .map_err(|e| e.for_tensor(&info.name))
    }
}

fn truncated(what: String, offset: u64, bytes: &[u8]) -> GgufError {
    GgufError::Truncated {
        what,
        offset,
        file_len: bytes.len() as u64,
    }
}

/// The parsed header of a GGUF file.
struct Header {
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data_offset: u64,
}

/// A bounds-checked little-endian reader over the file bytes.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        let end = (self.pos as u64).saturating_add(n);
        if end > self.data.len() as u64 {
            return Err(truncated(what(), end, self.data));
        }
        let s = self
            .data
            .get(self.pos..end as usize)
            .ok_or_else(|| truncated(what(), end, self.data))?;
        self.pos = end as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn remaining(&self) -> u64 {
        (self.data.len() - self.pos.min(self.data.len())) as u64
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("length of {}", what()))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| GgufError::invalid(what(), format!("not valid UTF-8 ({e})")))
    }

    /// Checks that `count` elements of at least `min_size` bytes each fit in the rest of the
    /// file, before anything is allocated for them.
    fn check_count(
        &self,
        count: u64,
        min_size: u64,
        what: &dyn Fn() -> String,
    ) -> Result<(), GgufError> {
        let need = count.saturating_mul(min_size);
        if need > self.remaining() {
            let end = (self.pos as u64).saturating_add(need);
            return Err(truncated(what(), end, self.data));
        }
        Ok(())
    }
}

fn parse_header(bytes: &[u8]) -> Result<Header, GgufError> {
    let mut c = Cursor {
        data: bytes,
        pos: 0,
    };
    // Magic.
    let head = bytes.get(..4).unwrap_or(bytes);
    if head != b"GGUF" {
        if b"GGUF".starts_with(head) {
            return Err(truncated("magic \"GGUF\"".into(), 4, bytes));
        }
        return Err(GgufError::BadMagic {
            found: head.to_vec(),
        });
    }
    c.pos = 4;
    let version = c.u32(&|| "version".into())?;
    if version != 2 && version != 3 {
        let hint = if matches!(version.swap_bytes(), 1..=3) {
            " (this looks like a big-endian GGUF file, which is not supported)".to_string()
        } else if version == 1 {
            " (version 1 files use 32-bit counts; re-convert the model with a current llama.cpp)"
                .to_string()
        } else {
            String::new()
        };
        return Err(GgufError::UnsupportedVersion { version, hint });
    }
    let n_tensors = c.u64(&|| "tensor count".into())?;
    let n_kv = c.u64(&|| "metadata count".into())?;
    // Each key/value needs at least 8 (key length) + 4 (type) + 1 bytes, each tensor info at
    // least 8 + 4 + 4 + 8 bytes: reject absurd counts before looping.
    c.check_count(n_kv, 13, &|| format!("{n_kv} metadata entries"))?;

    let mut metadata = Metadata::new();
    for i in 0..n_kv {
        let key = c.string(&|| format!("key of metadata entry {i}"))?;
        let ty = c.u32(&|| format!("value type of metadata '{key}'"))?;
        let value = read_value(&mut c, ty, &key, 0)?;
        metadata.insert(key, value)?;
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_i64() {
            Some(a) if a > 0 && (a as u64).is_power_of_two() => a as u64,
            _ => {
                return Err(GgufError::invalid(
                    "metadata 'general.alignment'",
                    format!("{} is not a positive power of two", v.to_json(4)),
                ))
            }
        },
    };

    c.check_count(n_tensors, 24, &|| format!("{n_tensors} tensor infos"))?;
    let mut tensors = Vec::new();
    for i in 0..n_tensors {
        tensors.push(read_tensor_info(&mut c, i, alignment)?);
    }

    let end_of_infos = c.pos as u64;
    let data_offset = end_of_infos
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| GgufError::invalid("data offset", "overflows"))?;
    for t in &tensors {
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(t.n_bytes));
        match end {
            Some(e) if e <= bytes.len() as u64 => {}
            _ => {
                return Err(truncated(
                    format!(
                        "data of tensor '{}' ({} {:?}, {} bytes at data offset {})",
                        t.name, t.ty, t.dims, t.n_bytes, t.offset
                    ),
                    end.unwrap_or(u64::MAX),
                    bytes,
                ))
            }
        }
    }
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

fn read_tensor_info(c: &mut Cursor<'_>, i: u64, alignment: u64) -> Result<TensorInfo, GgufError> {
    let name = c.string(&|| format!("name of tensor info {i}"))?;
    let n_dims = c.u32(&|| format!("n_dims of tensor '{name}'"))?;
    if n_dims > MAX_DIMS {
        return Err(GgufError::invalid(
            format!("tensor '{name}'"),
            format!("{n_dims} dimensions (at most {MAX_DIMS})"),
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        dims.push(c.u64(&|| format!("dimension {d} of tensor '{name}'"))?);
    }
    let type_id = c.u32(&|| format!("type of tensor '{name}'"))?;
    let offset = c.u64(&|| format!("offset of tensor '{name}'"))?;
    let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownType {
        tensor: name.clone(),
        type_id,
    })?;
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| {
            GgufError::invalid(
                format!("tensor '{name}'"),
                format!("shape {dims:?} overflows"),
            )
        })?;
    let ne0 = dims.first().copied().unwrap_or(1);
    if !ne0.is_multiple_of(ty.block_size() as u64) {
        return Err(GgufError::invalid(
            format!("tensor '{name}'"),
            format!(
                "first dimension {ne0} is not a multiple of the {} block size {}",
                ty,
                ty.block_size()
            ),
        ));
    }
    let n_bytes = ty.bytes_for(n_elements).ok_or_else(|| {
        GgufError::invalid(
            format!("tensor '{name}'"),
            format!("size of shape {dims:?} overflows"),
        )
    })?;
    if !offset.is_multiple_of(alignment) {
        return Err(GgufError::invalid(
            format!("tensor '{name}'"),
            format!("data offset {offset} is not a multiple of the alignment {alignment}"),
        ));
    }
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        n_elements,
        n_bytes,
    })
}

/// Size in bytes of a fixed-size value type, or `None` for string (8) and array (9).
fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn read_value(
    c: &mut Cursor<'_>,
    ty: u32,
    key: &str,
    depth: usize,
) -> Result<MetaValue, GgufError> {
    let what = || format!("value of metadata '{key}'");
    Ok(match ty {
        0 => MetaValue::U8(u8::from_le_bytes(c.array(&what)?)),
        1 => MetaValue::I8(i8::from_le_bytes(c.array(&what)?)),
        2 => MetaValue::U16(u16::from_le_bytes(c.array(&what)?)),
        3 => MetaValue::I16(i16::from_le_bytes(c.array(&what)?)),
        4 => MetaValue::U32(u32::from_le_bytes(c.array(&what)?)),
        5 => MetaValue::I32(i32::from_le_bytes(c.array(&what)?)),
        6 => MetaValue::F32(f32::from_le_bytes(c.array(&what)?)),
        7 => MetaValue::Bool(read_bool(c.array::<1>(&what)?[0])),
        8 => MetaValue::Str(c.string(&what)?),
        9 => MetaValue::Array(read_array(c, key, depth)?),
        10 => MetaValue::U64(u64::from_le_bytes(c.array(&what)?)),
        11 => MetaValue::I64(i64::from_le_bytes(c.array(&what)?)),
        12 => MetaValue::F64(f64::from_le_bytes(c.array(&what)?)),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: key.to_owned(),
                type_id: ty,
            })
        }
    })
}

/// A GGUF bool byte: like llama.cpp (which reads it as a C `bool`), any non-zero byte is true.
fn read_bool(b: u8) -> bool {
    b != 0
}

fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<MetaArray, GgufError> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(GgufError::invalid(
            format!("metadata '{key}'"),
            format!("arrays nested deeper than {MAX_ARRAY_DEPTH}"),
        ));
    }
    let et = c.u32(&|| format!("element type of array '{key}'"))?;
    let n = c.u64(&|| format!("length of array '{key}'"))?;
    let what = || format!("{n} elements of array '{key}'");
    if let Some(size) = fixed_size(et) {
        // One bounds check and one slice for the whole array.
        let raw = c.take(n.saturating_mul(size), &what)?;
        return fixed_array(et, raw, key);
    }
    match et {
        8 => {
            c.check_count(n, 8, &what)?;
            let mut v = Vec::new();
            for i in 0..n {
                v.push(c.string(&|| format!("element {i} of array '{key}'"))?);
            }
            Ok(MetaArray::Str(v))
        }
        9 => {
            c.check_count(n, 12, &what)?;
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            Ok(MetaArray::Array(v))
        }
        _ => Err(GgufError::UnknownValueType {
            key: format!("{key}[]"),
            type_id: et,
        }),
    }
}

fn fixed_array(et: u32, raw: &[u8], key: &str) -> Result<MetaArray, GgufError> {
    fn conv<const N: usize, T>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N)
            .map(|ch| {
                let mut a = [0u8; N];
                a.copy_from_slice(ch);
                f(a)
            })
            .collect()
    }
    Ok(match et {
        0 => MetaArray::U8(raw.to_vec()),
        1 => MetaArray::I8(conv(raw, i8::from_le_bytes)),
        2 => MetaArray::U16(conv(raw, u16::from_le_bytes)),
        3 => MetaArray::I16(conv(raw, i16::from_le_bytes)),
        4 => MetaArray::U32(conv(raw, u32::from_le_bytes)),
        5 => MetaArray::I32(conv(raw, i32::from_le_bytes)),
        6 => MetaArray::F32(conv(raw, f32::from_le_bytes)),
        7 => MetaArray::Bool(raw.iter().map(|&b| read_bool(b)).collect()),
        10 => MetaArray::U64(conv(raw, u64::from_le_bytes)),
        11 => MetaArray::I64(conv(raw, i64::from_le_bytes)),
        12 => MetaArray::F64(conv(raw, f64::from_le_bytes)),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: format!("{key}[]"),
                type_id: et,
            })
        }
    })
}
