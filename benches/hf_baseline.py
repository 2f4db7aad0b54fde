"""PyTorch + transformers + PEFT baseline for `peftlab bench` (same shapes, same measurements).

Usage (CPU, matching peftlab's thread count):
    python benches/hf_baseline.py --config small --threads 2
    python benches/hf_baseline.py --model /data/llama-3.2-1b-bf16 --dtype bf16 --threads 2   # a checkpoint
    python benches/hf_baseline.py --config small --quant nf4 --device cuda   # bitsandbytes NF4

Reports, like `peftlab bench all`: forward (logits of batch×seq), score (summed log-probs of the
second half of each row), generate (greedy new tokens after row 0), train (one LoRA r=8
all-linear AdamW step on batch×seq with labels = inputs); the median of `--iters` timed runs
after one warm-up, in tokens per second.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {
    "small": (256, 688, 4, 8, 4, 32000),
    "medium": (512, 1408, 4, 8, 8, 32000),
    "smollm2-135m": (576, 1536, 30, 9, 3, 49152),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 128256),
    "llama-3.1-8b": (4096, 14336, 32, 32, 8, 128256),
}


def build(name, dtype, device, quant):
    h, i, l, heads, kv, v = PRESETS[name]
    cfg = LlamaConfig(hidden_size=h, intermediate_size=i, num_hidden_layers=l, num_attention_heads=heads,
                      num_key_value_heads=kv, vocab_size=v, rms_norm_eps=1e-5, rope_theta=10000.0,
                      max_position_embeddings=4096, tie_word_embeddings=False, attn_implementation="eager")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(dtype)
    if quant == "nf4":
        import bitsandbytes as bnb  # noqa: F401
        from transformers import BitsAndBytesConfig
        import tempfile
        d = tempfile.mkdtemp()
        model.save_pretrained(d)
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=dtype)
        model = LlamaForCausalLM.from_pretrained(d, quantization_config=q, torch_dtype=dtype, device_map=device)
    return model.to(device)


def load(path, dtype, device, quant):
    """A checkpoint directory (as `peftlab bench --model`), timed, with the peak RSS after loading."""
    import resource
    from transformers import AutoModelForCausalLM
    kw = {}
    if quant == "nf4":
        from transformers import BitsAndBytesConfig
        kw["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                       bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
        kw["device_map"] = device
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="eager", **kw)
    if quant != "nf4":
        model = model.to(device)
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return model, seconds, rss


def timed(fn, iters, device):
    out = []
    for k in range(iters + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if k > 0:
            out.append(time.perf_counter() - t)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="small")
    ap.add_argument("--model", default=None, help="a checkpoint directory instead of random weights")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--quant", default="none")
    ap.add_argument("--only", default="forward,score,generate,train")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
    loaded = {}
    if a.model:
        model, loaded["load_seconds"], loaded["load_peak_rss_bytes"] = load(a.model, dtype, a.device, a.quant)
    else:
        model = build(a.config, dtype, a.device, a.quant)
    v = model.config.vocab_size
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, v, (a.batch, a.seq), generator=g).to(a.device)
    nparams = sum(p.numel() for p in model.parameters())
    res = {"config": a.model or a.config, "params": nparams, "device": a.device, "threads": a.threads,
           "quant": a.quant, **loaded}
    model.eval()
    todo = a.only.split(",")
    if "forward" in todo:
        with torch.no_grad():
            s = timed(lambda: model(ids).logits, a.iters, a.device)
        res["forward_tokens_per_s"] = a.batch * a.seq / s

    if "score" in todo:
        half = a.seq // 2

        def score():
            with torch.no_grad():
                lp = torch.log_softmax(model(ids[:, :-1]).logits[:, half - 1:].float(), -1)
                return lp.gather(-1, ids[:, half:].unsqueeze(-1)).sum()
        s = timed(score, a.iters, a.device)
        res["score_tokens_per_s"] = a.batch * a.seq / s
    if "generate" in todo:
        def gen():
            with torch.no_grad():
                model.generate(ids[:1], max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=False,
                               pad_token_id=0)
        s = timed(gen, a.iters, a.device)
        res["generate_tokens_per_s"] = a.new_tokens / s
    if "train" in todo:
        from peft import LoraConfig, get_peft_model
        pm = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=2 * a.rank, target_modules="all-linear"))
        pm.train()
        opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)

        def step():
            out = pm(input_ids=ids, labels=ids)
            out.loss.backward()
            opt.step()
            opt.zero_grad()
        if a.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        s = timed(step, a.iters, a.device)
        res["train_tokens_per_s"] = a.batch * a.seq / s
        if a.device.startswith("cuda"):
            res["train_peak_bytes"] = torch.cuda.max_memory_allocated()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
