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

/// Implements a backend-extension trait whose methods all have defaults (the tensor-op paths)
/// for the optional backends: `Cuda` (f32/f16/bf16) with the `cuda` feature and `LibTorch`
/// (f32/f16/bf16) with `tch`. `Flex` and `Autodiff` have their own impls beside each trait.
macro_rules! impl_defaults_for_optional_backends {
    ($tr:path) => {
        #[cfg(feature = "cuda")]
        impl $tr for burn::backend::Cuda<f32> {}
        #[cfg(feature = "cuda")]
        impl $tr for burn::backend::Cuda<half::f16> {}
        #[cfg(feature = "cuda")]
        impl $tr for burn::backend::Cuda<half::bf16> {}
        #[cfg(feature = "tch")]
        impl $tr for burn::backend::LibTorch<f32> {}
        #[cfg(feature = "tch")]
        impl $tr for burn::backend::LibTorch<half::f16> {}
        #[cfg(feature = "tch")]
        impl $tr for burn::backend::LibTorch<half::bf16> {}
    };
}
pub(crate) use impl_defaults_for_optional_backends;

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
