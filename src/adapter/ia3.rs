//! IA³: infused adapter by inhibiting and amplifying inner activations (Liu et al. 2022,
//! arXiv 2205.05638).
//!
//! A learned vector rescales a layer (PEFT `ia3/layer.py`): for attention projections the
//! *output* is scaled, `y = (W x + b) ⊙ l` with `l: [out, 1]`; for feed-forward modules
//! (`feedforward_modules`, by default `down_proj`) the *input* is scaled, `y = W (x ⊙ l) + b`
//! with `l: [1, in]`. `l` starts at ones; saved as `ia3_l`.

use super::{AdapterCtx, AdapterError, LinearAdapter, LoraFactors, Param};
use crate::model::linear::Linear;
use crate::quant::QuantBackend;
use burn::tensor::Tensor;

/// IA³ on one linear layer.
pub struct Ia3Layer<B: QuantBackend> {
    /// `ia3_l`, stored `[1, out]` (or `[1, in]` for feed-forward modules).
    pub l: Param<B>,
    /// Whether the input (feed-forward) rather than the output is scaled.
    pub feedforward: bool,
}

impl<B: QuantBackend> Ia3Layer<B> {
    /// Ones-initialised scaling for a layer.
    pub fn new(layer: &Linear<B>, feedforward: bool, device: &B::Device) -> Self {
        let (n, saved) = if feedforward {
            (layer.in_features, vec![1, layer.in_features])
        } else {
            (layer.out_features, vec![layer.out_features, 1])
        };
        Ia3Layer {
            l: Param::new("ia3_l", vec![1.0; n], [1, n], saved, device),
            feedforward,
        }
    }
}

impl<B: QuantBackend> LinearAdapter<B> for Ia3Layer<B> {
    fn method(&self) -> &'static str {
        "ia3"
    }

    fn forward(&self, layer: &Linear<B>, x: Tensor<B, 2>, _ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let l = self.l.get();
        let l = if l.dtype() == x.dtype() {
            l
        } else {
            l.cast(x.dtype())
        };
        if self.feedforward {
            layer.base_forward(x * l)
        } else {
            layer.base_forward(x) * l
        }
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.l]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.l]
    }

    fn merged(
        &self,
        layer: &Linear<B>,
    ) -> Result<(Tensor<B, 2>, Option<Tensor<B, 1>>), AdapterError> {
        let w = layer.dense_weight();
        let l = self.l.get();
        if self.feedforward {
            Ok((w * l, layer.bias.clone()))
        } else {
            let bias = layer
                .bias
                .clone()
                .map(|b| b * l.clone().reshape([layer.out_features]));
            Ok((w * l.transpose(), bias))
        }
    }

    fn lora_factors(&self, _layer: &Linear<B>) -> Result<LoraFactors, AdapterError> {
        Err(AdapterError::Unsupported(
            "IA³ is not a low-rank update (it rescales whole rows/columns of W); merge it with \
             merge_adapter() instead of exporting a plain LoRA"
                .into(),
        ))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
