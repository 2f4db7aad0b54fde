//! Quantisation benchmark (issue 5): resident bytes of a 4-layer, 512-hidden Llama base for
//! f32 / bf16 / int8 / nf4 / nf4+dq, peak heap of one LoRA training step (f32 vs nf4, and nf4
//! without the custom backward), and dequantisation throughput of a 4096x4096 weight.
//!
//! Heap bytes come from a counting global allocator (Flex allocates through it). The Llama shapes
//! follow a Llama-2-style layer scaled to hidden 512: q,k,v,o 512x512; gate, up 1408x512; down
//! 512x1408; vocab 32000; untied embeddings and output head kept dense f32 (QLoRA quantises only
//! the linear layers of the blocks). The training-step model is a compact stand-in for the real
//! Llama (RMSNorm, causal 8-head attention without RoPE, SwiGLU MLP, LoRA r=8 on all seven
//! linears, cross-entropy, one SGD update of the adapters); what is measured is the memory of
//! the frozen base and its backward pass.
//!
//! Run: `cargo bench --bench quant` (criterion arguments after `--`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::{log_softmax, silu, softmax};
use burn::tensor::{FloatDType, Int, Tensor, TensorData};
use criterion::{Criterion, Throughput};
use peftlab::quant::{quantize_4bit, quantize_int8, QuantConfig, QuantKind, QuantWeight, Storage};
use rand_distr::{Distribution, Normal};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn record(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards every call to the system allocator unchanged; the counters are bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            record(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            record(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            record(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type AD = Autodiff<Flex>;

const HIDDEN: usize = 512;
const INTER: usize = 1408;
const LAYERS: usize = 4;
const VOCAB: usize = 32000;
const HEADS: usize = 8;
const RANK: usize = 8;

fn mib(b: usize) -> f64 {
    b as f64 / 1048576.0
}

fn normal(n: usize, seed: u64, std: f32) -> Vec<f32> {
    let mut rng = peftlab::rng::derived(seed, "bench-quant");
    let dist = Normal::new(0.0f32, std).unwrap_or_else(|e| panic!("normal: {e}"));
    (0..n).map(|_| dist.sample(&mut rng)).collect()
}

/// The seven linear shapes of one block, `[out, in]`.
fn block_shapes() -> [[usize; 2]; 7] {
    let (h, i) = (HIDDEN, INTER);
    [[h, h], [h, h], [h, h], [h, h], [i, h], [i, h], [h, i]]
}

/// Storage variants of the base: (label, quantisation, dense dtype).
fn variants() -> Vec<(&'static str, QuantConfig, FloatDType)> {
    let nf4 = QuantConfig::new(QuantKind::Nf4);
    vec![
        ("f32", QuantConfig::new(QuantKind::None), FloatDType::F32),
        ("bf16", QuantConfig::new(QuantKind::None), FloatDType::BF16),
        ("int8", QuantConfig::new(QuantKind::Int8), FloatDType::F32),
        ("nf4", nf4, FloatDType::F32),
        ("nf4+dq", nf4.with_double_quant(true), FloatDType::F32),
    ]
}

struct Block {
    norm1: Tensor<AD, 1>,
    norm2: Tensor<AD, 1>,
    /// q, k, v, o, gate, up, down.
    lin: Vec<QuantWeight<AD>>,
}

struct Base {
    embed: Tensor<AD, 2>,
    blocks: Vec<Block>,
    norm: Tensor<AD, 1>,
    head: Tensor<AD, 2>,
}

fn dense(data: Vec<f32>, shape: [usize; 2]) -> Tensor<AD, 2> {
    Tensor::from_data(TensorData::new(data, shape), &Default::default())
}

fn ones(n: usize) -> Tensor<AD, 1> {
    Tensor::from_data(TensorData::new(vec![1.0f32; n], [n]), &Default::default())
}

/// Builds the base one tensor at a time (each f32 weight is dropped after quantisation).
fn build_base(cfg: &QuantConfig, dtype: FloatDType) -> Base {
    let device = Default::default();
    let embed = dense(normal(VOCAB * HIDDEN, 1, 0.02), [VOCAB, HIDDEN]);
    let head = dense(normal(VOCAB * HIDDEN, 2, 0.02), [VOCAB, HIDDEN]);
    let blocks = (0..LAYERS)
        .map(|l| Block {
            norm1: ones(HIDDEN),
            norm2: ones(HIDDEN),
            lin: block_shapes()
                .iter()
                .enumerate()
                .map(|(j, &s)| {
                    let w = normal(s[0] * s[1], 100 + 10 * l as u64 + j as u64, 0.02);
                    QuantWeight::quantize_with(&w, s, cfg, &device, Storage::Host, dtype)
                        .unwrap_or_else(|e| panic!("quantise: {e}"))
                })
                .collect(),
        })
        .collect();
    Base {
        embed,
        blocks,
        norm: ones(HIDDEN),
        head,
    }
}

fn resident_report() {
    println!("\n== Resident base bytes: 4-layer Llama, hidden 512, inter 1408, vocab 32000 ==");
    println!(
        "{:<8} {:>14} {:>10} {:>16} {:>16}",
        "base", "linear bytes", "bits/par", "model bytes", "measured heap"
    );
    let linear_params: usize = LAYERS * block_shapes().iter().map(|s| s[0] * s[1]).sum::<usize>();
    let other_bytes = 4 * (2 * VOCAB * HIDDEN + (2 * LAYERS + 1) * HIDDEN);
    for (label, cfg, dtype) in variants() {
        let before = CURRENT.load(Ordering::SeqCst);
        let base = build_base(&cfg, dtype);
        let measured = CURRENT.load(Ordering::SeqCst) - before;
        let lin: usize = base
            .blocks
            .iter()
            .flat_map(|b| &b.lin)
            .map(|w| w.bytes())
            .sum();
        println!(
            "{:<8} {:>14} {:>10.3} {:>16} {:>16}",
            label,
            lin,
            8.0 * lin as f64 / linear_params as f64,
            lin + other_bytes,
            measured
        );
        drop(base);
    }
    println!(
        "(linear params {linear_params}; embeddings + head + norms stay f32: {other_bytes} bytes; \
         'measured heap' = allocator bytes held by the built base, incl. host-side tables)"
    );
}

struct Lora {
    a: Tensor<AD, 2>,
    b: Tensor<AD, 2>,
}

fn rms_norm(x: Tensor<AD, 3>, w: &Tensor<AD, 1>) -> Tensor<AD, 3> {
    let var = x.clone().powf_scalar(2.0).mean_dim(2);
    x * (var + 1e-5).sqrt().recip() * w.clone().unsqueeze()
}

/// `x W^T + s x A^T B^T` for `x` [n, in]; `plain` uses a dense matmul on the dequantised weight.
fn linear(x: Tensor<AD, 2>, w: &QuantWeight<AD>, l: &Lora, plain: bool) -> Tensor<AD, 2> {
    let base = if plain {
        x.clone().matmul(w.dequantize().transpose())
    } else {
        w.forward(x.clone())
    };
    base + x
        .matmul(l.a.clone().transpose())
        .matmul(l.b.clone().transpose())
        .mul_scalar(2.0)
}

/// One training step; returns the loss.
fn train_step(
    base: &Base,
    lora: &mut [Lora],
    ids: &[i64],
    batch: usize,
    seq: usize,
    plain: bool,
) -> f32 {
    let device = Default::default();
    let n = batch * seq;
    let idx = Tensor::<AD, 1, Int>::from_data(TensorData::new(ids.to_vec(), [n]), &device);
    let mut h = base
        .embed
        .clone()
        .select(0, idx)
        .reshape([batch, seq, HIDDEN]);
    let hd = HIDDEN / HEADS;
    let mask: Vec<f32> = (0..seq * seq)
        .map(|k| if k % seq > k / seq { -1e9 } else { 0.0 })
        .collect();
    let mask = Tensor::<AD, 2>::from_data(TensorData::new(mask, [seq, seq]), &device)
        .reshape([1, 1, seq, seq]);
    for (l, blk) in base.blocks.iter().enumerate() {
        let ad = &lora[l * 7..l * 7 + 7];
        let x = rms_norm(h.clone(), &blk.norm1).reshape([n, HIDDEN]);
        let split = |t: Tensor<AD, 2>| t.reshape([batch, seq, HEADS, hd]).swap_dims(1, 2);
        let q = split(linear(x.clone(), &blk.lin[0], &ad[0], plain));
        let k = split(linear(x.clone(), &blk.lin[1], &ad[1], plain));
        let v = split(linear(x, &blk.lin[2], &ad[2], plain));
        let att = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (hd as f32).sqrt())
            + mask.clone();
        let ctx = softmax(att, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([n, HIDDEN]);
        h = h + linear(ctx, &blk.lin[3], &ad[3], plain).reshape([batch, seq, HIDDEN]);
        let x = rms_norm(h.clone(), &blk.norm2).reshape([n, HIDDEN]);
        let g = silu(linear(x.clone(), &blk.lin[4], &ad[4], plain));
        let u = linear(x, &blk.lin[5], &ad[5], plain);
        h = h + linear(g * u, &blk.lin[6], &ad[6], plain).reshape([batch, seq, HIDDEN]);
    }
    let x = rms_norm(h, &base.norm).reshape([n, HIDDEN]);
    let logits = x.matmul(base.head.clone().transpose());
    let targets: Vec<i64> = (0..n).map(|i| ids[(i + 1) % n]).collect();
    let targets = Tensor::<AD, 1, Int>::from_data(TensorData::new(targets, [n]), &device);
    let loss = log_softmax(logits, 1)
        .gather(1, targets.reshape([n, 1]))
        .mean()
        .neg();
    let value = loss.clone().into_scalar();
    let grads = loss.backward();
    for l in lora.iter_mut() {
        for p in [&mut l.a, &mut l.b] {
            if let Some(g) = p.grad(&grads) {
                let updated = p.clone().inner() - g.mul_scalar(1e-2);
                *p = Tensor::from_inner(updated).require_grad();
            }
        }
    }
    value
}

fn training_report() {
    let (batch, seq) = (4, 64);
    println!("\n== Peak heap of one LoRA training step (batch {batch}, seq {seq}, r {RANK}) ==");
    println!(
        "{:<26} {:>12} {:>14} {:>14} {:>9}",
        "base", "base MiB", "step peak MiB", "total MiB", "loss"
    );
    let ids: Vec<i64> = (0..batch * seq)
        .map(|i| ((i * 7919 + 13) % VOCAB) as i64)
        .collect();
    let runs = [
        ("f32", QuantConfig::new(QuantKind::None), false),
        ("nf4", QuantConfig::new(QuantKind::Nf4), false),
        (
            "nf4+dq",
            QuantConfig::new(QuantKind::Nf4).with_double_quant(true),
            false,
        ),
        (
            "nf4, plain matmul backward",
            QuantConfig::new(QuantKind::Nf4),
            true,
        ),
    ];
    for (label, cfg, plain) in runs {
        let before = CURRENT.load(Ordering::SeqCst);
        let base = build_base(&cfg, FloatDType::F32);
        let mut lora: Vec<Lora> = (0..LAYERS)
            .flat_map(|_| block_shapes())
            .enumerate()
            .map(|(j, [o, i])| Lora {
                a: dense(normal(RANK * i, 1000 + j as u64, 0.02), [RANK, i]).require_grad(),
                b: dense(normal(o * RANK, 2000 + j as u64, 0.02), [o, RANK]).require_grad(),
            })
            .collect();
        // Warm-up step (thread pools, lazily built tables), then the measured step.
        train_step(&base, &mut lora, &ids, batch, seq, plain);
        let resident = CURRENT.load(Ordering::SeqCst);
        PEAK.store(resident, Ordering::SeqCst);
        let t = Instant::now();
        let loss = train_step(&base, &mut lora, &ids, batch, seq, plain);
        let secs = t.elapsed().as_secs_f64();
        let peak = PEAK.load(Ordering::SeqCst);
        println!(
            "{:<26} {:>12.2} {:>14.2} {:>14.2} {:>9.4}   ({secs:.2} s)",
            label,
            mib(resident - before),
            mib(peak - resident),
            mib(peak - before),
            loss
        );
        drop((base, lora));
    }
    println!("(base MiB = heap held by base + adapters; step peak = above that during the step)");
}

fn dequant_benches(c: &mut Criterion) {
    let n = 4096 * 4096;
    let w = normal(n, 7, 0.02);
    let nf4 = QuantConfig::new(QuantKind::Nf4);
    let q_nf4 = quantize_4bit(&w, &[4096, 4096], &nf4).unwrap_or_else(|e| panic!("{e}"));
    let q_dq = quantize_4bit(&w, &[4096, 4096], &nf4.with_double_quant(true))
        .unwrap_or_else(|e| panic!("{e}"));
    let q_i8 = quantize_int8(&w, &[4096, 4096]).unwrap_or_else(|e| panic!("{e}"));
    let device = Default::default();
    let dev_nf4 = QuantWeight::<Flex>::quantize_with(
        &w,
        [4096, 4096],
        &nf4,
        &device,
        Storage::Device,
        FloatDType::F32,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    drop(w);
    let mut out = vec![0.0f32; n];
    let mut group = c.benchmark_group("dequantize_4096x4096");
    group.throughput(Throughput::Bytes(4 * n as u64));
    group.sample_size(20);
    group.bench_function("nf4", |b| {
        b.iter(|| q_nf4.dequantize_into(black_box(&mut out)))
    });
    group.bench_function("nf4+dq", |b| {
        b.iter(|| q_dq.dequantize_into(black_box(&mut out)))
    });
    group.bench_function("int8", |b| {
        b.iter(|| q_i8.dequantize_into(black_box(&mut out)))
    });
    group.bench_function("nf4 flex tensor ops", |b| {
        b.iter(|| black_box(dev_nf4.dequantize()))
    });
    group.finish();

    // Plain timing summary in both units (criterion prints only one).
    println!(
        "\n== Dequantisation throughput, 4096x4096 (output f32, {} threads) ==",
        rayon::current_num_threads()
    );
    let time = |label: &str, f: &mut dyn FnMut()| {
        f();
        let reps = 20;
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "{label:<22} {:>8.2} ms  {:>7.2} GB/s  {:>7.3} Gelem/s",
            s * 1e3,
            4.0 * n as f64 / s / 1e9,
            n as f64 / s / 1e9
        );
    };
    time("nf4 (host kernel)", &mut || {
        drop(q_nf4.dequantize_into(black_box(&mut out)))
    });
    time("nf4+dq (host kernel)", &mut || {
        drop(q_dq.dequantize_into(black_box(&mut out)))
    });
    time("int8 (host kernel)", &mut || {
        drop(q_i8.dequantize_into(black_box(&mut out)))
    });
    time("nf4 (flex tensor ops)", &mut || {
        drop(black_box(dev_nf4.dequantize()))
    });
}

fn main() {
    resident_report();
    training_report();
    let mut c = Criterion::default().configure_from_args();
    dequant_benches(&mut c);
    c.final_summary();
}
