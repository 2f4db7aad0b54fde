//! Bindings of the "Training" section of docs/API.md.

use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};

use super::args::{id_rows, label_rows};
use super::data::rows_of;
use super::tensor::to_map;
use crate::host::{bind, parse_opts, Handle, ResultExt, RhaiResult, Session};
use crate::lab::Model;
use crate::progress::Progress;
use crate::train::trainer::TrainEvent;
use crate::train::{StepOptions, TrainOptions};

fn report_map(r: &crate::train::trainer::TrainReport) -> Map {
    let mut m = Map::new();
    m.insert("steps".into(), Dynamic::from_int(r.steps as INT));
    m.insert("epochs".into(), Dynamic::from_float(r.epochs));
    m.insert("final_loss".into(), Dynamic::from_float(r.final_loss));
    m.insert(
        "losses".into(),
        Dynamic::from_array(r.losses.iter().map(|&l| Dynamic::from_float(l)).collect()),
    );
    m.insert("tokens".into(), Dynamic::from_int(r.tokens as INT));
    m.insert("seconds".into(), Dynamic::from_float(r.seconds));
    m.insert("tokens_per_s".into(), Dynamic::from_float(r.tokens_per_s));
    m.insert(
        "peak_bytes".into(),
        r.peak_bytes
            .map_or(Dynamic::UNIT, |b| Dynamic::from_int(b as INT)),
    );
    m.insert("truncated".into(), Dynamic::from_int(r.truncated as INT));
    m.insert(
        "resumed_from".into(),
        Dynamic::from_int(r.resumed_from as INT),
    );
    m
}

fn train(s: &Session, m: &Handle<Model>, data: &Dynamic, opts: &Map) -> RhaiResult<Map> {
    let o: TrainOptions = parse_opts("train", opts)?;
    o.validate().ctx("train")?;
    let rows = rows_of("train", data)?;
    let mut bar: Option<Progress> = None;
    let show = o.progress;
    let rep = s.reporter().clone();
    let mut on_event = |e: TrainEvent<'_>| match e {
        TrainEvent::Warning(w) => rep.warn(&format!("train: {w}")),
        TrainEvent::Step(s) if show => {
            let b = bar.get_or_insert_with(|| Progress::new(s.total as u64, "training"));
            b.set_position(s.step as u64);
            let tps = if s.seconds > 0.0 {
                s.tokens as f64 / s.seconds
            } else {
                0.0
            };
            b.set_message(format!(
                "loss {:.4} lr {:.2e} {:.0} tok/s",
                s.loss, s.lr, tps
            ));
        }
        TrainEvent::Step(_) => {}
    };
    let interrupted = || crate::interrupt::is_set();
    let result = m
        .borrow_mut("train")?
        .train(&rows, &o, &mut on_event, &interrupted);
    if let Some(b) = bar.as_mut() {
        b.finish();
    }
    Ok(report_map(&result.ctx("train")?))
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"Training updates the adapters that are active and trainable (with one adapter: that adapter;
see `set_active` and `set_trainable`); the base weights and every other adapter stay frozen, and the
optimizer state is kept while the same adapters train. `m.train` is the
whole recipe (templates, batching, schedule, checkpoints); `m.loss`, `m.train_step` and
`m.gradients` are exact single steps for checks and hand-written loops."#;

/// Registers the training bindings.
pub fn register(engine: &mut Engine, session: &Session) {
    let doc = "
        Trains the active, trainable adapters on a Dataset (or array of maps) with the HF/PyTorch recipe. Keys: template (\"alpaca\" or a string
        with {field} placeholders ending in {output}), lr, epochs, max_steps, batch_size, grad_accum, max_len, schedule
        (cosine | linear | constant), warmup_steps, warmup_ratio, weight_decay, betas, eps, max_grad_norm, seed, train_on_prompt,
        packing, checkpoint_dir, checkpoint_every, keep_checkpoints (newest checkpoints kept, default 2), resume (from the newest intact
        checkpoint; an unusable one is skipped with a warning), progress, log_file (one JSON line per step; a resumed run keeps the
        lines up to its checkpoint, a fresh run starts the file anew).
        Returns #{ steps, epochs, final_loss, losses, tokens, seconds, tokens_per_s, peak_bytes, truncated, resumed_from }.

        ```rhai
        let rep = m.train(ui_strings(\"train\", [\"ur\"]).take(64), #{ lr: 2e-4, epochs: 1, batch_size: 8 });
        print(rep.final_loss);
        ```";
    let s = session.clone();
    bind(
        engine,
        "train",
        ["m", "data"],
        doc,
        move |m: &mut Handle<Model>, d: Dynamic| train(&s, m, &d, &Map::new()),
    );
    let s = session.clone();
    bind(
        engine,
        "train",
        ["m", "data", "opts"],
        doc,
        move |m: &mut Handle<Model>, d: Dynamic, o: Map| train(&s, m, &d, &o),
    );
    bind(
        engine,
        "loss",
        ["m", "batch", "labels"],
        "Mean next-token cross-entropy (HF convention; labels -100 are ignored).\n\nExample: `let ids = m.encode(\"Hello world\"); print(m.loss([ids], [ids]));` (labels = ids: every next token counts)",
        |m: &mut Handle<Model>, b: Array, l: Array| -> RhaiResult<FLOAT> {
            let (b, l) = (id_rows("loss", &b)?, label_rows("loss", &l)?);
            m.borrow("loss")?.loss(&b, &l).ctx("loss")
        },
    );
    let doc_step = "One AdamW step on the active, trainable adapters (torch semantics); returns the loss. Options: lr, betas, eps, weight_decay, max_grad_norm.\n\nExample: `let ids = m.encode(\"Hello world\"); let loss = m.train_step([ids], [ids], #{ lr: 1e-3, max_grad_norm: 1.0 });`";
    let step = |m: &Handle<Model>, b: &Array, l: &Array, o: &Map| -> RhaiResult<FLOAT> {
        let o: StepOptions = parse_opts("train_step", o)?;
        let (b, l) = (id_rows("train_step", b)?, label_rows("train_step", l)?);
        m.borrow_mut("train_step")?
            .train_step(&b, &l, &o)
            .ctx("train_step")
    };
    bind(
        engine,
        "train_step",
        ["m", "batch", "labels"],
        doc_step,
        move |m: &mut Handle<Model>, b: Array, l: Array| step(m, &b, &l, &Map::new()),
    );
    bind(
        engine,
        "train_step",
        ["m", "batch", "labels", "opts"],
        doc_step,
        move |m: &mut Handle<Model>, b: Array, l: Array, o: Map| step(m, &b, &l, &o),
    );
    bind(
        engine,
        "gradients",
        ["m", "batch", "labels"],
        "Gradients of the loss for every trainable tensor of the active, trainable adapters (keys `<module>.<param>`; with several such adapters, all but the first carry `<adapter>/` in front).\n\n```rhai\nlet ids = m.encode(\"Hello world\");\nlet g = m.gradients([ids], [ids]);\nfor k in g.keys() { print(`${k}: ${g[k].shape()}`); }\n```",
        |m: &mut Handle<Model>, b: Array, l: Array| -> RhaiResult<Map> {
            let (b, l) = (id_rows("gradients", &b)?, label_rows("gradients", &l)?);
            let (_, g) = m
                .borrow_mut("gradients")?
                .gradients(&b, &l)
                .ctx("gradients")?;
            Ok(to_map(g))
        },
    );
}
