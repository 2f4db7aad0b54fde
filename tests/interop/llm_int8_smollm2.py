"""Compare peftlab's LLM.int8 logits on SmolLM2 with transformers + bitsandbytes.

    python tests/interop/llm_int8_smollm2.py /tmp/llm-int8/peftlab_logits.safetensors [model.gguf]

Needs torch, transformers, accelerate, gguf and bitsandbytes (0.50) from PyPI. Loads the GGUF in
transformers (float32), checks the unquantised logits against peftlab's "none", replaces every
linear layer of the decoder blocks by Linear8bitLt(threshold=6.0) in eval mode (MatMul8bitLt,
LLM.int8), and prints the distance to peftlab's "int8" logits next to bitsandbytes' own
sensitivity: the change of its logits when the input embeddings move by 1e-6 or 1e-5 relative.
LLM.int8 is discontinuous (a rounding or an outlier decision flips), and on SmolLM2 a residual
stream of ~22,000 makes that visible: both numbers are of the same order (README).
"""
import os
import sys

import torch
import bitsandbytes as bnb
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

torch.set_num_threads(2)
ref = load_file(sys.argv[1])
gguf = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser(
    "~/.cache/peftlab/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
ids = ref["ids"].round().long().tolist()
m = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf),
                                         dtype=torch.float32).eval()
x = torch.tensor([ids])
with torch.no_grad():
    l0 = m(x).logits[0]
print(f"none: max |peftlab - transformers| = {(ref['none'] - l0).abs().max().item():.3g}"
      f" (logits up to {l0.abs().max().item():.1f})")
for layer in m.model.layers:
    for parent in (layer.self_attn, layer.mlp):
        for name, lin in list(parent.named_children()):
            if isinstance(lin, torch.nn.Linear):
                q = bnb.nn.Linear8bitLt(lin.in_features, lin.out_features, bias=False,
                                        has_fp16_weights=False, threshold=6.0)
                w = bnb.nn.Int8Params(lin.weight.data.clone(), requires_grad=False, has_fp16_weights=False)
                q.weight = w._quantize("cpu")
                setattr(parent, name, q.eval())
emb = m.model.embed_tokens(x).detach()
with torch.no_grad():
    l8 = m(inputs_embeds=emb).logits[0]
    d = (ref["int8"] - l8).abs()
    print(f"int8: |peftlab - bitsandbytes| max {d.max().item():.3g}, mean {d.mean().item():.3g}; "
          f"argmax agreement {(ref['int8'].argmax(-1) == l8.argmax(-1)).float().mean().item():.3f}")
    for eps in (1e-6, 1e-5):
        for seed in range(3):
            g = torch.Generator().manual_seed(seed)
            b = m(inputs_embeds=emb * (1 + eps * torch.randn(emb.shape, generator=g))).logits[0]
            e = (b - l8).abs()
            print(f"bitsandbytes vs itself, embeddings x (1 + {eps:g} N(0,1)), seed {seed}: "
                  f"max {e.max().item():.3g}, mean {e.mean().item():.3g}")
