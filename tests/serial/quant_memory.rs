//! Memory win of the quantised linear layer's custom backward (peftlab::quant::LmBackend for
//! Autodiff): one forward + backward through 4 stacked 512x1408 / 1408x512 NF4 linears must not
//! keep the dequantised dense weights alive until backward, unlike a plain
//! `x.matmul(dequantize(W).transpose())`, where burn-autodiff's matmul saves the dense right-hand
//! side of every layer. Peak heap bytes are counted by a global allocator in this test binary
//! (Flex allocates through it), so this file holds a single test, and it holds [`crate::SERIAL`]
//! so that no other test of the binary allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use peftlab::quant::{QuantConfig, QuantKind, QuantWeight};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn record_alloc(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::SeqCst) + size;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call forwards to the system allocator with the caller's layout unchanged; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            record_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            record_alloc(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
            record_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type AD = Autodiff<Flex>;

fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = ((i + seed) * 2_654_435_761) % (1u64 << 32);
            ((h as f64 / 4_294_967_296.0) as f32 - 0.5) * scale
        })
        .collect()
}

/// Peak heap bytes above the level at entry while running `step`.
fn peak_during(step: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    step();
    PEAK.load(Ordering::SeqCst) - base
}

#[test]
fn custom_backward_does_not_keep_dense_weights() {
    let _g = crate::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let nf4 = QuantConfig::new(QuantKind::Nf4).with_double_quant(true);
    let shapes = [[1408usize, 512], [512, 1408], [1408, 512], [512, 1408]];
    let layers: Vec<QuantWeight<AD>> = shapes
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            QuantWeight::quantize(&values(s[0] * s[1], i as u64, 0.05), s, &nf4, &device)
        })
        .collect::<Result<_, _>>()
        .unwrap();
    let dense_weight_bytes = 512 * 1408 * 4;
    let xdata = values(16 * 512, 99, 2.0);

    let step = |quantised: bool| {
        let x = Tensor::<AD, 2>::from_data(TensorData::new(xdata.clone(), [16, 512]), &device)
            .require_grad();
        let mut h = x.clone();
        for w in &layers {
            h = if quantised {
                w.forward(h)
            } else {
                h.matmul(w.dequantize().transpose())
            };
        }
        let grads = h.sum().backward();
        let g = x.grad(&grads).unwrap();
        assert_eq!(g.dims(), [16, 512]);
    };
    // Warm up (thread pools, lazily built tables), then measure each path.
    step(true);
    step(false);
    let quantised = peak_during(|| step(true));
    let dense = peak_during(|| step(false));
    println!(
        "peak heap above baseline, forward+backward of 4 NF4 linears 512x1408: \
         custom backward {:.2} MiB, dense matmul {:.2} MiB (one dense weight = {:.2} MiB)",
        quantised as f64 / 1048576.0,
        dense as f64 / 1048576.0,
        dense_weight_bytes as f64 / 1048576.0
    );
    // The dense path holds all four dequantised weights at the start of backward; the custom
    // backward holds at most one (plus its transpose product) at a time.
    assert!(dense >= 4 * dense_weight_bytes, "dense peak {dense}");
    assert!(
        quantised + 2 * dense_weight_bytes <= dense,
        "custom backward peak {quantised} vs dense {dense}"
    );
}
