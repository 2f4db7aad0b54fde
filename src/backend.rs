//! The one place that names burn backends and devices.
//!
//! Everything else is generic over `B: Backend` (or `B: AutodiffBackend` for training). Models
//! always live on an autodiff backend: frozen weights are plain tensors that never require
//! gradients, so inference records no graph, and training only tracks adapter tensors.

use crate::model::ModelError;

/// CPU backend (burn-flex, pure Rust, multi-threaded gemm) with autodiff.
pub type Cpu = burn::backend::Autodiff<burn::backend::Flex>;

/// CUDA backend (burn-cuda through NVRTC; CUDA libraries are loaded at run time).
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Autodiff<burn::backend::Cuda>;

/// Which device a model runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU.
    Cpu,
    /// A CUDA GPU by index.
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses `"cpu"`, `"cuda"` or `"cuda:N"`.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            _ => {
                if let Some(n) = s.strip_prefix("cuda:") {
                    n.parse().map(DeviceSpec::Cuda).map_err(|_| {
                        ModelError::Device(format!(
                            "bad device '{s}' (expected cpu, cuda or cuda:N)"
                        ))
                    })
                } else {
                    Err(ModelError::Device(format!(
                        "unknown device '{s}' (expected one of: cpu, cuda, cuda:N)"
                    )))
                }
            }
        }
    }

    /// The name shown in `info()`.
    pub fn name(&self) -> String {
        match self {
            DeviceSpec::Cpu => "cpu".into(),
            DeviceSpec::Cuda(i) => format!("cuda:{i}"),
        }
    }

    /// Errors unless this binary can run on the device.
    pub fn check_available(&self) -> Result<(), ModelError> {
        match self {
            DeviceSpec::Cpu => Ok(()),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(_) => Ok(()),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => Err(ModelError::Device(
                "this peftlab was built without CUDA support; rebuild with \
                 `cargo build --release --features cuda` (needs no CUDA at build time; the \
                 CUDA driver and NVRTC are loaded at run time)"
                    .into(),
            )),
        }
    }
}
