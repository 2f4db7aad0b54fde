"""Step 2 of the PEFT interop check (issue 4): do the adapters peftlab writes load in PEFT?

For every case directory written by make_peftlab_adapters.rhai, load tiny-llama with
transformers (float32, eager attention), attach the adapter with `PeftModel.from_pretrained`,
compute logits on the same token ids and compare them with the logits peftlab computed with the
same adapter (max |diff| over the non-padded positions, tolerance 1e-4); the config may hold only
keys that PEFT's config class declares (PEFT drops others with an "upgrade PEFT" warning), and
for `save_adapter` outputs PEFT's own `save_pretrained` of the loaded adapter must give the very
same tensors (keys, shapes, values) as peftlab's file. The `export_lora` outputs are also checked against what vLLM's LoRA loader accepts (only `lora_A.weight` /
`lora_B.weight` tensors, no DoRA, no rsLoRA, no `modules_to_save`, `bias: none`, empty
rank/alpha patterns, and one rank `r` for every module).

Run from the repository root:

    cargo build
    target/debug/peftlab run tests/interop/make_peftlab_adapters.rhai --out /tmp/peftlab-interop
    /work/pyenv/bin/python tests/interop/check_peft_load.py /tmp/peftlab-interop

Needs torch, transformers, peft and safetensors from PyPI (tested with torch 2.15,
transformers 5.23, peft 0.21.2). Exits 1 when a comparison or a vLLM check fails.
"""

import argparse
import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path

import peft
import torch
import transformers
from peft import PeftModel
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()

TOL = 1e-4
# The logits must move at least this much from the base model's, or the comparison would not
# show that the adapter was applied at all.
MIN_MOVED = 1e-2
# save_adapter outputs that PEFT cannot load by design (peftlab's own adapter type).
PEFTLAB_ONLY = {"flix": "FLIX is peftlab's own type; PEFT has no FLIX tuner"}
LORA_KEY_SUFFIXES = (".lora_A.weight", ".lora_B.weight")


def load_base(base):
    return AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.float32, attn_implementation="eager"
    ).eval()


def padded(ids):
    """Right-padded input_ids (pad id 0) and the attention mask, as peftlab pads internally."""
    t = max(len(r) for r in ids)
    input_ids = torch.zeros(len(ids), t, dtype=torch.long)
    mask = torch.zeros(len(ids), t, dtype=torch.long)
    for i, r in enumerate(ids):
        input_ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return input_ids, mask


def masked_max_diff(a, b, mask):
    if a.shape != b.shape:
        raise ValueError(f"logits shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    keep = mask.bool().unsqueeze(-1).expand_as(a)
    d = (a - b).abs()[keep]
    if torch.isnan(d).any():
        return math.nan
    return d.max().item()


def vllm_problems(adapter_dir):
    """What vLLM's LoRA loader (PEFTHelper + LoRAModel.from_local_checkpoint) would reject."""
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    tensors = load_file(adapter_dir / "adapter_model.safetensors")
    problems = []
    if cfg.get("peft_type") != "LORA":
        problems.append(f"peft_type {cfg.get('peft_type')!r} (need LORA)")
    for key in ("r", "lora_alpha", "target_modules"):
        if key not in cfg:
            problems.append(f"config lacks {key!r}")
    if cfg.get("use_dora"):
        problems.append("use_dora is true")
    if cfg.get("use_rslora"):
        problems.append("use_rslora is true (rejected by older vLLM)")
    if cfg.get("modules_to_save"):
        problems.append("modules_to_save is set")
    if cfg.get("bias", "none") != "none":
        problems.append(f"bias {cfg.get('bias')!r}")
    for key in ("rank_pattern", "alpha_pattern"):
        if cfg.get(key):
            problems.append(f"{key} is not empty (vLLM ignores it)")
    r = cfg.get("r")
    if not isinstance(r, int) or r <= 0:
        problems.append(f"r = {r!r} is not a positive integer")
    if not (isinstance(cfg.get("lora_alpha"), (int, float)) and cfg["lora_alpha"] > 0):
        problems.append(f"lora_alpha = {cfg.get('lora_alpha')!r}")
    for k, t in tensors.items():
        if not k.startswith("base_model.model.") or not k.endswith(LORA_KEY_SUFFIXES):
            problems.append(f"unexpected tensor key {k}")
            continue
        rank = t.shape[0] if k.endswith(".lora_A.weight") else t.shape[1]
        if t.dim() != 2 or rank != r:
            problems.append(f"{k} has shape {tuple(t.shape)}, rank {rank} != r = {r}")
        if k.endswith(".lora_A.weight"):
            if k[: -len("lora_A.weight")] + "lora_B.weight" not in tensors:
                problems.append(f"{k} has no lora_B")
    return problems


def unknown_config_keys(adapter_dir):
    """Config keys that the PEFT config class does not declare (PEFT drops them with a warning
    that tells the user to upgrade PEFT)."""
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    cls = PEFT_TYPE_TO_CONFIG_MAPPING.get(cfg.get("peft_type"))
    if cls is None:
        return []
    return sorted(set(cfg) - {f.name for f in dataclasses.fields(cls)})


def resave_differences(model, adapter_dir):
    """Saves the loaded adapter again with PEFT and lists how its tensors differ from peftlab's
    file (keys, shapes, values: all must be identical)."""
    ours = load_file(adapter_dir / "adapter_model.safetensors")
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        theirs = load_file(Path(tmp) / "adapter_model.safetensors")
    out = [f"only peftlab has {k}" for k in sorted(set(ours) - set(theirs))]
    out += [f"only PEFT has {k}" for k in sorted(set(theirs) - set(ours))]
    for k in sorted(set(ours) & set(theirs)):
        if ours[k].shape != theirs[k].shape:
            out.append(f"{k}: shape {tuple(ours[k].shape)} vs PEFT {tuple(theirs[k].shape)}")
        elif not torch.equal(ours[k], theirs[k]):
            out.append(f"{k}: values differ")
    return out


def check(case_dir, kind, base, input_ids, mask, base_logits):
    """One adapter directory: (max diff, moved, status, note)."""
    adapter_dir = case_dir / kind
    want = load_file(case_dir / "logits.safetensors")["logits"]
    if kind == "save_adapter" and case_dir.name in PEFTLAB_ONLY:
        cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
        return None, None, "n/a", f"peft_type {cfg.get('peft_type')}: {PEFTLAB_ONLY[case_dir.name]}"
    notes = []
    try:
        model = PeftModel.from_pretrained(load_base(base), str(adapter_dir)).eval()
        with torch.no_grad():
            got = model(input_ids=input_ids, attention_mask=mask).logits
    except Exception as e:  # report every loader error as a failure of this cell
        return None, None, "FAIL", f"PEFT could not load it: {type(e).__name__}: {e}"
    d = masked_max_diff(got, want, mask)
    moved = masked_max_diff(want, base_logits, mask)
    ok = d <= TOL
    if kind == "save_adapter":
        resave = resave_differences(model, adapter_dir)
        if resave:
            ok = False
            notes.append("PEFT re-save differs: " + "; ".join(resave[:4]))
        else:
            notes.append("PEFT re-save identical")
    unknown = unknown_config_keys(adapter_dir)
    if unknown:
        ok = False
        notes.append(f"config keys PEFT does not declare: {unknown}")
    if moved < MIN_MOVED:
        ok = False
        notes.append(f"adapter barely moves the logits ({moved:.2e})")
    if kind == "export_lora":
        problems = vllm_problems(adapter_dir)
        if problems:
            ok = False
            notes.append("vLLM: " + "; ".join(problems))
        else:
            cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
            notes.append(f"vLLM ok (r={cfg['r']})")
    return d, moved, "PASS" if ok else "FAIL", ", ".join(notes)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the --out directory of make_peftlab_adapters.rhai")
    ap.add_argument("--json", type=Path, help="also write the results table here")
    args = ap.parse_args()
    probe = json.loads((args.out / "probe.json").read_text())
    base = probe["base"]
    input_ids, mask = padded(probe["ids"])
    cases = json.loads((args.out / "cases.json").read_text())

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    with torch.no_grad():
        base_logits = load_base(base)(input_ids=input_ids, attention_mask=mask).logits
    d_base = masked_max_diff(
        base_logits, load_file(args.out / "base_logits.safetensors")["logits"], mask
    )
    rows = []
    failed = d_base > TOL
    print(f"base model, peftlab vs transformers: max |diff| {d_base:.2e} "
          f"{'PASS' if d_base <= TOL else 'FAIL'}\n")
    header = f"{'case':<16} {'method':<8} {'output':<13} {'max|diff|':>10} {'moved':>8}  result  notes"
    print(header)
    print("-" * len(header))
    for c in cases:
        kinds = ["save_adapter"] + (["export_lora"] if c["exports"] else [])
        for kind in kinds:
            d, moved, status, note = check(
                args.out / c["name"], kind, base, input_ids, mask, base_logits
            )
            failed |= status == "FAIL"
            ds = "-" if d is None else f"{d:.2e}"
            ms = "-" if moved is None else f"{moved:.2f}"
            print(f"{c['name']:<16} {c['method']:<8} {kind:<13} {ds:>10} {ms:>8}  {status:<6}  {note}")
            rows.append(dict(case=c["name"], method=c["method"], output=kind, max_abs_diff=d,
                             moved=moved, result=status, note=note))
    if args.json:
        args.json.write_text(json.dumps(dict(
            versions=dict(torch=torch.__version__, transformers=transformers.__version__,
                          peft=peft.__version__),
            base_max_abs_diff=d_base, tolerance=TOL, rows=rows), indent=1))
    print("\nFAILED" if failed else "\nall PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
