//! `run_cells`: run the cells of a study one by one, with resumable, shardable JSON results.
//!
//! Each cell's result goes to `<out>/<name>/<cell-key>.json` (see [`crate::host::cells`] for the
//! key and the file format). A cell whose file exists is skipped; `--shard I/N` runs only cells
//! whose 0-based index `i` satisfies `i % N == I - 1`; `--collect` runs nothing and assembles
//! what the shards wrote. The closure is called from native code with
//! `FnPtr::call_within_context` (rhai book, `rust/fn-ptr.md`).

use std::time::SystemTime;

use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext};
use serde::Deserialize;

use std::collections::BTreeMap;

use crate::host::cells::{canonical_json, cell_key, settings_diff, CellRecord, CellStore};
use crate::host::convert::{from_json, to_json};
use crate::host::files::{rfc3339_utc, unix_seconds};
use crate::host::session::parse_setting_value;
use crate::host::{bind, fail, interrupted, parse_opts, ResultExt, RhaiResult, Session};
use crate::value::{Row, Value};

const FN: &str = "run_cells";

/// Options of `run_cells`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CellOpts {
    /// Recompute cells even when their result file exists (this shard's cells only).
    rerun: bool,
    /// `--set` keys that do not change a cell's result (e.g. which phase of a study runs):
    /// a stored result made under another value of these is reused.
    ignore_settings: Vec<String>,
}

const DOC: &str = "
    Runs `f(cell)` for every cell that has no stored result and returns all results.

    `cells` is an array of maps of plain values (see `std/study`: `grid`, `repeat`); `f`
    returns a map of metrics, optionally with a `provenance` map (e.g. data file hashes) that
    is stored with the result. Each result is written atomically to
    `<out>/<name>/<key>.json` as `{cell, metrics, provenance}`, where `key` is the first 12 hex
    characters of the SHA-256 of the cell's canonical JSON (sorted keys, no spaces; `8` and
    `8.0` differ). Provenance: peftlab version, git commit of the script's directory (if any),
    start/finish time (RFC 3339 UTC), seconds, cell key and 0-based index, `seed` when the cell has one,
    the `--set` settings, then the closure's `provenance` entries.

    Re-running skips cells whose file exists (a file holding another cell is an error). A stored
    result is reused only under the `--set` settings it was made with (compared by value:
    `lr=2e-4` equals `lr=0.0002`); one made under other settings is an error naming the setting
    (recompute with `peftlab run --rerun` or the option `rerun: true`, or use another `--out`). A result made by a different script
    text is reused with a warning. Results stored by older versions without these records count
    as made under their `provenance.settings` (none if absent), with an unknown script text.
    `--shard I/N` runs only the cells with 0-based index `i` where `i % N == I - 1` (so
    `--shard 1/2` runs cells 0, 2, 4, ...); `--collect` runs nothing and fails if a result is
    missing (unless `--shard` is also given).

    Returns, in cell order, one map per available result: the cell's fields and the metrics
    (a metric may not contradict a cell field of the same name).

    ```rhai
    import \"std/study\" as study;
    let rows = run_cells(\"grid\", study::grid(#{ r: [8, 16], seed: [1, 2] }), |cell| {
        #{ acc: 0.5 + cell.r / 100.0, provenance: #{ note: \"demo\" } }
    });
    ```";

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"A study is a list of cells (maps of plain values, built with `std/study`) and a closure that
computes the metrics of one cell. `run_cells` stores each result as it is made, so an
interrupted or sharded study resumes where it stopped."#;

/// Registers `run_cells`.
pub fn register(engine: &mut Engine, session: &Session) {
    let s = session.clone();
    bind(
        engine,
        FN,
        ["name", "cells", "f"],
        DOC,
        move |ctx: NativeCallContext, name: &str, cells: Array, f: FnPtr| {
            let rows = run_cells(&ctx, &s, name, cells.clone(), f, Map::new())?;
            as_results_table(&cells, rows)
        },
    );
    let s = session.clone();
    let doc_opts = format!(
        "{DOC}\n\n    Options: `rerun` (bool, default false): recompute this shard's cells even if stored;\n    \
         `ignore_settings` (array of `--set` keys, default []): settings that do not change a cell's\n    \
         result (e.g. which phase of a study runs), so a result stored under another value of them is reused.\n\n    \
         Example: `run_cells(\"grid\", cells, |c| #{{ acc: 0.5 }}, #{{ ignore_settings: [\"phase\"] }})`"
    );
    bind(
        engine,
        FN,
        ["name", "cells", "f", "opts"],
        &doc_opts,
        move |ctx: NativeCallContext, name: &str, cells: Array, f: FnPtr, opts: Map| {
            let rows = run_cells(&ctx, &s, name, cells.clone(), f, opts)?;
            as_results_table(&cells, rows)
        },
    );
}

/// The collected results as a Table (one row per completed cell): the cell's fields first, in
/// the order of the first cell, then the metrics.
fn as_results_table(cells: &Array, rows: Array) -> RhaiResult<super::table::T> {
    let first: Vec<String> = cells
        .first()
        .and_then(|c| {
            c.read_lock::<Map>()
                .map(|m| m.keys().map(|k| k.to_string()).collect())
        })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let Value::Object(obj) = to_json(r).map_err(|e| fail(format!("{FN}: {e}")))? else {
            return Err(fail(format!("{FN}: a result row is not a map")));
        };
        let mut row = Row::new();
        for k in &first {
            if let Some(v) = obj.get(k) {
                row.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in obj {
            row.entry(k).or_insert(v);
        }
        out.push(row);
    }
    Ok(super::table::table_of(out))
}

/// A cell ready to run: its map, JSON form and key.
struct Cell {
    map: Map,
    json: Value,
    key: String,
}

fn label(json: &Value) -> String {
    let Value::Object(m) = json else {
        return json.to_string();
    };
    let text: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::value::as_key(v)))
        .collect();
    let mut s = text.join(" ");
    if s.chars().count() > 100 {
        s = s.chars().take(97).collect::<String>() + "...";
    }
    s
}

fn prepare(cells: Array) -> RhaiResult<Vec<Cell>> {
    let mut out: Vec<Cell> = Vec::with_capacity(cells.len());
    for (i, c) in cells.into_iter().enumerate() {
        let c = if c.is_shared() { c.flatten() } else { c };
        let tname = c.type_name();
        let Some(map) = c.try_cast::<Map>() else {
            return Err(fail(format!(
                "{FN}: cell {} is not a map (got {tname})",
                i + 1
            )));
        };
        let json = to_json(&Dynamic::from_map(map.clone()))
            .map_err(|e| fail(format!("{FN}: cell {}: {e}", i + 1)))?;
        let key = cell_key(&json);
        if let Some(j) = out.iter().position(|o| o.key == key) {
            return Err(fail(format!(
                "{FN}: cells {} and {} are identical ({})",
                j + 1,
                i + 1,
                label(&json)
            )));
        }
        out.push(Cell { map, json, key });
    }
    Ok(out)
}

/// Splits the closure's result into metrics and provenance and builds the record.
fn make_record(
    s: &Session,
    name: &str,
    cell: &Cell,
    index: usize,
    out: Dynamic,
    started: SystemTime,
) -> RhaiResult<CellRecord> {
    let finished = SystemTime::now();
    let tname = out.type_name();
    let Some(mut metrics) = out.try_cast::<Map>() else {
        return Err(fail(format!(
            "{FN}: the cell function must return a map of metrics (got {tname})"
        )));
    };
    let extra = metrics.remove("provenance").unwrap_or(Dynamic::UNIT);
    let metrics = match to_json(&Dynamic::from_map(metrics))
        .map_err(|e| fail(format!("{FN}: metric {e}")))?
    {
        Value::Object(m) => m,
        _ => Row::new(),
    };
    if let Value::Object(fields) = &cell.json {
        for (k, v) in &metrics {
            if fields.get(k).is_some_and(|c| c != v) {
                return Err(fail(format!("{FN}: metric '{k}' = {v} contradicts the cell field '{k}' = {}; rename the metric", fields[k])));
            }
        }
    }
    let mut prov = Row::new();
    prov.insert("peftlab_version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(commit) = s.git_commit() {
        prov.insert("git_commit".into(), commit.into());
    }
    if let Some(script) = s.script() {
        prov.insert(
            "script".into(),
            script.to_string_lossy().into_owned().into(),
        );
    }
    prov.insert("study".into(), name.into());
    let settings_now = current_settings(s);
    prov.insert("cell_key".into(), cell.key.clone().into());
    prov.insert("cell_index".into(), (index as u64).into());
    prov.insert("started".into(), rfc3339_utc(started).into());
    prov.insert("finished".into(), rfc3339_utc(finished).into());
    let secs = unix_seconds(finished) - unix_seconds(started);
    prov.insert(
        "seconds".into(),
        crate::value::num((secs * 1000.0).round() / 1000.0),
    );
    if let Some(seed) = cell.json.get("seed") {
        prov.insert("seed".into(), seed.clone());
    }
    let settings: Row = s
        .settings()
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.raw.clone())))
        .collect();
    if !settings.is_empty() {
        prov.insert("settings".into(), Value::Object(settings));
    }
    if !extra.is_unit() {
        match to_json(&extra).map_err(|e| fail(format!("{FN}: provenance {e}")))? {
            Value::Object(m) => prov.extend(m),
            other => {
                return Err(fail(format!(
                    "{FN}: 'provenance' must be a map, got {other}"
                )))
            }
        }
    }
    Ok(CellRecord {
        cell: cell.json.clone(),
        metrics,
        provenance: prov,
        settings: Some(settings_now),
        script_sha256: script_sha256(s),
    })
}

/// This run's `--set` settings as typed.
fn current_settings(s: &Session) -> BTreeMap<String, String> {
    s.settings()
        .iter()
        .map(|(k, v)| (k.clone(), v.raw.clone()))
        .collect()
}

/// Whether two `--set` texts give the same value (`2e-4` and `0.0002` do).
fn same_setting(a: &str, b: &str) -> bool {
    let norm = |t: &str| to_json(&parse_setting_value(t)).map(|v| canonical_json(&v));
    match (norm(a), norm(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// SHA-256 of the script text (None without a readable script file).
fn script_sha256(s: &Session) -> Option<String> {
    let text = std::fs::read(s.script()?).ok()?;
    Some(crate::host::files::sha256_bytes(&text))
}

/// Refuses a stored result made under other `--set` settings. `stored` and `now` leave out the
/// settings the caller ignores.
fn check_settings(
    name: &str,
    index: usize,
    n: usize,
    cell: &Cell,
    stored: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    path: &std::path::Path,
) -> RhaiResult<()> {
    let diff = settings_diff(stored, now, same_setting);
    if diff.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = diff.iter().map(|d| format!("'{}' {d}", d.key)).collect();
    Err(fail(format!(
        "{FN} '{name}': the stored result of cell [{}/{n}] {} ({}) in {} was made under other settings: {}; \
         recompute with --rerun (or run_cells(..., #{{ rerun: true }})) or use another --out",
        index + 1,
        cell.key,
        label(&cell.json),
        path.display(),
        what.join("; ")
    )))
}

fn run_cells(
    ctx: &NativeCallContext,
    s: &Session,
    name: &str,
    cells: Array,
    f: FnPtr,
    opts: Map,
) -> RhaiResult<Array> {
    let o: CellOpts = parse_opts(FN, &opts)?;
    let store = CellStore::new(s.out_dir(), name).ctx(FN)?;
    let cells = prepare(cells)?;
    let (shard, collect, rep) = (s.shard(), s.collect(), s.reporter());
    let n = cells.len();
    let mut records: Vec<Option<CellRecord>> = Vec::with_capacity(n);
    let mut settings_now = current_settings(s);
    settings_now.retain(|k, _| !o.ignore_settings.contains(k));
    let script_now = script_sha256(s);
    let mut other_script = 0usize;
    for (i, c) in cells.iter().enumerate() {
        let mine = shard.is_none_or(|sh| sh.owns(i));
        let stored = if (o.rerun || s.rerun()) && mine && !collect {
            None
        } else {
            store.load(&c.key, &c.json).ctx(FN)?
        };
        if let Some(rec) = &stored {
            let mut stored_settings = rec.stored_settings();
            stored_settings.retain(|k, _| !o.ignore_settings.contains(k));
            check_settings(
                name,
                i,
                n,
                c,
                &stored_settings,
                &settings_now,
                &store.path(&c.key),
            )?;
            if let (Some(a), Some(b)) = (&rec.script_sha256, &script_now) {
                other_script += usize::from(a != b);
            }
        }
        records.push(stored);
    }
    if other_script > 0 {
        rep.warn(&format!(
            "{FN} '{name}': {other_script} stored result(s) in {} were made by a different version of the script text; \
             they are reused (recompute with --rerun (or run_cells(..., #{{ rerun: true }})) or use another --out)",
            store.dir().display()
        ));
    }
    let done = records.iter().filter(|r| r.is_some()).count();
    let runs = |i: usize| !collect && shard.is_none_or(|sh| sh.owns(i));
    let todo = (0..n).filter(|&i| records[i].is_none() && runs(i)).count();
    let mode = match (collect, shard) {
        (true, _) => " (collect only)".to_string(),
        (false, Some(sh)) => format!(" (shard {sh})"),
        _ => String::new(),
    };
    rep.info(&format!(
        "{FN} '{name}': {n} cells, {done} done, {todo} to run{mode}; results in {}",
        store.dir().display()
    ));
    for (i, c) in cells.iter().enumerate() {
        if records[i].is_some() {
            if runs(i) {
                rep.info(&format!(
                    "  skip [{}/{n}] {} {} (done)",
                    i + 1,
                    c.key,
                    label(&c.json)
                ));
            }
            continue;
        }
        if !runs(i) {
            continue;
        }
        interrupted()?;
        rep.info(&format!(
            "  run  [{}/{n}] {} {}",
            i + 1,
            c.key,
            label(&c.json)
        ));
        let started = SystemTime::now();
        let out: Dynamic =
            crate::host::call_closure(ctx, FN, &f, vec![Dynamic::from_map(c.map.clone())])?;
        let rec = make_record(s, name, c, i, out, started)?;
        store.save(&c.key, &rec).ctx(FN)?;
        records[i] = Some(rec);
    }
    let missing: Vec<usize> = (0..n).filter(|&i| records[i].is_none()).collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .take(5)
            .map(|&i| format!("[{}] {}", i + 1, label(&cells[i].json)))
            .collect();
        let more = if missing.len() > 5 {
            format!(", ... ({} more)", missing.len() - 5)
        } else {
            String::new()
        };
        let msg = format!(
            "{} of {n} cells have no result in {}: {}{more}",
            missing.len(),
            store.dir().display(),
            list.join(", ")
        );
        if collect && shard.is_none() {
            return Err(fail(format!("{FN}: {msg}; run all shards first")));
        }
        rep.info(&format!("{FN} '{name}': {msg} (other shards)"));
    }
    Ok(cells
        .iter()
        .zip(records)
        .filter_map(|(c, r)| {
            let r = r?;
            let mut row = c.map.clone();
            for (k, v) in &r.metrics {
                row.insert(k.as_str().into(), from_json(v));
            }
            // Cell fields as stored JSON, so that fresh and collected results are identical.
            if let Value::Object(fields) = &r.cell {
                for (k, v) in fields {
                    row.insert(k.as_str().into(), from_json(v));
                }
            }
            Some(Dynamic::from_map(row))
        })
        .collect())
}
