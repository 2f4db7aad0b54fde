//! Reading checkpoint weights one tensor at a time.
//!
//! Safetensors files are memory-mapped and parsed with the `safetensors` crate's header reader;
//! a sharded checkpoint follows `model.safetensors.index.json`. A read converts one tensor (f32,
//! bf16 or f16 in the file) into an `f32` vector, or, when the model keeps the file's dtype,
//! copies its bytes as they are ([`WeightSource::read_raw`]: no f32 copy of a half-precision
//! tensor). Either way the tensor is read in chunks, and each chunk's pages of the mapping are
//! handed back to the kernel once read (`madvise(MADV_DONTNEED)`; the file stays in the page
//! cache), so the mapped file does not add up in the process's memory while a checkpoint loads:
//! peak memory stays about one chunk beyond the model (plus one f32 tensor when converting).
//! Every offset is checked against the file length, so a truncated file gives an error rather
//! than a crash. PyTorch pickles (`.bin`, `.pt`) are refused: unpickling runs arbitrary code.

use super::ModelError;
use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, SafeTensors};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Anything that can hand out named f32 tensors in the HF naming and layout.
pub trait WeightSource {
    /// All tensor names.
    fn names(&self) -> Vec<String>;
    /// Shape of a tensor, if present.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Reads one tensor, converted to f32, row-major.
    fn read_f32(&self, name: &str) -> Result<Vec<f32>, ModelError>;
    /// Reads one tensor in the dtype it is stored in, when that is `dtype` (f32, bf16 or f16):
    /// its values as they are, in a buffer of that element type (so a tensor takes it without
    /// another copy); `None` when it is stored otherwise or the source cannot.
    fn read_raw(
        &self,
        _name: &str,
        _dtype: burn::tensor::DType,
    ) -> Result<Option<burn::tensor::TensorData>, ModelError> {
        Ok(None)
    }
    /// A short description for error messages (the directory or file).
    fn describe(&self) -> String;
}

struct Shard {
    path: PathBuf,
    mmap: Mmap,
    header_len: usize,
    meta: Metadata,
}

/// A tensor's dtype, shape, bytes and file.
type View<'a> = (Dtype, Vec<usize>, &'a [u8], &'a Path);

/// Bytes read (and then released) at a time.
const CHUNK: usize = 64 << 20;

/// One or several memory-mapped safetensors files.
pub struct SafetensorsSource {
    shards: Vec<Shard>,
    index: HashMap<String, usize>,
    desc: String,
}

fn map_file(path: &Path) -> Result<Shard, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::file(path.display(), e))?;
    // SAFETY: the file is opened read-only; peftlab never writes checkpoint files it maps.
    let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::file(path.display(), e))?;
    let (header_len, meta) = SafeTensors::read_metadata(&mmap).map_err(|e| {
        ModelError::file(
            path.display(),
            format!("not a valid safetensors file ({e:?})"),
        )
    })?;
    let data_len = mmap.len().saturating_sub(8 + header_len);
    for (name, info) in meta.tensors() {
        let (_, end) = info.data_offsets;
        if end > data_len {
            return Err(ModelError::file(
                path.display(),
                format!(
                    "truncated: tensor '{name}' ends at byte {end} but the data section has {data_len}"
                ),
            ));
        }
    }
    Ok(Shard {
        path: path.to_path_buf(),
        mmap,
        header_len,
        meta,
    })
}

impl SafetensorsSource {
    /// Opens a single `.safetensors` file.
    pub fn open_file(path: &Path) -> Result<Self, ModelError> {
        let shard = map_file(path)?;
        let index = shard
            .meta
            .tensors()
            .keys()
            .map(|k| (k.clone(), 0))
            .collect();
        Ok(SafetensorsSource {
            shards: vec![shard],
            index,
            desc: path.display().to_string(),
        })
    }

    /// Opens the weights of a hub-layout directory: `model.safetensors`, or the shards listed by
    /// `model.safetensors.index.json`, or every `*.safetensors` file as a fallback.
    pub fn open_dir(dir: &Path) -> Result<Self, ModelError> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| ModelError::file(index_path.display(), e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ModelError::file(index_path.display(), e))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ModelError::file(index_path.display(), "no 'weight_map' object"))?;
            let mut files: Vec<String> = map
                .values()
                .filter_map(|f| f.as_str().map(String::from))
                .collect();
            files.sort();
            files.dedup();
            let mut shards = Vec::new();
            let mut index = HashMap::new();
            for (i, f) in files.iter().enumerate() {
                let shard = map_file(&dir.join(f))?;
                for k in shard.meta.tensors().keys() {
                    index.insert(k.clone(), i);
                }
                shards.push(shard);
            }
            for (name, f) in map {
                if !index.contains_key(name) {
                    return Err(ModelError::file(
                        index_path.display(),
                        format!("tensor '{name}' is listed for {f} but that file lacks it"),
                    ));
                }
            }
            return Ok(SafetensorsSource {
                shards,
                index,
                desc: dir.display().to_string(),
            });
        }
        if single.exists() {
            let mut s = Self::open_file(&single)?;
            s.desc = dir.display().to_string();
            return Ok(s);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| ModelError::file(dir.display(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let st: Vec<&PathBuf> = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        let pickles: Vec<String> = files
            .iter()
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "bin" || e == "pt" || e == "pth")
            })
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        // Other safetensors files (a reference output, an adapter) next to pickled weights are
        // not the model: the weights are the pickles, so say that instead of reading the
        // wrong file and reporting a missing tensor.
        let model_st = st.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("model"))
        });
        if st.is_empty() || (!model_st && !pickles.is_empty()) {
            if !pickles.is_empty() {
                return Err(ModelError::file(
                    dir.display(),
                    format!(
                        "the weights are PyTorch pickles ({}): pickle checkpoints are refused \
                         (loading them executes code); convert to safetensors once with Python: \
                         `AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, \
                         safe_serialization=True)`",
                        pickles.join(", ")
                    ),
                ));
            }
            return Err(ModelError::file(
                dir.display(),
                "no *.safetensors weights found",
            ));
        }
        let mut shards = Vec::new();
        let mut index = HashMap::new();
        for (i, p) in st.iter().enumerate() {
            let shard = map_file(p)?;
            for k in shard.meta.tensors().keys() {
                index.insert(k.clone(), i);
            }
            shards.push(shard);
        }
        Ok(SafetensorsSource {
            shards,
            index,
            desc: dir.display().to_string(),
        })
    }

    /// Runs `f` on the bytes of tensor `name`, a chunk of whole elements (`elem` bytes) at a
    /// time, releasing each chunk's pages of the mapping after `f` has read it.
    fn chunks(&self, name: &str, elem: usize, mut f: impl FnMut(&[u8])) -> Result<(), ModelError> {
        let (_, _, bytes, _) = self.view(name)?;
        let shard = &self.shards[self.index[name]];
        let base = bytes.as_ptr() as usize - shard.mmap.as_ptr() as usize;
        let step = (CHUNK / elem.max(1)).max(1) * elem.max(1);
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + step).min(bytes.len());
            f(&bytes[at..end]);
            release(&shard.mmap, base + at, end - at);
            at = end;
        }
        Ok(())
    }

    fn view(&self, name: &str) -> Result<View<'_>, ModelError> {
        let i = *self
            .index
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
                source_desc: self.desc.clone(),
            })?;
        let shard = &self.shards[i];
        let info = shard
            .meta
            .info(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
                source_desc: self.desc.clone(),
            })?;
        let (b, e) = info.data_offsets;
        let start = 8 + shard.header_len;
        let bytes = shard.mmap.get(start + b..start + e).ok_or_else(|| {
            ModelError::file(
                shard.path.display(),
                format!("tensor '{name}' is out of bounds"),
            )
        })?;
        Ok((info.dtype, info.shape.clone(), bytes, &shard.path))
    }
}

/// Hands the pages of `mmap[offset..offset + len]` back to the kernel: this process has read
/// them and does not need them mapped any more. The mapping is a read-only shared mapping of a
/// file, so a later read of the range faults the same bytes in again from the page cache; the
/// advice only lowers the resident memory. Failure is harmless (the pages stay) and ignored.
fn release(mmap: &Mmap, offset: usize, len: usize) {
    #[cfg(unix)]
    {
        // SAFETY: MADV_DONTNEED on a read-only, shared, file-backed mapping never changes the
        // bytes a later read sees (they are reloaded from the file, which peftlab never
        // writes while it is mapped); the range is within the mapping.
        let _ =
            unsafe { mmap.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    }
    #[cfg(not(unix))]
    let _ = (mmap, offset, len);
}

/// Converts raw little-endian bytes of a float dtype into f32 values.
pub fn bytes_to_f32(dtype: Dtype, bytes: &[u8], what: &str) -> Result<Vec<f32>, ModelError> {
    let out = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a) as f32
            })
            .collect(),
        other => {
            return Err(ModelError::Input(format!(
                "{what}: dtype {other:?} is not a float type (expected F32, BF16, F16 or F64)"
            )))
        }
    };
    Ok(out)
}

impl WeightSource for SafetensorsSource {
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.index.keys().cloned().collect();
        v.sort();
        v
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let i = *self.index.get(name)?;
        self.shards[i].meta.info(name).map(|t| t.shape.clone())
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let (dtype, _shape, bytes, path) = self.view(name)?;
        let what = format!("{} '{name}'", path.display());
        let elem = dtype.bitsize() / 8;
        let mut out = Vec::with_capacity(bytes.len() / elem.max(1));
        let mut failed = None;
        self.chunks(name, elem, |chunk| {
            if failed.is_none() {
                match bytes_to_f32(dtype, chunk, &what) {
                    Ok(v) => out.extend_from_slice(&v),
                    Err(e) => failed = Some(e),
                }
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn read_raw(
        &self,
        name: &str,
        dtype: burn::tensor::DType,
    ) -> Result<Option<burn::tensor::TensorData>, ModelError> {
        use burn::tensor::{DType, TensorData};
        let (stored, shape, bytes, _) = self.view(name)?;
        let n = bytes.len() / (stored.bitsize() / 8).max(1);
        let le16 = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
        let data = match (stored, dtype) {
            (Dtype::F32, DType::F32) => {
                let mut out: Vec<f32> = Vec::with_capacity(n);
                self.chunks(name, 4, |c| {
                    out.extend(
                        c.chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    )
                })?;
                TensorData::new(out, shape)
            }
            (Dtype::BF16, DType::BF16) => {
                let mut out: Vec<bf16> = Vec::with_capacity(n);
                self.chunks(name, 2, |c| {
                    out.extend(c.chunks_exact(2).map(|b| bf16::from_bits(le16(b))))
                })?;
                TensorData::new(out, shape)
            }
            (Dtype::F16, DType::F16) => {
                let mut out: Vec<f16> = Vec::with_capacity(n);
                self.chunks(name, 2, |c| {
                    out.extend(c.chunks_exact(2).map(|b| f16::from_bits(le16(b))))
                })?;
                TensorData::new(out, shape)
            }
            _ => return Ok(None),
        };
        Ok(Some(data))
    }

    fn describe(&self) -> String {
        self.desc.clone()
    }
}
