"""PEFT 0.21 loads every fixture adapter after a peftlab load -> save round trip, and the
round trip changes no adapter_config.json key but base_model_name_or_path (issue 17).

Usage (repository root): python tests/interop/check_round_trip.py OUT_DIR
where OUT_DIR is the --out of tests/interop/round_trip_adapters.rhai.
"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
ok = True
for name in ["adalora", "dora", "ia3", "lora", "lora_qv", "pissa", "rslora", "vera"]:
    base = AutoModelForCausalLM.from_pretrained("tests/fixtures/models/tiny-llama", torch_dtype=torch.float32)
    src = json.load(open(f"tests/fixtures/adapters/{name}/adapter_config.json"))
    out = json.load(open(f"{sys.argv[1]}/{name}/adapter_config.json"))
    diff = sorted(k for k in set(src) | set(out) if src.get(k) != out.get(k) and k != "base_model_name_or_path")
    try:
        PeftModel.from_pretrained(base, f"{sys.argv[1]}/{name}")
        res = "PEFT loads it"
    except Exception as e:
        res = f"PEFT FAILS: {e}"; ok = False
    print(f"{name:8} config keys changed: {diff or 'none'}; {res}")
sys.exit(0 if ok else 1)
