//! `torch.optim.AdamW` (single-tensor path) and `torch.nn.utils.clip_grad_norm_`.
//!
//! Per parameter, at step `t` (1-based): `p ← p·(1 − lr·wd)`; `m ← m + (1 − β₁)(g − m)`;
//! `v ← β₂ v + (1 − β₂) g²`; `p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)` — decoupled
//! weight decay on every adapter tensor, ε outside the square root. Clipping uses one norm over
//! all gradients, `g ← g · min(1, max_norm / (‖g‖ + 1e-6))`.
//!
//! [`AdamW`] is the one owner of the optimizer state: its hyper-parameters, the step count `t`
//! and both moments of every parameter, keyed by the parameter's stable name
//! (`<module>.<param key>`, as [`super::step::trainable`] names them). Adapter tensors hold only
//! their values.

use super::{StepOptions, TrainError};
use crate::adapter::Param;
use crate::backend::LmBackend;
use crate::model::to_host;
use crate::tensor::HostTensor;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use std::collections::BTreeMap;

/// Suffix of a parameter's first moment in checkpoint files (`<name>.exp_avg`).
pub const EXP_AVG: &str = ".exp_avg";
/// Suffix of a parameter's second moment in checkpoint files (`<name>.exp_avg_sq`).
pub const EXP_AVG_SQ: &str = ".exp_avg_sq";

/// The global L2 norm of `grads` (f64, computed from per-tensor sums of squares).
pub fn global_norm<B: LmBackend>(grads: &[Tensor<B, 2>]) -> f64 {
    grads
        .iter()
        .map(|g| {
            let s: f32 = g.clone().square().sum().into_scalar().elem();
            f64::from(s)
        })
        .sum::<f64>()
        .sqrt()
}

/// Clips in place to `max_norm` and returns the norm before clipping.
pub fn clip_global<B: LmBackend>(grads: &mut [Tensor<B, 2>], max_norm: f64) -> f64 {
    let total = global_norm(grads);
    let coef = (max_norm / (total + 1e-6)).min(1.0);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = g.clone().mul_scalar(coef);
        }
    }
    total
}

/// AdamW's hyper-parameters other than the learning rate (which the schedule sets per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// `(β₁, β₂)`.
    pub betas: [f64; 2],
    /// ε, added outside the square root.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl From<&StepOptions> for AdamWConfig {
    fn from(o: &StepOptions) -> Self {
        AdamWConfig {
            betas: o.betas,
            eps: o.eps,
            weight_decay: o.weight_decay,
        }
    }
}

/// Adam's running moments of one parameter.
struct Moments<B: LmBackend> {
    /// First moment (`exp_avg`).
    m: Tensor<B, 2>,
    /// Second moment (`exp_avg_sq`).
    v: Tensor<B, 2>,
}

/// `torch.optim.AdamW`: hyper-parameters, step count and per-parameter moments.
///
/// The step count is shared by all parameters (PyTorch keeps one per parameter, but every
/// parameter of an adapter steps together); a parameter that gets no gradient in a step is left
/// alone, moments included, as PyTorch skips a parameter whose `.grad` is `None`.
pub struct AdamW<B: LmBackend> {
    config: AdamWConfig,
    steps: usize,
    moments: BTreeMap<String, Moments<B>>,
}

impl<B: LmBackend> AdamW<B> {
    /// A fresh optimizer: no step taken, no moments.
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            config,
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> AdamWConfig {
        self.config
    }

    /// Replaces the hyper-parameters (each `train_step`/`train` call brings its own); the
    /// step count and moments are kept.
    pub fn set_config(&mut self, config: AdamWConfig) {
        self.config = config;
    }

    /// Optimizer steps taken so far (bias correction, AdaLoRA's schedule, `info()["steps"]`).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// One AdamW update at step `steps() + 1` with learning rate `lr`: `params` are the named
    /// trainable tensors and `grads` their gradients in the same order (`None`: the tensor got
    /// no gradient and is not touched). Every given gradient must have its parameter's shape.
    pub fn step(
        &mut self,
        params: &mut [(String, &mut Param<B>)],
        grads: &[Option<Tensor<B, 2>>],
        lr: f64,
    ) {
        let t = self.steps + 1;
        let AdamWConfig {
            betas: [b1, b2],
            eps,
            weight_decay,
        } = self.config;
        let bc1 = 1.0 - b1.powi(t as i32);
        let bc2 = 1.0 - b2.powi(t as i32);
        let step_size = lr / bc1;
        for ((name, p), g) in params.iter_mut().zip(grads) {
            let Some(g) = g else { continue };
            let (m, v) = match self.moments.remove(name.as_str()) {
                Some(s) => (s.m, s.v),
                None => (g.zeros_like(), g.zeros_like()),
            };
            let value = p.value.clone().detach().mul_scalar(1.0 - lr * weight_decay);
            let m = m.clone() + (g.clone() - m).mul_scalar(1.0 - b1);
            let v = v.mul_scalar(b2) + g.clone().square().mul_scalar(1.0 - b2);
            let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(eps);
            p.value = (value - (m.clone() / denom).mul_scalar(step_size)).detach();
            self.moments.insert(name.clone(), Moments { m, v });
        }
        self.steps = t;
    }

    /// Host copies of the moments for a checkpoint, keyed `<name>.exp_avg` and
    /// `<name>.exp_avg_sq` (f32, bit-exact).
    pub fn state_tensors(&self) -> Result<BTreeMap<String, HostTensor>, TrainError> {
        let mut out = BTreeMap::new();
        for (name, s) in &self.moments {
            for (suffix, t) in [(EXP_AVG, &s.m), (EXP_AVG_SQ, &s.v)] {
                let (shape, v) = to_host(t.clone())?;
                let h = HostTensor::f32(shape, v)?;
                out.insert(format!("{name}{suffix}"), h);
            }
        }
        Ok(out)
    }

    /// Restores the state a checkpoint recorded: `steps` and, for each of `params` (name and
    /// shape), its moments from `tensors` (written by [`AdamW::state_tensors`]; a parameter
    /// without moments there had not been updated yet). Every tensor is checked before anything
    /// changes, so an error leaves the optimizer as it was.
    pub fn load_state(
        &mut self,
        steps: usize,
        params: &[(String, [usize; 2])],
        tensors: &BTreeMap<String, HostTensor>,
        device: &B::Device,
    ) -> Result<(), TrainError> {
        let mut moments = BTreeMap::new();
        for (name, shape) in params {
            let get = |suffix: &str| -> Result<Option<Tensor<B, 2>>, TrainError> {
                let key = format!("{name}{suffix}");
                let Some(h) = tensors.get(&key) else {
                    return Ok(None);
                };
                if h.shape != shape[..] {
                    return Err(TrainError::Data(format!(
                        "checkpoint tensor {key} has shape {:?}, but the parameter has {shape:?}",
                        h.shape
                    )));
                }
                Ok(Some(Tensor::from_data(
                    TensorData::new(h.values_f32(), *shape),
                    device,
                )))
            };
            match (get(EXP_AVG)?, get(EXP_AVG_SQ)?) {
                (Some(m), Some(v)) => {
                    moments.insert(name.clone(), Moments { m, v });
                }
                (None, None) => {}
                _ => {
                    return Err(TrainError::Data(format!(
                        "checkpoint has only one of {name}{EXP_AVG} and {name}{EXP_AVG_SQ}"
                    )))
                }
            }
        }
        self.steps = steps;
        self.moments = moments;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::Flex;

    fn opts() -> AdamWConfig {
        AdamWConfig {
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }

    fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn values(p: &Param<B>) -> Vec<f32> {
        p.value.clone().into_data().to_vec().unwrap()
    }

    #[test]
    fn adamw_first_two_steps_match_hand_computation() {
        let dev = Default::default();
        let mut p = Param::<B>::new("w", vec![1.0, -2.0], [1, 2], vec![2], &dev);
        let mut opt = AdamW::<B>::new(opts());
        let g = t2(vec![0.5f32, -0.25], [1, 2]);
        opt.step(&mut [("w".into(), &mut p)], &[Some(g.clone())], 0.1);
        // Step 1: m̂ = g, v̂ = g², update = lr·sign(g) (up to ε): p = p(1 − 0.001) − 0.1·sign(g).
        let v = values(&p);
        assert!((v[0] - (1.0 * 0.999 - 0.1)).abs() < 1e-6, "{v:?}");
        assert!((v[1] - (-2.0 * 0.999 + 0.1)).abs() < 1e-6, "{v:?}");
        opt.step(&mut [("w".into(), &mut p)], &[Some(g)], 0.1);
        // Same gradient again: m̂ = g, v̂ = g² → the same step size.
        let v2 = values(&p);
        assert!((v2[0] - (v[0] * 0.999 - 0.1)).abs() < 1e-6);
        assert_eq!(opt.steps(), 2);
    }

    #[test]
    fn a_parameter_without_gradient_is_left_alone_and_moments_follow_names() {
        let dev = Default::default();
        let mut a = Param::<B>::new("a", vec![1.0], [1, 1], vec![1], &dev);
        let mut b = Param::<B>::new("b", vec![1.0], [1, 1], vec![1], &dev);
        let mut opt = AdamW::<B>::new(opts());
        let g = || Some(t2(vec![1.0], [1, 1]));
        opt.step(
            &mut [("a".into(), &mut a), ("b".into(), &mut b)],
            &[g(), None],
            0.1,
        );
        assert_eq!(values(&b), vec![1.0], "no gradient: no decay, no update");
        let st = opt.state_tensors().unwrap();
        let keys: Vec<&str> = st.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a.exp_avg", "a.exp_avg_sq"]);
        // m = (1 − β₁)·g = 0.1, v = (1 − β₂)·g² = 0.001.
        assert!((st["a.exp_avg"].values_f32()[0] - 0.1).abs() < 1e-7);
        assert!((st["a.exp_avg_sq"].values_f32()[0] - 0.001).abs() < 1e-9);
        // The same parameter listed in another order gets its own moments back by name.
        let before = values(&a)[0];
        opt.step(
            &mut [("b".into(), &mut b), ("a".into(), &mut a)],
            &[None, g()],
            0.1,
        );
        let mut fresh = AdamW::<B>::new(opts());
        let mut c = Param::<B>::new("a", vec![before], [1, 1], vec![1], &dev);
        fresh.step(&mut [("a".into(), &mut c)], &[g()], 0.1);
        assert_ne!(
            values(&a),
            values(&c),
            "step 2 with moments differs from a fresh step 1"
        );
    }

    #[test]
    fn state_round_trips_bit_exactly_and_bad_state_changes_nothing() {
        let dev = Default::default();
        let mut p = Param::<B>::new("w", vec![0.3, -0.7], [1, 2], vec![2], &dev);
        let mut q = Param::<B>::new("w", vec![0.3, -0.7], [1, 2], vec![2], &dev);
        let mut opt = AdamW::<B>::new(opts());
        let g1 = Some(t2(vec![0.25, 0.5], [1, 2]));
        let g2 = Some(t2(vec![-0.125, 0.75], [1, 2]));
        opt.step(
            &mut [("m.w".into(), &mut p)],
            std::slice::from_ref(&g1),
            0.01,
        );
        let saved = opt.state_tensors().unwrap();
        let mut resumed = AdamW::<B>::new(opts());
        let shapes = [("m.w".to_string(), [1, 2])];
        resumed.load_state(1, &shapes, &saved, &dev).unwrap();
        assert_eq!(resumed.steps(), 1);
        q.value = p.value.clone();
        opt.step(
            &mut [("m.w".into(), &mut p)],
            std::slice::from_ref(&g2),
            0.01,
        );
        resumed.step(&mut [("m.w".into(), &mut q)], &[g2], 0.01);
        assert_eq!(values(&p), values(&q));
        assert_eq!(
            opt.state_tensors().unwrap()["m.w.exp_avg_sq"].values_f32(),
            resumed.state_tensors().unwrap()["m.w.exp_avg_sq"].values_f32()
        );
        // A moment of the wrong shape, or half a pair, is refused and the state is kept.
        let mut bad = saved.clone();
        bad.insert(
            "m.w.exp_avg".into(),
            HostTensor::f32(vec![2, 1], vec![0.0, 0.0]).unwrap(),
        );
        let e = resumed.load_state(7, &shapes, &bad, &dev).unwrap_err();
        assert!(
            e.to_string().contains("m.w.exp_avg has shape [2, 1]"),
            "{e}"
        );
        let mut half = saved;
        half.remove("m.w.exp_avg_sq");
        let e = resumed.load_state(7, &shapes, &half, &dev).unwrap_err();
        assert!(e.to_string().contains("only one of m.w.exp_avg"), "{e}");
        assert_eq!(resumed.steps(), 2);
        assert_eq!(resumed.state_tensors().unwrap().len(), 2);
    }

    #[test]
    fn clipping_uses_one_global_norm() {
        let mut g = vec![t2(vec![3.0f32], [1, 1]), t2(vec![4.0f32], [1, 1])];
        let n = clip_global(&mut g, 1.0);
        assert!((n - 5.0).abs() < 1e-9);
        let a: f32 = g[0].clone().into_scalar();
        assert!((a - 0.6).abs() < 1e-6);
    }
}
