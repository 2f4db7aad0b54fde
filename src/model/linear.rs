//! Linear layers with a frozen base weight and an optional adapter.
//!
//! The base weight keeps transformers' `[out, in]` layout and is a plain tensor, never a
//! parameter: the optimizer only ever sees adapter tensors. An adapter works on activations
//! (`y = Wx + b + Δ(x)`), it never rebuilds `W + BA` on the forward pass.
//!
//! The same file holds the interface adapters plug into (it and `Linear` refer to each
//! other). The network knows nothing about adapter methods: a [`Linear`] layer has one optional slot,
//! a `Box<dyn LinearAdapter<B>>`, and calls it with the per-forward [`AdapterCtx`] (training
//! mode, dropout generator, FLix-style row routing). Everything an adapter method needs from the
//! network goes through this file, and every method (`crate::adapter::*`) implements
//! [`LinearAdapter`]; the dependency points from adapters to the model, never back.
//!
//! Besides the forward pass, the slot offers what any caller may ask of the update on one layer
//! without knowing its method: its tensors ([`Param`], for the optimizer and for saving), the
//! dense weight with the update folded in ([`LinearAdapter::merged`]) and the update as a
//! low-rank pair ([`LinearAdapter::low_rank`]).

use crate::backend::LmBackend;
use crate::quant::QuantWeight;
use burn::tensor::{DType, Tensor, TensorData};
use std::cell::RefCell;
use std::collections::HashMap;

/// Weights of more elements than this are multiplied in blocks of output rows when they are
/// in half precision (see [`Linear::weight_forward`]).
pub const HALF_BLOCK_ELEMS: usize = 1 << 26;

/// `x Wᵀ`, in blocks of output rows of at most `block_elems` weight elements when `w` is in
/// half precision and larger than that.
pub fn matmul_t<B: LmBackend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    block_elems: usize,
) -> Tensor<B, 2> {
    let [out, inp] = w.dims();
    let half = matches!(w.dtype(), DType::BF16 | DType::F16);
    if !half || out * inp <= block_elems || inp == 0 {
        return x.matmul(w.transpose());
    }
    let rows = (block_elems / inp).max(1);
    let parts: Vec<Tensor<B, 2>> = (0..out)
        .step_by(rows)
        .map(|r| {
            let block = w.clone().slice([r..(r + rows).min(out), 0..inp]);
            x.clone().matmul(block.transpose())
        })
        .collect();
    Tensor::cat(parts, 1)
}

/// A linear layer `y = x Wᵀ + b` plus an optional adapter.
pub struct Linear<B: LmBackend> {
    /// Module path in transformers naming, e.g. `model.layers.0.self_attn.q_proj`.
    pub name: String,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Frozen weight: dense in its storage dtype (f32, bf16 or f16), or quantised (NF4/FP4/int8,
    /// dequantised on the fly; under autodiff its backward re-dequantises instead of keeping a
    /// dense copy). One representation, [`QuantWeight`], for both.
    pub weight: QuantWeight<B>,
    /// Frozen bias.
    pub bias: Option<Tensor<B, 1>>,
    /// The working slot: the layer of the adapter the model is working with (its method's
    /// hooks read and change this slot only). With one adapter, it is that adapter.
    pub adapter: Option<Box<dyn LinearAdapter<B>>>,
    /// Whether the working slot takes part in the forward pass (false while its adapter is
    /// inactive or merged into the weight).
    pub adapter_on: bool,
    /// Whether the working slot's tensors are trained.
    pub adapter_trains: bool,
    /// Where the working slot's adapter comes in the order updates are added (the model's
    /// adapter order, whichever adapter is in the working slot).
    pub adapter_order: usize,
    /// The layer's other named adapters.
    pub parked: Vec<Parked<B>>,
    /// The weight and bias from before a merge (`merge_adapter`), which `unmerge_adapter`
    /// puts back bit for bit.
    pub unmerged: Option<(QuantWeight<B>, Option<Tensor<B, 1>>)>,
}

/// A named adapter's layer that is not in the working slot.
pub struct Parked<B: LmBackend> {
    /// The adapter's name.
    pub name: String,
    /// Whether it takes part in the forward pass.
    pub on: bool,
    /// Whether its tensors are trained.
    pub trains: bool,
    /// Where it comes in the order updates are added.
    pub order: usize,
    /// Its layer.
    pub adapter: Box<dyn LinearAdapter<B>>,
}

impl<B: LmBackend> Linear<B> {
    /// A dense layer from an `[out, in]` weight.
    pub fn dense(name: String, weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Self {
        let [out_features, in_features] = weight.dims();
        Self::new(
            name,
            in_features,
            out_features,
            QuantWeight::dense(weight),
            bias,
        )
    }

    /// A layer without adapters from its frozen weight (dense or quantised) of `[out, in]`.
    pub fn new(
        name: String,
        in_features: usize,
        out_features: usize,
        weight: QuantWeight<B>,
        bias: Option<Tensor<B, 1>>,
    ) -> Self {
        Linear {
            name,
            in_features,
            out_features,
            weight,
            bias,
            adapter: None,
            adapter_on: true,
            adapter_trains: true,
            adapter_order: 0,
            parked: Vec::new(),
            unmerged: None,
        }
    }

    /// The base weight as a dense `[out, in]` tensor in its storage dtype.
    pub fn dense_weight(&self) -> Tensor<B, 2> {
        match self.weight.as_dense() {
            Some(w) => w.clone(),
            None => self.weight.dequantize(),
        }
    }

    /// `x Wᵀ` (no bias, no adapter); `x` is `[N, in]`. A very large half-precision weight (an
    /// output head of a big vocabulary) is multiplied in blocks of output rows: a backend that
    /// computes half-precision products by widening its operands (the CPU's) then widens one
    /// block at a time instead of the whole weight, so the transient memory stays bounded
    /// (2 GB for Llama-3.1-8B's head otherwise). The blocks are views of the weight; the
    /// result is the same product.
    pub fn weight_forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.weight.as_dense() {
            Some(w) => {
                let w = w.clone().cast(x.dtype());
                matmul_t(x, w, HALF_BLOCK_ELEMS)
            }
            None => self.weight.forward(x),
        }
    }

    /// The bias in the dtype of `like`.
    pub fn bias_like(&self, bias: &Tensor<B, 1>, like: &Tensor<B, 2>) -> Tensor<B, 1> {
        bias.clone().cast(like.dtype())
    }

    /// `x Wᵀ + b` without the adapter; `x` is `[N, in]`.
    pub fn base_forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = self.weight_forward(x);
        match &self.bias {
            Some(b) => {
                let b = self.bias_like(b, &y);
                y + b.unsqueeze_dim(0)
            }
            None => y,
        }
    }

    /// The full forward pass: the base plus every active adapter's update. One active adapter
    /// computes its own output (as before named adapters existed); several add their updates
    /// to one base output, as PEFT does (`result = base(x); result += Δₐ(x)` per active
    /// adapter).
    pub fn forward(&self, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let working = self
            .adapter
            .as_ref()
            .filter(|_| self.adapter_on)
            .map(|a| (self.adapter_order, a));
        let parked = self
            .parked
            .iter()
            .filter(|p| p.on)
            .map(|p| (p.order, &p.adapter));
        let mut active: Vec<_> = working.into_iter().chain(parked).collect();
        match active.len() {
            0 => self.base_forward(x),
            1 => active[0].1.forward(self, x, ctx),
            _ => {
                // A fixed order (the model's), so that the sum does not depend on which
                // adapter sits in the working slot.
                active.sort_by_key(|(order, _)| *order);
                let base = self.base_forward(x.clone());
                let mut y = base.clone();
                for (_, a) in active {
                    y = y + a.delta(self, x.clone(), ctx, &base);
                }
                y
            }
        }
    }

    /// The layers of every adapter on this layer, the working slot first.
    pub fn all_adapters(&self) -> impl Iterator<Item = &dyn LinearAdapter<B>> {
        self.adapter
            .as_deref()
            .into_iter()
            .chain(self.parked.iter().map(|p| &*p.adapter))
    }

    /// Whether any adapter is on this layer.
    pub fn has_adapter(&self) -> bool {
        self.adapter.is_some() || !self.parked.is_empty()
    }

    /// Bytes the frozen weight occupies (quantised or dense).
    pub fn weight_bytes(&self) -> usize {
        self.weight.bytes()
    }

    /// Number of base parameters (weight and bias).
    pub fn num_params(&self) -> usize {
        self.in_features * self.out_features + self.bias.as_ref().map_or(0, |_| self.out_features)
    }
}

/// A tensor of an adapter, with the key suffix and shape PEFT saves it under.
pub struct Param<B: LmBackend> {
    /// Key suffix after the module path, e.g. `lora_A.weight` or `lora_magnitude_vector`.
    pub key: String,
    /// The value, stored 2-D internally.
    pub value: Tensor<B, 2>,
    /// The shape in PEFT files (e.g. `[out]` for a DoRA magnitude stored as `[1, out]`).
    pub saved_shape: Vec<usize>,
    /// Whether the optimizer updates it.
    pub trainable: bool,
}

impl<B: LmBackend> Param<B> {
    /// A trainable parameter from host values of `shape2d`, saved as `saved_shape`.
    pub fn new(
        key: &str,
        data: Vec<f32>,
        shape2d: [usize; 2],
        saved_shape: Vec<usize>,
        device: &B::Device,
    ) -> Self {
        Param {
            key: key.to_string(),
            value: Tensor::from_data(TensorData::new(data, shape2d), device),
            saved_shape,
            trainable: true,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.value.dims().iter().product()
    }

    /// The value without any autodiff graph (for inference and bookkeeping).
    pub fn get(&self) -> Tensor<B, 2> {
        self.value.clone()
    }
}

/// Which rows of the flattened batch a routed part of an adapter applies to.
#[derive(Clone)]
pub enum RowMask<B: LmBackend> {
    /// Active (or not) for every row.
    All(bool),
    /// Active where the `[N, 1]` mask is 1.
    Rows(Tensor<B, 2>),
}

/// Per-forward state the adapters need: training mode, the dropout generator and row routing.
pub struct AdapterCtx<B: LmBackend> {
    /// Whether this is a training forward pass (enables dropout).
    pub train: bool,
    /// Generator for dropout masks (ChaCha8, seeded by the trainer).
    pub rng: Option<RefCell<crate::rng::Rng>>,
    /// Routing (FLix): `"feature=value"` → row mask. Missing keys fall back to the adapter's
    /// own selection.
    pub routing: HashMap<String, RowMask<B>>,
}

impl<B: LmBackend> AdapterCtx<B> {
    /// Inference context: no dropout, no routing.
    pub fn eval() -> Self {
        AdapterCtx {
            train: false,
            rng: None,
            routing: HashMap::new(),
        }
    }

    /// Training context with a dropout generator.
    pub fn train(rng: crate::rng::Rng) -> Self {
        AdapterCtx {
            train: true,
            rng: Some(RefCell::new(rng)),
            routing: HashMap::new(),
        }
    }
}

/// A request the update on a layer cannot serve (e.g. a low-rank form of DoRA), with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// An update written as `Δ = scale · B A` (`A: [r, in]`, `B: [out, r]`).
pub struct LowRank<B: LmBackend> {
    /// `[r, in]`.
    pub a: Tensor<B, 2>,
    /// `[out, r]`.
    pub b: Tensor<B, 2>,
    /// Multiplier of `B A`.
    pub scale: f64,
}

/// The update one adapter method applies to one linear layer: what a [`Linear`]'s slot holds.
pub trait LinearAdapter<B: LmBackend> {
    /// Computes the layer output with the update applied (`layer` gives the frozen base).
    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2>;
    /// The adapter's tensors (trainable and frozen-but-saved).
    fn params(&self) -> Vec<&Param<B>>;
    /// Mutable access to the tensors.
    fn params_mut(&mut self) -> Vec<&mut Param<B>>;
    /// The dense weight `[out, in]` and bias with the update folded in.
    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), Unsupported>;
    /// The update as low-rank factors, when it is one.
    fn low_rank(&self, layer: &Linear<B>) -> Result<LowRank<B>, Unsupported>;

    /// The update alone, `Δ(x)`, for adding the updates of several active adapters on one layer;
    /// `base` is `x Wᵀ + b`, already computed. The default subtracts the base from
    /// [`LinearAdapter::forward`], which is exact for every update that adds to the base
    /// output (LoRA, DoRA, VeRA, AdaLoRA, FLix); a method that can compute its update directly
    /// overrides it.
    fn delta(
        &self,
        layer: &Linear<B>,
        x: Tensor<B, 2>,
        ctx: &AdapterCtx<B>,
        base: &Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        self.forward(layer, x, ctx) - base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::matmul_t;
    use crate::backend::Cpu;
    use burn::tensor::{DType, Tensor, TensorData};

    #[test]
    fn blocked_half_products_equal_the_whole_product() {
        let dev = Default::default();
        let (n, out, inp) = (3, 37, 16);
        let v = |len: usize, k: f32| (0..len).map(|i| (i as f32 * k).sin()).collect::<Vec<_>>();
        for dt in [DType::BF16, DType::F16] {
            let x =
                Tensor::<Cpu, 2>::from_data(TensorData::new(v(n * inp, 0.7), [n, inp]), (&dev, dt));
            let w = Tensor::<Cpu, 2>::from_data(
                TensorData::new(v(out * inp, 0.3), [out, inp]),
                (&dev, dt),
            );
            let whole = x.clone().matmul(w.clone().transpose());
            // Blocks of 5 rows (80 elements): 8 blocks, the last one of 2 rows.
            let blocked = matmul_t(x.clone(), w.clone(), 5 * inp);
            assert_eq!(blocked.dims(), [n, out]);
            // The same dot products; a CPU may order a block's accumulation differently from the
            // whole product's, so allow one rounding of the format (bf16: 2⁻⁸, f16: 2⁻¹¹ relative).
            let ulp = if dt == DType::BF16 {
                2f32.powi(-8)
            } else {
                2f32.powi(-11)
            };
            let a = whole.cast(DType::F32).into_data().to_vec::<f32>().unwrap();
            let b = blocked
                .cast(DType::F32)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            for (p, q) in a.iter().zip(&b) {
                assert!(
                    (p - q).abs() <= ulp * p.abs().max(q.abs()),
                    "{dt:?}: {p} vs {q}"
                );
            }
        }
        // f32 weights are never split.
        let x = Tensor::<Cpu, 2>::from_data(TensorData::new(v(n * inp, 0.7), [n, inp]), &dev);
        let w = Tensor::<Cpu, 2>::from_data(TensorData::new(v(out * inp, 0.3), [out, inp]), &dev);
        let y = matmul_t(x.clone(), w.clone(), 1);
        assert_eq!(
            y.into_data().as_bytes(),
            x.matmul(w.transpose()).into_data().as_bytes()
        );
    }
}
