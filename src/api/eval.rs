//! Bindings of the "Evaluation" section of docs/API.md, the metric functions, and the
//! layer-wise language analysis.

use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext, FLOAT};
use serde::Deserialize;

use super::args::strings;
use super::table::{table_of, T};
use crate::eval::metrics::{f1_score, mlqa_em, mlqa_f1, rouge, squad_em, squad_f1, Average};
use crate::eval::tasks::Lang;
use crate::eval::{
    evaluate_with, join_items, EvalError, EvalHooks, EvalOptions, ItemsSource, JoinOptions,
    TemplateFn,
};
use crate::host::convert::row_to_map;
use crate::host::{
    bind, call_closure, closure_params, fail, from_value, parse_opts, Handle, ResultExt,
    RhaiResult, Session,
};
use crate::lab::Model;
use crate::progress::Progress;
use crate::value::Row;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LensOpts {
    langs: Vec<String>,
    top_k: usize,
    positions: String,
}

impl Default for LensOpts {
    fn default() -> Self {
        LensOpts {
            langs: vec!["en".into()],
            top_k: 1,
            positions: "all".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RougeOpts {
    /// Accepted for API compatibility; tokenisation follows the script of each character.
    #[allow(dead_code)]
    lang: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct F1Opts {
    average: String,
}

impl Default for F1Opts {
    fn default() -> Self {
        F1Opts {
            average: "micro".into(),
        }
    }
}

fn golds(fn_name: &str, v: &Dynamic) -> RhaiResult<Vec<String>> {
    if v.is_string() {
        return Ok(vec![v.clone().into_string().unwrap_or_default()]);
    }
    let a = v.clone().into_array().map_err(|t| {
        fail(format!(
            "{fn_name}: golds must be a string or an array of strings (got a {t})"
        ))
    })?;
    strings(fn_name, "golds", &a)
}

/// A map value of `join_items`' files: `#{ path, sha256 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathSha {
    path: String,
    sha256: Option<String>,
}

/// An array element of `join_items`' files: `#{ label, path, sha256 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelledPath {
    label: String,
    path: String,
    sha256: Option<String>,
}

/// The files of `join_items`: `#{ label: path | #{ path, sha256 } }` (columns in key order) or
/// `[#{ label, path, sha256 }]` (columns in array order).
fn items_sources(files: &Dynamic) -> RhaiResult<Vec<ItemsSource>> {
    const FN: &str = "join_items";
    if let Some(m) = files.read_lock::<Map>() {
        return m
            .iter()
            .map(|(label, v)| {
                let (path, sha256) = if v.is_string() {
                    (v.clone().into_string().unwrap_or_default(), None)
                } else {
                    let p: PathSha = from_value(FN, &format!("files['{label}']"), v)?;
                    (p.path, p.sha256)
                };
                Ok(ItemsSource {
                    label: label.to_string(),
                    path: path.into(),
                    sha256,
                })
            })
            .collect();
    }
    if let Some(a) = files.read_lock::<Array>() {
        return a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let p: LabelledPath = from_value(FN, &format!("files[{i}]"), v)?;
                Ok(ItemsSource {
                    label: p.label,
                    path: p.path.into(),
                    sha256: p.sha256,
                })
            })
            .collect();
    }
    Err(fail(format!(
        "{FN}: files must be a map #{{ label: path }} or an array [#{{ label, path }}] (got a {})",
        files.type_name()
    )))
}

fn join(files: &Dynamic, o: &Map) -> RhaiResult<T> {
    let opts: JoinOptions = parse_opts("join_items", o)?;
    let sources = items_sources(files)?;
    Ok(Handle::new(join_items(&sources, &opts).ctx("join_items")?))
}

fn evaluate(
    ctx: Option<&NativeCallContext>,
    m: &Handle<Model>,
    task: &str,
    o: &Map,
) -> RhaiResult<T> {
    // A closure `template` goes to the hooks; the other options are parsed as usual.
    let mut o = o.clone();
    let closure = match o
        .get("template")
        .and_then(|v| v.clone().try_cast::<FnPtr>())
    {
        Some(f) => {
            o.remove("template");
            let ctx = ctx.ok_or_else(|| fail("evaluate: a template closure needs a script"))?;
            let arity = closure_params(ctx, &f).unwrap_or(1);
            if !(1..=2).contains(&arity) {
                return Err(fail(format!(
                    "evaluate: the template closure takes {arity} parameters; expected |doc| or |doc, lang|"
                )));
            }
            Some((f, arity))
        }
        None => None,
    };
    let opts: EvalOptions = parse_opts("evaluate", &o)?;
    let call = |row: &Row, lang: &Lang| -> Result<String, String> {
        let (Some((f, arity)), Some(ctx)) = (&closure, ctx) else {
            return Err("no closure".into());
        };
        let mut args = vec![Dynamic::from_map(row_to_map(row))];
        if *arity == 2 {
            args.push(lang.label.clone().into());
        }
        let v = call_closure(ctx, "evaluate", f, args).map_err(|e| e.to_string())?;
        let tn = v.type_name();
        v.into_string()
            .map_err(|_| format!("it returned a {tn}, not a string"))
    };
    let mut model = m.borrow_mut("evaluate")?;
    let mut bar: Option<Progress> = None;
    let mut progress = |p: crate::eval::Progress<'_>| {
        let b = bar.get_or_insert_with(|| {
            Progress::new(p.total as u64, &format!("evaluating {}", p.task))
        });
        b.set_position(p.done as u64);
    };
    let interrupt = || crate::interrupt::check().map_err(|e| EvalError::Interrupted(e.to_string()));
    let mut hooks = EvalHooks {
        progress: Some(&mut progress),
        interrupt: Some(&interrupt),
        template: closure.as_ref().map(|_| &call as &TemplateFn<'_>),
    };
    let out = evaluate_with(&mut *model, task, &opts, &mut hooks);
    if let Some(b) = bar.as_mut() {
        b.finish();
    }
    // `evaluate_with` has written the items file (atomically) when `items_file` is set.
    let out = out.ctx("evaluate")?;
    Ok(table_of(out.rows))
}

fn alpaca_eval(m: &Handle<Model>, j: &Handle<Model>, data: &Dynamic, o: &Map) -> RhaiResult<Map> {
    use crate::eval::judge::{answers, instructions, judge, JudgeOptions};
    const FN: &str = "alpaca_eval";
    let opts: JudgeOptions = parse_opts(FN, o)?;
    let (rows, origin) = if data.is_string() {
        let path = data.clone().into_string().unwrap_or_default();
        let rows = crate::data::io::read_rows(std::path::Path::new(&path), None).ctx(FN)?;
        (rows, path)
    } else {
        // A Dataset or an array of #{ instruction, output } maps.
        (super::data::rows_of(FN, data)?, "data".to_string())
    };
    let mut items = instructions(&rows, &origin).ctx(FN)?;
    if let Some(l) = opts.limit {
        if l < 1 {
            return Err(fail(format!(
                "{FN}: option 'limit': must be at least 1, got {l}"
            )));
        }
        items.truncate(l as usize);
    }
    let interrupt = || crate::interrupt::check().map_err(|e| EvalError::Interrupted(e.to_string()));
    let run = |h: &Handle<Model>,
               what: &str,
               f: &mut dyn FnMut(&mut Model, &mut EvalHooks<'_>) -> Result<(), EvalError>|
     -> RhaiResult<()> {
        let mut model = h.borrow_mut(FN)?;
        let mut bar: Option<Progress> = None;
        let mut progress = |p: crate::eval::Progress<'_>| {
            let b = bar.get_or_insert_with(|| Progress::new(p.total as u64, what));
            b.set_position(p.done as u64);
        };
        let mut hooks = EvalHooks {
            progress: Some(&mut progress),
            interrupt: Some(&interrupt),
            template: None,
        };
        let r = f(&mut model, &mut hooks);
        if let Some(b) = bar.as_mut() {
            b.finish();
        }
        r.ctx(FN)
    };
    let mut outs = Vec::new();
    run(m, "alpaca_eval: answering", &mut |model, hooks| {
        outs = answers(model, &items, &opts, hooks)?;
        Ok(())
    })?;
    let mut report = None;
    run(j, "alpaca_eval: judging", &mut |model, hooks| {
        report = Some(judge(model, &items, &outs, &opts, hooks)?);
        Ok(())
    })?;
    let report = report.ok_or_else(|| fail(format!("{FN}: the judge gave no report")))?;
    let mut out = row_to_map(&report.to_row());
    out.insert("items".into(), Dynamic::from(table_of(report.items)));
    Ok(out)
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"Built-in tasks: xnli, xcopa, belebele, mlqa, xquad, tydiqa, xlsum, plus the offline demo task
ui_translate (`tasks()` lists them). Tasks report `acc`, `acc_norm`, `acc_bytes` (multiple
choice; XNLI also `f1_micro`, which equals `acc`, and `f1_macro`), `exact_match`, `f1` (QA) and `rouge1`, `rouge2`, `rougeL`
(XL-Sum). The metric functions are usable on their own (custom tasks, checks). Per-item logs
(`items_file`) of several evaluations are joined with `join_items` for the paired tests
`mcnemar` and `permutation_test`."#;

/// Registers the evaluation bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    bind(
        engine,
        "tasks",
        [],
        "The built-in tasks: #{ name, langs, metrics, kind }.\n\n```rhai\nfor t in tasks() { print(`${t.name} (${t.kind}): ${t.langs}`); }\n```",
        || -> Array {
            crate::eval::tasks()
                .iter()
                .map(|t| Dynamic::from_map(row_to_map(&t.to_row())))
                .collect()
        },
    );
    let doc = "
        Evaluates the model (with its adapter) on a task; returns a Table with one row per language #{ task, lang, n, <metrics> }.
        Options: data, langs, split, shots, shot_split, shots_file, shot_exclude, limit (at most N documents per language), fraction (ceil(fraction × n)
        of the n documents, e.g. 0.3 for 30 % of Belebele; 7 % of 100 is 7), sample (\"first\", the default as in lm-eval,
        or \"random\": drawn with the seed, in dataset order), seed, batch_size, prompt (\"alpaca\" | \"lm-eval\" |
        \"plain\" for ui_translate | \"rank_quant\"), template, choices, delimiter, max_new_tokens, items_file.
        `template` is a prompt of one's own for any task: a string with `{field}` placeholders filled from each
        document's fields as the dataset stores them (`{{`/`}}` for literal braces); it replaces the family's prompt
        and keeps the task's gold answer. With it, `choices` gives a multiple-choice task's answer strings, one per
        choice in the task's order, each a template (`[\"{choice1}\", \"{choice2}\"]`), and `delimiter` the text
        between the prompt and the answer (default \" \"); few-shot examples use the same template and are joined as
        lm-eval joins them. `template` may also be a closure `|doc|` or `|doc, lang|` (the document's fields as a map,
        the language's name) that returns the prompt string; `choices` and `delimiter` work with it as with a string.
        Few-shot examples come from `shot_split` or, with `shots_file`, from a data file in the task's schema (a
        `lang` column, where present, selects the language); an evaluated item is never its own example, even when
        two split names resolve to one file (Belebele) or the file repeats the item. `shot_exclude`: \"item\" (default, as lm-eval:
        any other document of the shot split) or \"evaluated\" (none of the evaluated documents: with `limit`/`fraction` on the
        split that also gives the shots, e.g. XQuAD's single split, the examples come from the documents not evaluated). `rank_quant` is the rank×quantisation
        study's appendix-C prompts verbatim (xnli, xcopa, belebele, mlqa, xquad, xlsum): the Alpaca system prompt, then
        the task's instruction with the item inside it; few-shot examples go after the instruction text, before the
        item (README, \"Evaluation prompts of the rank×quantisation study\").

        The `items_file` holds one JSON object per line and item, in evaluation order, written
        atomically (a new evaluation replaces the whole file): `task`, `lang`, `id` (the document's
        `id`/`idx` field, else `<lang code>-<split>-<index>`), `prompt_hash` (first 16 hex digits of
        the SHA-256 of the full prompt, few-shot examples included), `prediction`, `gold`, then for
        multiple choice `choices`, `scores` (log-likelihood per choice), `correct` (bool) and
        `metrics` `#{ acc, acc_norm, acc_bytes }` (0/1); for generation `correct` (exact match as a
        bool, `()` where the task has no exact match) and `metrics` (e.g. `exact_match`, `f1` or
        `rouge1`, `rouge2`, `rougeL`). `join_items` joins such files.

        ```rhai
        let r = m.evaluate(\"xnli\", #{ data: \"data/xnli\", langs: [\"en\", \"ur\"], prompt: \"lm-eval\" });
        let demo = m.evaluate(\"ui_translate\", #{ langs: [\"ur\"], limit: 50 });
        let mega = m.evaluate(\"xnli\", #{ data: \"data/xnli\", template: \"{premise}\\nQuestion: {hypothesis} True, False, or Neither?\\nAnswer:\",
                                        choices: [\"True\", \"Neither\", \"False\"] });
        let native = m.evaluate(\"xnli\", #{ data: \"data/xnli\", langs: [\"de\"], template: |doc| doc.premise + \"\\nFrage: \" + doc.hypothesis + \"\\nAntwort:\",
                                          choices: [\"Ja\", \"Vielleicht\", \"Nein\"], shots: 4, shots_file: \"data/xnli_de_shots.jsonl\" });
        let belebele30 = m.evaluate(\"belebele\", #{ data: \"data/belebele\", fraction: 0.3, sample: \"random\", seed: 1 });
        let paper = m.evaluate(\"xnli\", #{ data: \"data/xnli\", split: \"test\", shots: 4, shot_split: \"validation\", prompt: \"rank_quant\" });
        ```";
    bind(
        engine,
        "evaluate",
        ["m", "task"],
        doc,
        |m: &mut Handle<Model>, t: &str| evaluate(None, m, t, &Map::new()),
    );
    bind(
        engine,
        "evaluate",
        ["m", "task", "opts"],
        doc,
        |ctx: NativeCallContext, m: &mut Handle<Model>, t: &str, o: Map| {
            evaluate(Some(&ctx), m, t, &o)
        },
    );
    let doc_ae = "
        AlpacaEval-style pairwise judging with a local judge model. The model `m` answers each instruction of `data`
        (greedy, from the Alpaca prompt; `prompt: \"plain\"` gives the bare instruction), and the `judge` model compares
        each answer with the instruction's reference answer. The judge prompt shows the instruction and the two answers
        as `Output (a)` and `Output (b)` and asks which is better; the judge's preference is read from its
        log-probabilities of \" Output (a)\" and \" Output (b)\" (no sampling: deterministic). Every instruction is judged
        twice with the answers swapped, and its preference is the mean of the two, which removes the judge's position bias.
        `data`: a file (JSON list, JSON lines, CSV or Parquet), a Dataset or an array of maps with `instruction` and `output` (the
        reference answer), optional `input` and `id`, as AlpacaEval's `alpaca_eval.json`.
        Returns #{ n, win_rate (100 × mean preference), win_rate_discrete (wins + ties/2, in %), se, ci_low, ci_high (95 %
        percentile bootstrap, `bootstrap` resamples, `seed`), position_bias (the judge's mean P(Output (a)) − 0.5), bootstrap,
        items (a Table: id, instruction, prediction, gold, p_model_as_b, p_model_as_a, preference, correct, metrics) }.
        Options: prompt, max_new_tokens (256), batch_size (8), limit, judge_template (a template of one's own with
        `{instruction}`, `{output_a}`, `{output_b}`), bootstrap (1000), seed (1234), items_file (per-item records for
        `join_items`, metric \"preference\" or \"win\"). `m` and `judge` may be the same model.

        ```rhai
        let judge = load_model(\"models/judge\");
        let r = alpaca_eval(m, judge, \"data/alpaca_eval.json\", #{ limit: 100, max_new_tokens: 128, items_file: \"runs/ae.jsonl\" });
        print(`win rate ${r.win_rate} % [${r.ci_low}, ${r.ci_high}]`);
        ```";
    bind(
        engine,
        "alpaca_eval",
        ["m", "judge", "data"],
        doc_ae,
        |m: &mut Handle<Model>, j: Handle<Model>, d: Dynamic| alpaca_eval(m, &j, &d, &Map::new()),
    );
    bind(
        engine,
        "alpaca_eval",
        ["m", "judge", "data", "opts"],
        doc_ae,
        |m: &mut Handle<Model>, j: Handle<Model>, d: Dynamic, o: Map| alpaca_eval(m, &j, &d, &o),
    );
    let doc_j = "
        Joins the items files of several evaluations (`evaluate(..., #{ items_file })`) on the item
        identity (task, lang, id): a Table with one row per item, in the first file's order, with the
        columns task, lang, id and one column per file, named by its label, holding the item's
        `correct` flag as 0/1 or, with `metric`, its number `metrics.<metric>` (e.g. \"f1\",
        \"rougeL\"). Feed two columns to `mcnemar` or `permutation_test`.
        `files`: #{ label: path } or #{ label: #{ path, sha256 } } (columns in key order), or
        [#{ label, path, sha256 }] (columns in array order); a given `sha256` must match the file.
        Options: metric (\"correct\"), intersect (false: the files must hold the same items; true:
        keep the items common to all), check_prompts (true: an item must have the same prompt_hash
        in every file; else an error: the runs used another prompt family, shots or seed). Map keys
        are alphabetical, so `#{ lora, dora }` gives the columns task, lang, id, dora, lora.
        Errors name the file, and the line where there is one: a file that cannot be read, a line
        that is not a JSON object or lacks `task`/`lang`/`id` or the value (`correct` is `()` for a
        generation task: pick a metric), an item twice in one file, item sets that differ (with
        counts and an example of a missing and an extra item), no common item with `intersect`, a
        file without items, no files, an empty, repeated or reserved (`task`, `lang`, `id`) label,
        and a hash mismatch. Blank lines are skipped.

        ```rhai
        let lora = m_lora.evaluate(\"xnli\", #{ data: \"data/xnli\", langs: [\"en\", \"ur\"], items_file: \"runs/lora.jsonl\" });
        let dora = m_dora.evaluate(\"xnli\", #{ data: \"data/xnli\", langs: [\"en\", \"ur\"], items_file: \"runs/dora.jsonl\" });
        let j = join_items(#{ lora: \"runs/lora.jsonl\", dora: \"runs/dora.jsonl\" });   // columns task, lang, id, dora, lora
        let ur = j.filter(|r| r.lang == \"ur\");
        let t = mcnemar(ur.column(\"lora\"), ur.column(\"dora\"));   // n01: items only LoRA got right
        let p = permutation_test(j.column(\"lora\"), j.column(\"dora\"), #{ seed: 1 });
        ```

        `scripts/which_lora.rhai` writes one items file per cell, `items/<variant>-<share>-seed<seed>.jsonl`
        in the output directory, and stores its path (relative to the output directory) and SHA-256 in
        the cell's result (`items_file`, `items_sha256`), so a file rewritten after the result was
        stored (say by an interrupted `--rerun`) is refused rather than silently joined:

        ```rhai
        let files = #{};
        for row in results.rows() {
            files[`${row.variant}/${row.share}/seed${row.seed}`] = #{ path: out_path(row.items_file), sha256: row.items_sha256 };
        }
        let j = join_items(files);
        ```";
    bind(engine, "join_items", ["files"], doc_j, |f: Dynamic| {
        join(&f, &Map::new())
    });
    bind(
        engine,
        "join_items",
        ["files", "opts"],
        doc_j,
        |f: Dynamic, o: Map| join(&f, &o),
    );
    bind(
        engine,
        "squad_em",
        ["pred", "golds"],
        "Exact match after SQuAD v1.1 normalisation, max over golds (0 or 1).\n\nExample: `squad_em(\"The Eiffel Tower\", [\"Eiffel Tower\", \"the tower\"])` is 1.0 (articles and case are ignored).",
        |p: &str, g: Dynamic| -> RhaiResult<FLOAT> {
            squad_em(p, &golds("squad_em", &g)?).ctx("squad_em")
        },
    );
    bind(
        engine,
        "squad_f1",
        ["pred", "golds"],
        "Token F1 after SQuAD v1.1 normalisation, max over golds.\n\nExample: `squad_f1(\"in Paris France\", [\"Paris\"])` is 0.5.",
        |p: &str, g: Dynamic| -> RhaiResult<FLOAT> {
            squad_f1(p, &golds("squad_f1", &g)?).ctx("squad_f1")
        },
    );
    bind(engine, "mlqa_em", ["pred", "golds", "lang"], "Exact match with the official MLQA normalisation of `lang` (zh mixed segmentation, per-language articles).\n\nExample: `mlqa_em(\"el libro\", [\"libro\"], \"es\")` is 1.0 (Spanish articles are dropped).", |p: &str, g: Dynamic, l: &str| -> RhaiResult<FLOAT> {
        mlqa_em(p, &golds("mlqa_em", &g)?, l).ctx("mlqa_em")
    });
    bind(
        engine,
        "mlqa_f1",
        ["pred", "golds", "lang"],
        "Token F1 with the official MLQA normalisation of `lang`.\n\nExample: `mlqa_f1(\"der rote Apfel\", [\"roter Apfel\"], \"de\")` is 0.5.",
        |p: &str, g: Dynamic, l: &str| -> RhaiResult<FLOAT> {
            mlqa_f1(p, &golds("mlqa_f1", &g)?, l).ctx("mlqa_f1")
        },
    );
    let rg = |p: &str, r: &str, o: &Map| -> RhaiResult<Map> {
        let _: RougeOpts = parse_opts("rouge", o)?;
        Ok(row_to_map(&rouge(p, r).to_row()))
    };
    let doc_r = "Multilingual ROUGE-1/2/L F-measures #{ rouge1, rouge2, rougeL } (non-Latin scripts kept; CJK/Thai by character). Option lang is accepted for compatibility.\n\nExample: `let r = rouge(\"the cat sat\", \"the cat sat down\"); print(r.rougeL);`";
    bind(
        engine,
        "rouge",
        ["pred", "reference"],
        doc_r,
        move |p: &str, r: &str| rg(p, r, &Map::new()),
    );
    bind(
        engine,
        "rouge",
        ["pred", "reference", "opts"],
        doc_r,
        move |p: &str, r: &str, o: Map| rg(p, r, &o),
    );
    let f1 = |p: &Array, g: &Array, o: &Map| -> RhaiResult<FLOAT> {
        let o: F1Opts = parse_opts("f1_score", o)?;
        let avg: Average = o.average.parse().ctx("f1_score")?;
        f1_score(
            &strings("f1_score", "preds", p)?,
            &strings("f1_score", "golds", g)?,
            avg,
        )
        .ctx("f1_score")
    };
    let doc_f = "F1 over the gold labels, `average`: \"micro\" | \"macro\". Predictions matching no gold label count as misses of their gold class only.\n\nExample: `f1_score([\"a\", \"b\", \"b\"], [\"a\", \"b\", \"a\"], #{ average: \"macro\" })`";
    bind(
        engine,
        "f1_score",
        ["preds", "golds"],
        doc_f,
        move |p: Array, g: Array| f1(&p, &g, &Map::new()),
    );
    bind(
        engine,
        "f1_score",
        ["preds", "golds", "opts"],
        doc_f,
        move |p: Array, g: Array, o: Map| f1(&p, &g, &o),
    );
    bind(engine, "layer_languages", ["m", "texts", "opts"], "
        Logit lens per layer: the proportion of top-k decoded tokens identified as each of `langs` and \"other\", averaged over texts.
        Options: langs, top_k (1), positions (\"all\" | \"last\"). Returns a Table with one row per hidden state (0 = embeddings): `layer`, one column per language, `other`, `n_texts`.
        Tokens are identified with lingua restricted to `langs` (ISO 639-1 or 639-3 codes, e.g. \"sw\", \"urd\", \"zh_CN\"; each language once). Supported: ar bg bn de el en es et fi fr hi id it ja ko ru sw ta te th tr ur vi zh; other codes are an error that lists these.
        Tokens without letters, in a script none of `langs` uses, or that lingua cannot decide between `langs` count as `other`. Give at least two languages: with one, lingua counts only tokens carrying that language's distinctive n-grams.

        ```rhai
        let lens = m.layer_languages([\"Open the file\", \"Fungua faili\", \"فائل کھولیں\"], #{ langs: [\"en\", \"sw\", \"ur\"], top_k: 3 });
        print(lens.to_text());
        ```", |m: &mut Handle<Model>, texts: Array, o: Map| -> RhaiResult<T> {
        let o: LensOpts = parse_opts("layer_languages", &o)?;
        let texts = strings("layer_languages", "texts", &texts)?;
        let rows = m.borrow("layer_languages")?.layer_languages(&texts, &o.langs, o.top_k, &o.positions).ctx("layer_languages")?;
        Ok(table_of(rows))
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn eval(code: &str) -> Result<rhai::Dynamic, String> {
        let mut host = crate::api::host().capture_output().build();
        host.eval(code).map_err(|e| e.to_string())
    }

    fn field(m: &rhai::Dynamic, k: &str) -> rhai::Dynamic {
        m.clone().cast::<rhai::Map>()[k].clone()
    }

    /// Writes an items file of xnli/en items `en-test-<i>` with these outcomes, in `order`.
    fn items(dir: &std::path::Path, name: &str, correct: &[bool], order: &[usize]) -> String {
        let recs: Vec<crate::value::Row> = order
            .iter()
            .map(|&i| {
                let r = json!({
                    "task": "xnli", "lang": "en", "id": format!("en-test-{i}"),
                    "prompt_hash": format!("h{i}"), "prediction": 0, "gold": 0,
                    "choices": ["a", "b", "c"], "scores": [-1.0, -2.0, -3.0],
                    "correct": correct[i], "metrics": {"acc": f64::from(u8::from(correct[i]))},
                });
                r.as_object().cloned().unwrap_or_default()
            })
            .collect();
        let p = dir.join(name).display().to_string();
        crate::eval::write_items(&p, &recs).unwrap();
        p
    }

    #[test]
    fn join_items_binding_feeds_mcnemar_and_permutation_test() {
        let dir = tempfile::tempdir().unwrap();
        // a = 1 1 0 1 1 0 1 1, b = 0 1 0 0 1 1 0 0 (b written in reverse order).
        let a = [true, true, false, true, true, false, true, true];
        let b = [false, true, false, false, true, true, false, false];
        let fwd: Vec<usize> = (0..8).collect();
        let rev: Vec<usize> = (0..8).rev().collect();
        let pa = items(dir.path(), "a.jsonl", &a, &fwd);
        let pb = items(dir.path(), "b.jsonl", &b, &rev);
        let head = format!("let pa = {pa:?}; let pb = {pb:?};\n");
        // n01 = 4, n10 = 1: exact p = 0.375 (the mcnemar doc example, realigned by id).
        let m = eval(&format!(
            "{head}let j = join_items(#{{ \"lora/seed1\": pa, \"dora/seed1\": pb }});\nmcnemar(j.column(\"lora/seed1\"), j.column(\"dora/seed1\"))"
        ))
        .unwrap();
        assert_eq!(field(&m, "n01").as_int().unwrap(), 4);
        assert_eq!(field(&m, "n10").as_int().unwrap(), 1);
        assert!((field(&m, "p").as_float().unwrap() - 0.375).abs() < 1e-15);
        // Map keys give alphabetical columns; an array keeps its order. d = b − a =
        // (−1, 0, 0, −1, 0, +1, −1, −1): diff = −3/8. Each of the 2⁵ sign patterns of the five
        // non-zero dᵢ occurs 2³ times; sum ≤ −3 needs ≥ 4 minus signs (C(5,4) + C(5,5) = 6
        // patterns), so p_less = 48/256 and the two-sided p = 96/256 = 0.375 (the exact
        // McNemar p, as it must be for 0/1 outcomes).
        let cols = eval(&format!(
            "{head}join_items(#{{ \"z\": pa, \"b\": pb }}).columns()"
        ))
        .unwrap()
        .into_array()
        .unwrap();
        let cols: Vec<String> = cols.into_iter().map(|c| c.into_string().unwrap()).collect();
        assert_eq!(cols, ["task", "lang", "id", "b", "z"]);
        let r = eval(&format!(
            "{head}let j = join_items([#{{ label: \"a\", path: pa }}, #{{ label: \"b\", path: pb, sha256: sha256_file(pb) }}], #{{ metric: \"acc\" }});\n\
             if j.columns()[3] != \"a\" {{ throw \"order\"; }}\npermutation_test(j.column(\"a\"), j.column(\"b\"))"
        ))
        .unwrap();
        assert!((field(&r, "diff").as_float().unwrap() + 3.0 / 8.0).abs() < 1e-15);
        assert!(field(&r, "exact").as_bool().unwrap());
        assert!((field(&r, "p").as_float().unwrap() - 0.375).abs() < 1e-15);
        // A recorded sha256 in the map form.
        let e = eval(&format!(
            "{head}join_items(#{{ a: pa, b: #{{ path: pb, sha256: sha256_file(pa) }} }})"
        ))
        .unwrap_err();
        assert!(
            e.contains("join_items: ") && e.contains("b.jsonl: its sha256 is"),
            "{e}"
        );
        for (code, want) in [
            ("join_items(#{})", "join_items: no items files given"),
            ("join_items(5)", "files must be a map"),
            ("join_items(#{ a: pa }, #{ metrik: \"acc\" })", "metrik"),
            ("join_items(#{ a: 3 })", "files['a']"),
            ("join_items([#{ path: pa }])", "files[0]"),
            ("join_items([#{ label: \"a\", path: pa, sha: 1 }])", "sha"),
            (
                "join_items(#{ a: pa, b: \"/nonexistent/x.jsonl\" })",
                "join_items: cannot read items file /nonexistent/x.jsonl",
            ),
        ] {
            let e = eval(&format!("{head}{code}")).unwrap_err();
            assert!(e.contains(want), "{code}: {e}");
        }
    }
}
