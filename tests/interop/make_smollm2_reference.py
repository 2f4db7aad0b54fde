#!/usr/bin/env python3
"""Reference values for SmolLM2-135M-Instruct (GGUF, Q4_1) from independent implementations.

Writes tests/fixtures/smollm2/reference.json and tests/fixtures/smollm2/tensors_sha256.json.

Independent implementations used:
- transformers' GGUF loading (AutoModelForCausalLM / AutoTokenizer .from_pretrained(dir,
  gguf_file=...)): its own reader + gguf-py dequantisation, its own Llama mapping and Q/K
  reverse permutation, float32 PyTorch forward pass on CPU;
- gguf-py's GGUFReader + gguf.quants.dequantize for the raw per-tensor checksums;
- the `tokenizers` Python library with SmolLM2's own pre-tokenizer (Digits(individual) +
  ByteLevel, as in the hub tokenizer.json and llama.cpp's "smollm" pre-type), built from the
  GGUF vocab/merges, to show where transformers' GGUF tokenizer (plain ByteLevel) would differ.

Run (model from scripts/get-smollm2.sh):
  /work/pyenv/bin/python tests/interop/make_smollm2_reference.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
Versions used: see the "provenance" entry written into reference.json.
"""
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
import tokenizers
import gguf
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "smollm2"

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "The quick brown fox jumps over the",
    "In 2024, the population of Tokyo was about",
]
CHAT = [{"role": "user", "content": "What is the capital of France?"}]

TOKENIZER_CASES = [
    "Hello world",
    "The year 2024 had 366 days.",
    "naïve café — 東京 🚀",
    "<|im_start|>user\nHi there!<|im_end|>\n",
    "  leading spaces and\ttabs\n\nnewlines  ",
    "don't I'll we've THEY'RE",
    "x=3.14159; y = 1,000,000",
    "<think>not special</think><|endoftext|>",
]


def default_path():
    if os.environ.get("PEFTLAB_SMOLLM2"):
        return Path(os.environ["PEFTLAB_SMOLLM2"])
    cache = Path(os.environ["PEFTLAB_CACHE"]) if os.environ.get("PEFTLAB_CACHE") else \
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "peftlab"
    return cache / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def sha256_f32(a):
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    return hashlib.sha256(a.astype("<f4").tobytes()).hexdigest()


def smollm_tokenizer(path):
    """SmolLM2's original pipeline rebuilt from the GGUF vocabulary with `tokenizers`."""
    r = gguf.GGUFReader(str(path))
    f = r.fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    merges = f["tokenizer.ggml.merges"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    bpe = tokenizers.models.BPE({t: i for i, t in enumerate(tokens)},
                                [tuple(m.split(" ")) for m in merges])
    tok = tokenizers.Tokenizer(bpe)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
        tokenizers.pre_tokenizers.Digits(individual_digits=True),
        tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = tokenizers.decoders.ByteLevel()
    tok.add_special_tokens([tokenizers.AddedToken(t, normalized=False, special=True)
                            for t, ty in zip(tokens, types) if ty == 3])
    return tok


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default_path()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    d, name = str(path.parent), path.name

    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    orig = smollm_tokenizer(path)
    tok_cases = []
    for s in TOKENIZER_CASES:
        ids_tf = tok(s, add_special_tokens=True)["input_ids"]
        ids_orig = orig.encode(s, add_special_tokens=True).ids
        tok_cases.append({"text": s, "ids": ids_orig, "transformers_gguf_ids": ids_tf,
                          "same": ids_tf == ids_orig,
                          "decoded": orig.decode(ids_orig, skip_special_tokens=False)})

    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    cfg = model.config
    config = {k: getattr(cfg, k, None) for k in [
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "rms_norm_eps", "vocab_size", "max_position_embeddings",
        "tie_word_embeddings", "bos_token_id", "eos_token_id", "head_dim"]}
    rp = getattr(cfg, "rope_parameters", None) or {}
    config["rope_theta"] = rp.get("rope_theta", getattr(cfg, "rope_theta", None))

    chat_text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    prompts = [{"kind": "plain", "text": p} for p in PROMPTS] + \
              [{"kind": "chat", "messages": CHAT, "text": chat_text}]
    results = []
    with torch.no_grad():
        for p in prompts:
            ids = tok(p["text"], add_special_tokens=True)["input_ids"]
            x = torch.tensor([ids])
            logits = model(x).logits[0, -1].float()
            top = torch.topk(logits, 5)
            gen = model.generate(x, max_new_tokens=20, do_sample=False,
                                 pad_token_id=tok.pad_token_id or 2)
            new = gen[0, len(ids):].tolist()
            results.append({
                **p, "ids": ids,
                "top5_ids": top.indices.tolist(),
                "top5_logits": [float(v) for v in top.values],
                "first8_logits": [float(v) for v in logits[:8]],
                "logits_mean": float(logits.mean()), "logits_std": float(logits.std()),
                "greedy_ids": new,
                "greedy_text": tok.decode(new, skip_special_tokens=False),
            })
            print(repr(p["text"][-40:]), "->", repr(results[-1]["greedy_text"]), file=sys.stderr)

    ref = {
        "provenance": {
            "file": name,
            "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "made_by": "tests/interop/make_smollm2_reference.py",
            "transformers": transformers.__version__, "torch": torch.__version__,
            "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0",
            "tokenizers": tokenizers.__version__, "numpy": np.__version__,
            "python": platform.python_version(),
            "notes": "logits: transformers GGUF load, torch float32, CPU; greedy via generate(do_sample=False); "
                     "tokenizer ids: SmolLM2 pipeline (Digits+ByteLevel) rebuilt from the GGUF with tokenizers; "
                     "transformers_gguf_ids: AutoTokenizer.from_pretrained(dir, gguf_file=...)",
        },
        "config": config,
        "chat_template": tok.chat_template,
        "tokenizer": tok_cases,
        "prompts": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")

    # per-tensor checksums: raw GGUF tensors via gguf-py, HF tensors via transformers
    r = gguf.GGUFReader(str(path))
    raw = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        raw[t.name] = {"type": t.tensor_type.name, "dims": [int(x) for x in t.shape],
                       "sha256": sha256_f32(a), "sum": float(np.sum(a, dtype=np.float64))}
    hf = {}
    for k, v in model.state_dict().items():
        if k == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        a = v.detach().float().numpy()
        hf[k] = {"shape": list(a.shape), "sha256": sha256_f32(a),
                 "sum": float(np.sum(a, dtype=np.float64))}
    def block(d):  # one tensor per line keeps the file short and diffable
        return "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "\n }"
    (OUT / "tensors_sha256.json").write_text(
        '{"provenance": ' + json.dumps(ref["provenance"]) + ',\n"gguf": ' + block(raw)
        + ',\n"hf": ' + block(hf) + "}\n")
    print(f"wrote {OUT}/reference.json and tensors_sha256.json", file=sys.stderr)


if __name__ == "__main__":
    main()
