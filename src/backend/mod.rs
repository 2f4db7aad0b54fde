//! The one place that names burn backends and devices, and the backend extensions peftlab's
//! network needs.
//!
//! Everything above this layer is generic over one umbrella trait, [`LmBackend`]: a burn
//! backend with the fused attention steps ([`attention::AttentionBackend`]), the fused
//! cross-entropy ([`cross_entropy::CrossEntropyBackend`]) and quantised linear layers
//! ([`crate::quant::QuantOps`]). Rust has no specialisation, so each extension is a trait with
//! tensor-op defaults, implemented for `Flex` (host kernels), for `Autodiff<B>` (custom backward
//! steps) and, with the matching features, for `Cuda` and `LibTorch` (the defaults). Models
//! always live on an autodiff backend: frozen weights are plain tensors that never require
//! gradients, so inference records no graph, and training only tracks adapter tensors.

pub mod attention;
pub mod cross_entropy;

pub(crate) use crate::quant::impl_defaults_for_optional_backends;

/// The backend everything above this layer is generic over: a burn backend with every
/// extension peftlab's network uses. Implemented (blanket) for every backend that has them all:
/// `Flex`, `Autodiff<B: LmBackend>`, and with the features `Cuda` and `LibTorch` (f32/f16/bf16).
pub trait LmBackend:
    attention::AttentionBackend + cross_entropy::CrossEntropyBackend + crate::quant::QuantOps
{
}

impl<B> LmBackend for B where
    B: attention::AttentionBackend + cross_entropy::CrossEntropyBackend + crate::quant::QuantOps
{
}

/// A device that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeviceError(pub String);

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
    pub fn parse(s: &str) -> Result<Self, DeviceError> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            _ => {
                if let Some(n) = s.strip_prefix("cuda:") {
                    n.parse().map(DeviceSpec::Cuda).map_err(|_| {
                        DeviceError(format!("bad device '{s}' (expected cpu, cuda or cuda:N)"))
                    })
                } else {
                    Err(DeviceError(format!(
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
    pub fn check_available(&self) -> Result<(), DeviceError> {
        match self {
            DeviceSpec::Cpu => Ok(()),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(_) => Ok(()),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => Err(DeviceError(
                "this peftlab was built without CUDA support; rebuild with \
                 `cargo build --release --features cuda` (needs no CUDA at build time; the \
                 CUDA driver and NVRTC are loaded at run time)"
                    .into(),
            )),
        }
    }
}
