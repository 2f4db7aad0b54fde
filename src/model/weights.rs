//! Reading checkpoint weights one tensor at a time.
//!
//! Safetensors files are memory-mapped and parsed with the `safetensors` crate's header reader;
//! a sharded checkpoint follows `model.safetensors.index.json`. Each read converts one tensor
//! (f32, bf16 or f16 in the file) into an `f32` vector, so peak memory stays about one tensor
//! beyond the model. Every offset is checked against the file length, so a truncated file gives
//! an error rather than a crash. PyTorch pickles (`.bin`, `.pt`) are refused: unpickling runs
//! arbitrary code.

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
        bytes_to_f32(dtype, bytes, &format!("{} '{name}'", path.display()))
    }

    fn describe(&self) -> String {
        self.desc.clone()
    }
}
