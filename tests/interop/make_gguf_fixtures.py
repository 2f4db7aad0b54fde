#!/usr/bin/env python3
"""Make tests/fixtures/gguf/quants.gguf: a small GGUF written by gguf-py with a few random blocks
of every quantisation type peftlab dequantises, plus the expected f32 outputs.

For each type T the file holds:
  q.T        the raw blocks, shape (2, n) in numpy order (two rows), type T
  expected.T float32 of the same shape: gguf-py's `gguf.quants.dequantize` of those bytes
             (Q8_K, which gguf-py cannot dequantise, uses ggml's formula y = d * q, d f32)
and metadata of every GGUF value type (incl. nested arrays) with known values, so that the Rust
reader is also checked against gguf-py's writer.

Random bytes exercise every bit of the packed fields; the f16/f32 scale fields are overwritten
with finite values so that no NaN/Inf appears. Seeded (numpy default_rng(20251122)).

Run: /work/pyenv/bin/python tests/interop/make_gguf_fixtures.py   (gguf 0.19.0, numpy 2.4.6)
"""
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "gguf" / "quants.gguf"

# byte offsets of the half (or f32 for Q8_K) scale fields inside one block
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
TYPES = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
         T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K]


def main():
    rng = np.random.default_rng(20251122)
    w = gguf.GGUFWriter(str(OUT), arch="test", use_temp_file=False)
    # metadata of every value type
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", -2.5e-300)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo ✓")
    w.add_array("t.arr_i32", [1, -2, 3])
    w.add_array("t.arr_str", ["a", "", "ü"])
    w.add_array("t.arr_f32", [0.5, -1.25])
    w.add_array("t.nested", [[1, 2], [3]])
    for qt in TYPES:
        bs, ts = GGML_QUANT_SIZES[qt]
        n_cols = bs * (2 if bs == 32 else 1) if bs > 1 else 8
        n_rows = 2
        n_blocks = n_rows * n_cols // bs
        if qt == T.F16:
            vals = rng.standard_normal(n_rows * n_cols).astype(np.float16)
            raw = vals.view(np.uint8)
        elif qt == T.BF16:
            f = rng.standard_normal(n_rows * n_cols).astype(np.float32)
            raw = (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        else:
            raw = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
            if qt == T.Q8_K:
                d = (rng.uniform(0.001, 0.05, size=n_blocks) * rng.choice([-1, 1], n_blocks)).astype(np.float32)
                raw[:, 0:4] = d.view(np.uint8).reshape(n_blocks, 4)
            else:
                for off in HALF_FIELDS[qt]:
                    h = (rng.uniform(0.001, 0.1, size=n_blocks) * rng.choice([-1, 1], n_blocks)).astype(np.float16)
                    raw[:, off:off + 2] = h.view(np.uint8).reshape(n_blocks, 2)
            raw = raw.reshape(-1)
        raw = np.ascontiguousarray(raw).reshape(n_rows, -1)
        if qt == T.Q8_K:
            blocks = raw.reshape(n_blocks, ts)
            d = blocks[:, 0:4].copy().view(np.float32)
            q = blocks[:, 4:260].copy().view(np.int8).astype(np.float32)
            expected = (d * q).reshape(n_rows, n_cols)
        else:
            expected = gguf.quants.dequantize(raw, qt).reshape(n_rows, n_cols)
        assert np.all(np.isfinite(expected)), qt.name
        w.add_tensor(f"q.{qt.name}", raw, raw_dtype=qt)
        w.add_tensor(f"expected.{qt.name}", expected.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
