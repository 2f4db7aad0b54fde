"""Writes a random-weight Hugging Face checkpoint of a real model's shape, for
`peftlab bench --model DIR` and `benches/hf_baseline.py --model DIR`.

    python benches/make_checkpoint.py --shape llama-3.2-1b --dtype bf16 --out /data/llama-3.2-1b-bf16
    python benches/make_checkpoint.py --shape llama-3.1-8b --dtype bf16 --out /data/llama-3.1-8b-bf16
    python benches/make_checkpoint.py --shape qwen2.5-1.5b --dtype bf16 --out /data/qwen2.5-1.5b-bf16

The directory gets `config.json` with the real model's shape, RoPE and tying; the weights as
safetensors shards of at most `--shard-gb` GB with `model.safetensors.index.json`, every matrix
N(0, 0.02²) and every norm weight 1 (torch, seeded); and a word-level `tokenizer.json` of the
vocabulary size (tokens `t0`, `t1`, ...), so both programs load and tokenise it. Tensors are made
one at a time and each shard is written when full, so memory stays near one shard.
Needs torch and safetensors (PyPI).
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

SHAPES = {
    # hidden, intermediate, layers, heads, kv heads, vocab, tied, arch, extra config
    "small": (256, 688, 4, 8, 4, 32000, False, "llama", {}),
    "smollm2-135m": (576, 1536, 30, 9, 3, 49152, True, "llama", {"rope_theta": 100000.0}),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 128256, True, "llama", {
        "rope_theta": 500000.0, "max_position_embeddings": 131072,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}),
    "llama-3.1-8b": (4096, 14336, 32, 32, 8, 128256, False, "llama", {
        "rope_theta": 500000.0, "max_position_embeddings": 131072,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}),
    "qwen2.5-1.5b": (1536, 8960, 28, 12, 2, 151936, True, "qwen2", {
        "rope_theta": 1000000.0, "max_position_embeddings": 32768}),
}

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def tensors(shape):
    """(name, shape, is_norm) of every tensor, in the order transformers lists them."""
    h, i, n, heads, kv, v, tied, arch, _ = shape
    hd = h // heads
    out = [("model.embed_tokens.weight", (v, h), False)]
    for l in range(n):
        p = f"model.layers.{l}."
        out.append((p + "input_layernorm.weight", (h,), True))
        for name, rows in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
            out.append((p + f"self_attn.{name}.weight", (rows, h), False))
            if arch == "qwen2":
                out.append((p + f"self_attn.{name}.bias", (rows,), False))
        out.append((p + "self_attn.o_proj.weight", (h, heads * hd), False))
        out.append((p + "post_attention_layernorm.weight", (h,), True))
        out.append((p + "mlp.gate_proj.weight", (i, h), False))
        out.append((p + "mlp.up_proj.weight", (i, h), False))
        out.append((p + "mlp.down_proj.weight", (h, i), False))
    out.append(("model.norm.weight", (h,), True))
    if not tied:
        out.append(("lm_head.weight", (v, h), False))
    return out


def config(name, dtype):
    h, i, n, heads, kv, v, tied, arch, extra = SHAPES[name]
    cfg = {
        "architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen2ForCausalLM"],
        "model_type": arch, "hidden_size": h, "intermediate_size": i, "num_hidden_layers": n,
        "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": h // heads,
        "vocab_size": v, "tie_word_embeddings": tied, "rms_norm_eps": 1e-5 if arch == "llama" else 1e-6,
        "hidden_act": "silu", "max_position_embeddings": 8192, "rope_theta": 10000.0,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": {"f32": "float32", "bf16": "bfloat16",
                                                              "f16": "float16"}[dtype],
    }
    if arch == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False})
    cfg.update(extra)
    return cfg


def tokenizer(vocab):
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {f"t{k}": k for k in range(vocab)}, "unk_token": "t0"},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--shard-gb", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dt = DTYPES[a.dtype]
    gen = torch.Generator().manual_seed(a.seed)
    limit = int(a.shard_gb * 1e9)
    specs = tensors(SHAPES[a.shape])
    # Plan the shards first so that their names carry the total count, as transformers writes.
    plan, cur, size = [], [], 0
    for name, shape, norm in specs:
        nbytes = torch.Size(shape).numel() * dt.itemsize
        if cur and size + nbytes > limit:
            plan.append(cur)
            cur, size = [], 0
        cur.append((name, shape, norm))
        size += nbytes
    plan.append(cur)
    weight_map, total = {}, 0
    for k, shard in enumerate(plan):
        fname = f"model-{k + 1:05d}-of-{len(plan):05d}.safetensors"
        data = {}
        for name, shape, norm in shard:
            t = torch.ones(shape) if norm else torch.randn(shape, generator=gen) * 0.02
            data[name] = t.to(dt).contiguous()
            weight_map[name] = fname
            total += data[name].numel() * dt.itemsize
        save_file(data, os.path.join(a.out, fname), metadata={"format": "pt"})
        print(f"wrote {fname} ({len(shard)} tensors)", flush=True)
        del data
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config(a.shape, a.dtype), f, indent=1)
    with open(os.path.join(a.out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer(SHAPES[a.shape][5]), f)
    print(f"{a.out}: {a.shape} {a.dtype}, {total / 1e9:.2f} GB in {len(plan)} shard(s)")


if __name__ == "__main__":
    main()
