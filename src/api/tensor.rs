//! Bindings of the "Tensors" section of docs/API.md: host tensors for probes and checks.

use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};
use std::collections::BTreeMap;

use crate::host::convert::{from_json, to_json};
use crate::host::{bind, fail, register_handle, Handle, ResultExt, RhaiResult, Session};
use crate::tensor::{load_safetensors, save_safetensors, HostTensor};

type T = Handle<HostTensor>;

/// A tensor map for scripts.
pub fn to_map(m: BTreeMap<String, HostTensor>) -> Map {
    m.into_iter()
        .map(|(k, v)| (k.into(), Dynamic::from(Handle::new(v))))
        .collect()
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"Host tensors for probes in the REPL and for checks: loaded from and saved to safetensors,
built from nested arrays, returned by `m.logits`, `m.hidden_states`, `m.adapter_tensors` and
`quantize`. `print(t)` (or `t.to_string()`) shows a one-line summary with dtype and shape."#;

/// Registers the tensor bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    register_handle::<HostTensor>(engine, "Tensor");
    bind(
        engine,
        "load_tensors",
        ["path"],
        "Reads a safetensors file into a map name → Tensor (floats as f32, integers as i64).\n\nExample: `let w = load_tensors(\"adapter/adapter_model.safetensors\"); print(w.keys());`",
        |p: &str| -> RhaiResult<Map> {
            Ok(to_map(
                load_safetensors(std::path::Path::new(p)).ctx("load_tensors")?,
            ))
        },
    );
    bind(
        engine,
        "save_tensors",
        ["tensors", "path"],
        "Writes a map name → Tensor to a safetensors file.\n\nExample: `save_tensors(#{ x: tensor([1.0, 2.0]) }, out_path(\"x.safetensors\"));`",
        |m: Map, p: &str| -> RhaiResult<()> {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let t = v
                    .try_cast::<T>()
                    .ok_or_else(|| fail(format!("save_tensors: '{k}' is not a Tensor")))?;
                out.insert(k.to_string(), t.borrow("save_tensors")?.clone());
            }
            save_safetensors(&out, std::path::Path::new(p)).ctx("save_tensors")
        },
    );
    bind(engine, "tensor", ["values"], "A tensor from nested arrays: i64 when every element is an integer, f32 otherwise.\n\n```rhai\nlet t = tensor([[1.0, 2.0], [3.0, 4.0]]);\n```", |a: Array| -> RhaiResult<T> {
        let v = to_json(&Dynamic::from_array(a)).map_err(|e| fail(format!("tensor: {e}")))?;
        Ok(Handle::new(HostTensor::from_value(&v).ctx("tensor")?))
    });
    bind(
        engine,
        "shape",
        ["t"],
        "The dimensions.\n\nExample: `tensor([[1, 2, 3], [4, 5, 6]]).shape()` is `[2, 3]`.",
        |t: &mut T| -> RhaiResult<Array> {
            Ok(t.borrow("shape")?
                .shape
                .iter()
                .map(|&d| Dynamic::from_int(d as INT))
                .collect())
        },
    );
    bind(
        engine,
        "to_array",
        ["t"],
        "Nested arrays of the values (ints for integer tensors).\n\nExample: `tensor([[1, 2], [3, 4]]).to_array()` is `[[1, 2], [3, 4]]`.",
        |t: &mut T| -> RhaiResult<Dynamic> { Ok(from_json(&t.borrow("to_array")?.to_value())) },
    );
    let doc_index = "
        Entry `i` along axis 0 (`t[i]`), a tensor with one dimension less; a negative `i` counts
        from the end.

        ```rhai
        let t = tensor([[1.0, 2.0], [3.0, 4.0]]);
        print(t[1].to_array());   // [3.0, 4.0]
        ```";
    bind(
        engine,
        "index$get$",
        ["t", "i"],
        doc_index,
        |t: &mut T, i: INT| -> RhaiResult<T> {
            Ok(Handle::new(t.borrow("t[i]")?.index(i).ctx("t[i]")?))
        },
    );
    bind(
        engine,
        "slice",
        ["t", "axis", "start", "end"],
        "A sub-range `start..end` along `axis` (negative values count from the end).\n\nExample: `tensor([[1, 2], [3, 4]]).slice(1, 1, 2).to_array()` is `[[2], [4]]`.",
        |t: &mut T, axis: INT, s: INT, e: INT| -> RhaiResult<T> {
            Ok(Handle::new(
                t.borrow("slice")?.slice(axis, s, e).ctx("slice")?,
            ))
        },
    );
    bind(
        engine,
        "argmax",
        ["t"],
        "Index of the largest element of a 1-D tensor (first on ties).\n\nExample: `tensor([0.1, 0.7, 0.2]).argmax()` is 1.",
        |t: &mut T| -> RhaiResult<INT> { Ok(t.borrow("argmax")?.argmax().ctx("argmax")? as INT) },
    );
    bind(
        engine,
        "sum",
        ["t"],
        "Sum of all elements.\n\nExample: `tensor([[1.0, 2.0], [3.0, 4.0]]).sum()` is 10.0.",
        |t: &mut T| -> RhaiResult<FLOAT> { Ok(t.borrow("sum")?.sum()) },
    );
    bind(
        engine,
        "mean",
        ["t"],
        "Mean of all elements.\n\nExample: `tensor([[1.0, 2.0], [3.0, 4.0]]).mean()` is 2.5.",
        |t: &mut T| -> RhaiResult<FLOAT> { Ok(t.borrow("mean")?.mean()) },
    );
    bind(
        engine,
        "max_abs_diff",
        ["a", "b"],
        "Largest absolute element-wise difference; an error if the shapes differ.\n\nExample: `max_abs_diff(tensor([1.0, 2.0]), tensor([1.5, 2.0]))` is 0.5.",
        |a: T, b: T| -> RhaiResult<FLOAT> {
            let (x, y) = (a.borrow("max_abs_diff")?, b.borrow("max_abs_diff")?);
            x.max_abs_diff(&y).ctx("max_abs_diff")
        },
    );
}
