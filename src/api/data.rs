//! Bindings of the "Data" section of docs/API.md: datasets as handles of rows.

use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext, INT};
use serde::Deserialize;

use super::args::count;
use crate::data::{bactrian_partition, load_dataset, mixture, Dataset, MixBy, MixtureOptions};
use crate::host::convert::{from_json, map_to_row, row_to_map, to_json};
use crate::host::{
    bind, call_closure, fail, parse_opts, register_handle, Handle, ResultExt, RhaiResult, Session,
};
use crate::lab::Model;
use crate::value::{Row, Value};

type D = Handle<Dataset>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LoadOpts {
    split: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixOpts {
    ratios: Vec<f64>,
    total: usize,
    #[serde(default)]
    seed: u64,
    #[serde(default = "examples")]
    by: String,
}

fn examples() -> String {
    "examples".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionOpts {
    partitions: usize,
    #[serde(default)]
    parts_per_lang: Option<usize>,
    #[serde(default)]
    seed: u64,
}

/// Rows of a dataset handle, or of an array of maps.
pub fn rows_of(fn_name: &str, v: &Dynamic) -> RhaiResult<Vec<Row>> {
    if let Some(d) = v.clone().try_cast::<D>() {
        return Ok(d.borrow(fn_name)?.rows().to_vec());
    }
    let a = v.clone().into_array().map_err(|t| {
        fail(format!(
            "{fn_name}: expected a Dataset or an array of maps (got a {t})"
        ))
    })?;
    a.iter()
        .enumerate()
        .map(|(i, r)| {
            let m = r
                .clone()
                .try_cast::<Map>()
                .ok_or_else(|| fail(format!("{fn_name}: row {i} is not a map")))?;
            map_to_row(&m).map_err(|e| fail(format!("{fn_name}: row {i}: {e}")))
        })
        .collect()
}

fn call_row(ctx: &NativeCallContext, fn_name: &str, f: &FnPtr, row: &Row) -> RhaiResult<Dynamic> {
    call_closure(ctx, fn_name, f, vec![Dynamic::from_map(row_to_map(row))])
}

fn text_tokens(m: &Model, row: &Row) -> Result<usize, crate::data::DataError> {
    // Counting tokens of a large dataset takes a while: Ctrl-C stops it (the flag makes the
    // binding's error an interruption).
    if crate::interrupt::is_set() {
        return Err(crate::data::DataError::Invalid {
            func: "mixture",
            msg: "interrupted while counting tokens".into(),
        });
    }
    let mut n = 0;
    for v in row.values() {
        if let Value::String(s) = v {
            n += m
                .tokenizer
                .encode_plain(s)
                .map_err(|e| crate::data::DataError::Invalid {
                    func: "mixture",
                    msg: e.to_string(),
                })?
                .len();
        }
    }
    Ok(n)
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"A `Dataset` is an immutable list of rows (maps); every transformation returns a new one.
`d[i]` is row i, `print(d)` a one-line summary. Seeds make every random choice (shuffle,
sample, mixture, partition) reproducible on every machine (ChaCha8)."#;

/// Registers the data bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    register_handle::<Dataset>(engine, "Dataset");
    let doc_load = "
        Loads a dataset: .jsonl, .json, .csv, .parquet, or an HF dataset directory (split files such as
        `test-00000-of-00001.parquet`, `validation.jsonl`). Options: `split`, `limit`.

        ```rhai
        let d = load_dataset(\"data/xnli/ur\", #{ split: \"test\", limit: 100 });
        ```";
    let load = |p: &str, o: &Map| -> RhaiResult<D> {
        let o: LoadOpts = parse_opts("load_dataset", o)?;
        let opts = crate::data::LoadOptions {
            split: o.split,
            limit: o.limit,
        };
        Ok(Handle::new(load_dataset(p, &opts).ctx("load_dataset")?))
    };
    bind(
        engine,
        "load_dataset",
        ["path"],
        doc_load,
        move |p: &str| load(p, &Map::new()),
    );
    bind(
        engine,
        "load_dataset",
        ["path", "opts"],
        doc_load,
        move |p: &str, o: Map| load(p, &o),
    );
    bind(
        engine,
        "dataset",
        ["rows"],
        "A dataset from an array of maps.\n\nExample: `let d = dataset([#{ instruction: \"Translate\", input: \"Save\", output: \"محفوظ کریں\" }]);`",
        |a: Array| -> RhaiResult<D> {
            let v = to_json(&Dynamic::from_array(a)).map_err(|e| fail(format!("dataset: {e}")))?;
            let Value::Array(items) = v else {
                return Err(fail("dataset: expected an array of maps"));
            };
            Ok(Handle::new(Dataset::from_values(items).ctx("dataset")?))
        },
    );
    bind(
        engine,
        "len",
        ["d"],
        "Number of rows.\n\nExample: `print(d.len());`",
        |d: &mut D| -> RhaiResult<INT> { Ok(d.borrow("len")?.len() as INT) },
    );
    let doc_index = "
        Row `i` as a map (`d[i]`); a negative `i` counts from the end.

        ```rhai
        let d = dataset([#{ text: \"a\" }, #{ text: \"b\" }]);
        print(d[0].text);    // a
        print(d[-1].text);   // b
        ```";
    bind(
        engine,
        "index$get$",
        ["d", "i"],
        doc_index,
        |d: &mut D, i: INT| -> RhaiResult<Map> {
            let ds = d.borrow("d[i]")?;
            let j =
                crate::host::convert::row_index("d[i]", i, ds.len(), "a dataset").map_err(fail)?;
            Ok(row_to_map(ds.row(j).ctx("d[i]")?))
        },
    );
    bind(
        engine,
        "rows",
        ["d"],
        "All rows as an array of maps.\n\nExample: `for row in d.take(3).rows() { print(row); }`",
        |d: &mut D| -> RhaiResult<Array> {
            Ok(d.borrow("rows")?
                .rows()
                .iter()
                .map(|r| Dynamic::from_map(row_to_map(r)))
                .collect())
        },
    );
    bind(engine, "filter", ["d", "predicate"], "Rows for which the closure returns true.\n\n```rhai\nlet ur = d.filter(|r| r.lang == \"ur\");\n```", |ctx: NativeCallContext, d: &mut D, f: FnPtr| -> RhaiResult<D> {
        let ds = d.borrow("filter")?.clone();
        let out = ds.filter(|r| -> RhaiResult<bool> {
            call_row(&ctx, "filter", &f, r)?.as_bool().map_err(|t| fail(format!("filter: the closure must return a bool (got a {t})")))
        })?;
        Ok(Handle::new(out))
    });
    bind(
        engine,
        "map",
        ["d", "f"],
        "Each row replaced by the closure's result (a map).\n\nExample: `let d2 = d.map(|r| #{ instruction: r.instruction, input: \"\", output: r.output });`",
        |ctx: NativeCallContext, d: &mut D, f: FnPtr| -> RhaiResult<D> {
            let ds = d.borrow("map")?.clone();
            let out = ds.map(|r| -> RhaiResult<Row> {
                let v = call_row(&ctx, "map", &f, r)?;
                let m = v
                    .try_cast::<Map>()
                    .ok_or_else(|| fail("map: the closure must return a map"))?;
                map_to_row(&m).map_err(|e| fail(format!("map: {e}")))
            })?;
            Ok(Handle::new(out))
        },
    );
    bind(
        engine,
        "shuffle",
        ["d", "seed"],
        "Rows in a seeded random order (ChaCha8).\n\nExample: `let d2 = d.shuffle(42);`",
        |d: &mut D, s: INT| -> RhaiResult<D> {
            Ok(Handle::new(d.borrow("shuffle")?.shuffle(s as u64)))
        },
    );
    bind(
        engine,
        "take",
        ["d", "n"],
        "The first n rows.\n\nExample: `let dev = d.shuffle(1).take(100);`",
        |d: &mut D, n: INT| -> RhaiResult<D> {
            let n = count("take", "n", n)?;
            Ok(Handle::new(d.borrow("take")?.take(n)))
        },
    );
    bind(
        engine,
        "skip",
        ["d", "n"],
        "All rows after the first n.\n\nExample: `let rest = d.shuffle(1).skip(100);`",
        |d: &mut D, n: INT| -> RhaiResult<D> {
            let n = count("skip", "n", n)?;
            Ok(Handle::new(d.borrow("skip")?.skip(n)))
        },
    );
    bind(
        engine,
        "sample",
        ["d", "n", "seed"],
        "n rows drawn without replacement with the seed.\n\nExample: `let s = d.sample(500, 7);`",
        |d: &mut D, n: INT, s: INT| -> RhaiResult<D> {
            let n = count("sample", "n", n)?;
            Ok(Handle::new(
                d.borrow("sample")?.sample(n, s as u64).ctx("sample")?,
            ))
        },
    );
    bind(
        engine,
        "stratified_sample",
        ["d", "n", "field", "seed"],
        "n rows with the strata of `field` in proportion (largest remainder), drawn with the seed.\n\nExample: `let s = d.stratified_sample(300, \"label\", 1);`",
        |d: &mut D, n: INT, field: &str, s: INT| -> RhaiResult<D> {
            let n = count("stratified_sample", "n", n)?;
            Ok(Handle::new(
                d.borrow("stratified_sample")?
                    .stratified_sample(n, field, s as u64)
                    .ctx("stratified_sample")?,
            ))
        },
    );
    bind(
        engine,
        "concat",
        ["d", "other"],
        "Rows of both datasets.\n\nExample: `let both = english.concat(urdu);`",
        |d: &mut D, o: D| -> RhaiResult<D> {
            let other = o.borrow("concat")?.clone();
            Ok(Handle::new(d.borrow("concat")?.concat(&other)))
        },
    );
    bind(
        engine,
        "column",
        ["d", "name"],
        "The values of one field.\n\nExample: `let labels = d.column(\"label\");`",
        |d: &mut D, name: &str| -> RhaiResult<Array> {
            Ok(d.borrow("column")?
                .column(name)
                .ctx("column")?
                .iter()
                .map(from_json)
                .collect())
        },
    );
    bind(
        engine,
        "save",
        ["d", "path"],
        "Writes the rows (.jsonl, .json or .csv by extension).\n\nExample: `d.save(out_path(\"train_mix.jsonl\"));`",
        |d: &mut D, p: &str| -> RhaiResult<()> { d.borrow("save")?.save(p).ctx("save") },
    );
    bind(
        engine,
        "hash",
        ["d"],
        "sha256 of the rows (for provenance).\n\nExample: `#{ acc: 0.8, provenance: #{ train_sha256: d.hash() } }` (a `run_cells` result)",
        |d: &mut D| -> RhaiResult<String> { Ok(d.borrow("hash")?.hash()) },
    );
    let doc_mix = "
        Mixes datasets with exact integer counts: `ratios · total` rounded by largest remainder. Options: `ratios`, `total`, `seed`,
        `by` (\"examples\" or \"tokens\"; tokens need the model: `mixture(ds, opts, m)`).

        ```rhai
        let mix = mixture([english, urdu], #{ ratios: [0.99, 0.01], total: 5000, seed: 1 });
        ```";
    let mix = |ds: &Array, o: &Map, m: Option<&Handle<Model>>| -> RhaiResult<D> {
        let o: MixOpts = parse_opts("mixture", o)?;
        let by: MixBy = o.by.parse().ctx("mixture")?;
        let owned: Vec<Dataset> = ds
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.clone()
                    .try_cast::<D>()
                    .ok_or_else(|| fail(format!("mixture: element {i} is not a Dataset")))
                    .and_then(|h| Ok(h.borrow("mixture")?.clone()))
            })
            .collect::<RhaiResult<_>>()?;
        let refs: Vec<&Dataset> = owned.iter().collect();
        let opts = MixtureOptions {
            ratios: o.ratios,
            total: o.total,
            seed: o.seed,
            by,
        };
        let out = match (by, m) {
            (MixBy::Tokens, None) => return Err(fail(
                "mixture: by: \"tokens\" needs the model for counting: mixture(datasets, opts, m)",
            )),
            (MixBy::Tokens, Some(h)) => {
                let model = h.borrow("mixture")?;
                let mut count = |r: &Row| text_tokens(&model, r);
                mixture(&refs, &opts, Some(&mut count)).ctx("mixture")?
            }
            (MixBy::Examples, _) => {
                mixture::<crate::data::DataError>(&refs, &opts, None).ctx("mixture")?
            }
        };
        Ok(Handle::new(out))
    };
    bind(
        engine,
        "mixture",
        ["datasets", "opts"],
        doc_mix,
        move |d: Array, o: Map| mix(&d, &o, None),
    );
    bind(
        engine,
        "mixture",
        ["datasets", "opts", "m"],
        doc_mix,
        move |d: Array, o: Map, m: Handle<Model>| mix(&d, &o, Some(&m)),
    );
    bind(engine, "bactrian_partition", ["datasets", "opts"], "
        Bactrian-X sampling over parallel datasets `#{ lang: dataset, ... }`: shuffle indices 0..N with the seed, split them into
        `partitions` parts, language i (keys in sorted order, as Rhai maps keep them) takes part i mod partitions. Rows get a `lang` field.
        With `parts_per_lang: k` language i takes the k parts (k·i + j) mod partitions, j < k: the rank×quantisation study's
        Bactrian-X-11 needs k = 2 (11 languages × 2 of 10 parts: 20 % per language, every index in at least 2 languages).\n\nExample: `let bx = bactrian_partition(#{ en: d_en, ur: d_ur, sw: d_sw }, #{ partitions: 10, seed: 1 });`", |m: Map, o: Map| -> RhaiResult<D> {
        let o: PartitionOpts = parse_opts("bactrian_partition", &o)?;
        let mut langs = Vec::new();
        for (k, v) in m {
            let h = v.try_cast::<D>().ok_or_else(|| fail(format!("bactrian_partition: '{k}' is not a Dataset")))?;
            let d = h.borrow("bactrian_partition")?.clone();
            langs.push((k.to_string(), d));
        }
        Ok(Handle::new(bactrian_partition(&langs, o.partitions, o.parts_per_lang.unwrap_or(1), o.seed).ctx("bactrian_partition")?))
    });
    bind(engine, "ui_strings", ["split", "langs"], "
        The built-in parallel UI-string corpus as translation instructions #{ id, lang, instruction, input, output } for `split`
        (\"train\" or \"test\", disjoint by English source) and languages.

        ```rhai
        let train = ui_strings(\"train\", [\"ur\"]);
        ```", |split: &str, langs: Array| -> RhaiResult<D> {
        let l = super::args::strings("ui_strings", "langs", &langs)?;
        Ok(Handle::new(crate::eval::ui_strings(split, Some(&l), None).ctx("ui_strings")?))
    });
    let doc = "
        An evaluation task's data as training rows #{ task, lang, id, prompt, output }: every document of `split` rendered
        with the task's own prompt (as `evaluate` renders it) and paired with its gold answer, so `prompt + output` is the
        text that `evaluate` scores for the right answer (multiple choice: context + target delimiter + gold choice;
        generation: prompt + first reference answer). Train on them with the template \"{prompt}{output}\"; `task` and
        `lang` can route FLix's feature adapters. Options: data, langs (default: those with rows in the split), split
        (default: the task's few-shot split, `train` for xnli and tydiqa), prompt (\"alpaca\" | \"lm-eval\" | \"plain\" | \"rank_quant\"), limit
        (first n documents per language), seed (`ui_translate`'s distractors).

        ```rhai
        let nli = task_examples(\"xnli\", #{ data: \"data/xnli\", langs: [\"en\", \"sw\"], limit: 1000 });
        let qa = task_examples(\"tydiqa\", #{ data: \"data/tydiqa\", langs: [\"en\", \"sw\"] });
        m.train(nli.concat(qa), #{ template: \"{prompt}{output}\", epochs: 1 });
        ```";
    bind(
        engine,
        "task_examples",
        ["task", "opts"],
        doc,
        |task: &str, o: Map| -> RhaiResult<D> {
            let opts: crate::eval::ExampleOptions = parse_opts("task_examples", &o)?;
            Ok(Handle::new(
                crate::eval::task_examples(task, &opts).ctx("task_examples")?,
            ))
        },
    );
}
