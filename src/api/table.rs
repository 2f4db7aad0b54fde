//! Bindings of `Table` (docs/API.md "Tables and statistics"): rows of maps with tidy CSV/JSON
//! output, grouping, pivoting, plots.

use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext, INT};

use super::args::strings;
use crate::host::convert::{from_json, map_to_row, row_to_map, to_json};
use crate::host::{
    bind, call_closure, fail, register_handle, Handle, ResultExt, RhaiResult, Session,
};
use crate::plot::{plot_bars, plot_heatmap, plot_lines, BarsOptions, HeatmapOptions, LinesOptions};
use crate::table::Table;
use crate::value::Value;

/// A script table.
pub type T = Handle<Table>;

/// A table from rows (for other bindings).
pub fn table_of(rows: Vec<crate::value::Row>) -> T {
    Handle::new(Table::from_rows(rows))
}

/// A Table handle or an array of maps, as a Table.
pub fn as_table(fn_name: &str, v: &Dynamic) -> RhaiResult<Table> {
    if let Some(t) = v.clone().try_cast::<T>() {
        return Ok(t.borrow(fn_name)?.clone());
    }
    let j = to_json(v).map_err(|e| fail(format!("{fn_name}: {e}")))?;
    match j {
        Value::Array(items) => Table::from_values(items).ctx(fn_name),
        _ => Err(fail(format!(
            "{fn_name}: expected a Table or an array of maps"
        ))),
    }
}

fn opts_row(fn_name: &str, m: &Map) -> RhaiResult<crate::value::Row> {
    map_to_row(m).map_err(|e| fail(format!("{fn_name}: {e}")))
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"A `Table` holds rows of maps (columns in order of first appearance); `print(t)` shows a
one-line summary, `t.to_text()` the aligned rows. Results of `run_cells`, `evaluate`,
`join_items`, `tukey_hsd` and the mixed model are Tables. The statistics functions take a Table
or an array of maps.

A column that no row has is an error listing the columns, or saying that the table is empty (no
rows); a null where a number is needed is reported as "row i has a missing value (null)" (a NaN
put into `table()` is stored as null, so it reads the same). Every plot takes `title` and writes
an SVG file to `path`, returning the path."#;

/// Registers the table and plot bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    register_handle::<Table>(engine, "Table");
    bind(
        engine,
        "to_text",
        ["t"],
        "The table as aligned text (header, rule, one line per row).\n\n```rhai\nprint(results.to_text());\n```",
        |t: &mut T| -> RhaiResult<String> { Ok(t.borrow("to_text")?.to_text()) },
    );
    bind(engine, "table", ["rows"], "A table from an array of maps (columns in order of first appearance).\n\n```rhai\nlet t = table([#{ method: \"lora\", f1: 0.61 }, #{ method: \"dora\", f1: 0.63 }]);\n```", |a: Array| -> RhaiResult<T> {
        Ok(Handle::new(as_table("table", &Dynamic::from_array(a))?))
    });
    bind(
        engine,
        "rows",
        ["t"],
        "The rows as an array of maps.\n\n```rhai\nfor r in results.rows() { print(`${r.method}: ${r.f1}`); }\n```",
        |t: &mut T| -> RhaiResult<Array> {
            Ok(t.borrow("rows")?
                .rows()
                .iter()
                .map(|r| Dynamic::from_map(row_to_map(r)))
                .collect())
        },
    );
    bind(
        engine,
        "len",
        ["t"],
        "Number of rows.\n\nExample: `table([#{ a: 1 }, #{ a: 2 }]).len()` is 2.",
        |t: &mut T| -> RhaiResult<INT> { Ok(t.borrow("len")?.len() as INT) },
    );
    bind(
        engine,
        "columns",
        ["t"],
        "Column names in order.\n\nExample: `table([#{ method: \"lora\", f1: 0.61 }]).columns()` is `[\"f1\", \"method\"]` (a map literal keeps its keys in alphabetical order).",
        |t: &mut T| -> RhaiResult<Array> {
            Ok(t.borrow("columns")?
                .columns()
                .iter()
                .map(|c| Dynamic::from(c.clone()))
                .collect())
        },
    );
    let doc_index = "
        Row `i` as a map (`t[i]`); a negative `i` counts from the end.

        ```rhai
        let t = table([#{ method: \"lora\", f1: 0.61 }, #{ method: \"dora\", f1: 0.63 }]);
        print(t[1].method);   // dora
        ```";
    bind(
        engine,
        "index$get$",
        ["t", "i"],
        doc_index,
        |t: &mut T, i: INT| -> RhaiResult<Map> {
            let tb = t.borrow("t[i]")?;
            let j =
                crate::host::convert::row_index("t[i]", i, tb.len(), "a table").map_err(fail)?;
            Ok(row_to_map(&tb.rows()[j]))
        },
    );
    bind(
        engine,
        "filter",
        ["t", "predicate"],
        "Rows for which the closure returns true.\n\nExample: `let ur = results.filter(|r| r.lang == \"ur\" && r.f1 > 0.5);`",
        |ctx: NativeCallContext, t: &mut T, f: FnPtr| -> RhaiResult<T> {
            let tb = t.borrow("filter")?.clone();
            let mut keep = Vec::new();
            for r in tb.rows() {
                let v = call_closure(&ctx, "filter", &f, vec![Dynamic::from_map(row_to_map(r))])?;
                if v.as_bool().map_err(|t| {
                    fail(format!(
                        "filter: the closure must return a bool (got a {t})"
                    ))
                })? {
                    keep.push(r.clone());
                }
            }
            Ok(table_of(keep))
        },
    );
    bind(
        engine,
        "column",
        ["t", "name"],
        "The values of one column.\n\nExample: `let f1 = results.column(\"f1\");`",
        |t: &mut T, n: &str| -> RhaiResult<Array> {
            Ok(t.borrow("column")?
                .column(n)
                .ctx("column")?
                .iter()
                .map(from_json)
                .collect())
        },
    );
    bind(
        engine,
        "select",
        ["t", "columns"],
        "A table with only the given columns.\n\nExample: `print(results.select([\"method\", \"f1\"]).to_text());`",
        |t: &mut T, c: Array| -> RhaiResult<T> {
            let c = strings("select", "columns", &c)?;
            let refs: Vec<&str> = c.iter().map(String::as_str).collect();
            Ok(Handle::new(
                t.borrow("select")?.select(&refs).ctx("select")?,
            ))
        },
    );
    bind(
        engine,
        "sort_by",
        ["t", "column", "descending"],
        "Rows sorted by a column.\n\nExample: `let best_first = results.sort_by(\"f1\", true);` (`true` = descending)",
        |t: &mut T, c: &str, d: bool| -> RhaiResult<T> {
            Ok(Handle::new(
                t.borrow("sort_by")?.sort_by(c, d).ctx("sort_by")?,
            ))
        },
    );
    bind(
        engine,
        "concat",
        ["t", "other"],
        "Rows of both tables.\n\nExample: `let all = shard1.concat(shard2);`",
        |t: &mut T, o: T| -> RhaiResult<T> {
            let other = o.borrow("concat")?.clone();
            Ok(Handle::new(t.borrow("concat")?.concat(&other)))
        },
    );
    let gm = |t: &T, by: Vec<String>, v: &str| -> RhaiResult<T> {
        let refs: Vec<&str> = by.iter().map(String::as_str).collect();
        Ok(Handle::new(
            t.borrow("group_mean")?
                .group_mean(&refs, v)
                .ctx("group_mean")?,
        ))
    };
    let doc_gm = "Mean, n and sd of `value` per group of `by` (a column or an array of columns).\n\n```rhai\nt.group_mean([\"method\", \"ratio\"], \"f1\")\n```";
    bind(
        engine,
        "group_mean",
        ["t", "by", "value"],
        doc_gm,
        move |t: &mut T, by: &str, v: &str| gm(t, vec![by.to_string()], v),
    );
    bind(
        engine,
        "group_mean",
        ["t", "by", "value"],
        doc_gm,
        move |t: &mut T, by: Array, v: &str| gm(t, strings("group_mean", "by", &by)?, v),
    );
    bind(engine, "pivot", ["t", "row_key", "col_key", "value"], "A wide table: one row per `row_key`, one column per `col_key` value, cells the mean of `value`.\n\nExample: `print(results.pivot(\"method\", \"lang\", \"f1\").to_text());` (rows: methods, columns: languages)", |t: &mut T, r: &str, c: &str, v: &str| -> RhaiResult<T> {
        Ok(Handle::new(t.borrow("pivot")?.pivot(r, c, v).ctx("pivot")?))
    });
    bind(
        engine,
        "write_csv",
        ["t", "path"],
        "Writes a tidy CSV (pandas/R read it directly).\n\nExample: `write_csv(results, out_path(\"results.csv\"));`",
        |t: Dynamic, p: &str| -> RhaiResult<()> {
            as_table("write_csv", &t)?.write_csv(p).ctx("write_csv")
        },
    );
    bind(
        engine,
        "write_json",
        ["t", "path"],
        "Writes a JSON array of records.\n\nExample: `write_json(results, out_path(\"results.json\"));`",
        |t: Dynamic, p: &str| -> RhaiResult<()> {
            as_table("write_json", &t)?.write_json(p).ctx("write_json")
        },
    );
    bind(
        engine,
        "read_csv",
        ["path"],
        "Reads a CSV written by write_csv (numbers back as numbers).\n\nExample: `let t = read_csv(\"runs/grid/results.csv\");`",
        |p: &str| -> RhaiResult<T> { Ok(Handle::new(Table::read_csv(p).ctx("read_csv")?)) },
    );
    bind(
        engine,
        "read_json",
        ["path"],
        "Reads a JSON array of records (or JSON Lines) as a Table.\n\nExample: `let t = read_json(\"runs/grid/results.json\");`",
        |p: &str| -> RhaiResult<T> { Ok(Handle::new(Table::read_json(p).ctx("read_json")?)) },
    );
    bind(engine, "plot_heatmap", ["t", "opts"], "SVG heatmap of the mean `value` per (`x`, `y`); options x, y, value, path, title. Returns the path.\n\n```rhai\nplot_heatmap(t, #{ x: \"bits\", y: \"r\", value: \"score\", path: out_path(\"heatmap.svg\") });\n```", |t: Dynamic, o: Map| -> RhaiResult<String> {
        let opts = HeatmapOptions::from_row(&opts_row("plot_heatmap", &o)?).ctx("plot_heatmap")?;
        Ok(plot_heatmap(&as_table("plot_heatmap", &t)?, &opts).ctx("plot_heatmap")?.display().to_string())
    });
    bind(engine, "plot_bars", ["t", "opts"], "SVG bar chart of the mean `value` per `x` with error bars (`error`: \"ci95\" | \"sd\" | \"none\"), optional `group`; options x, value, error, group, path, title.\n\nExample: `plot_bars(results, #{ x: \"method\", value: \"f1\", group: \"lang\", error: \"ci95\", path: out_path(\"f1.svg\") });`", |t: Dynamic, o: Map| -> RhaiResult<String> {
        let opts = BarsOptions::from_row(&opts_row("plot_bars", &o)?).ctx("plot_bars")?;
        Ok(plot_bars(&as_table("plot_bars", &t)?, &opts).ctx("plot_bars")?.display().to_string())
    });
    bind(engine, "plot_lines", ["t", "opts"], "SVG line chart of `y` against `x`, one line per `series`; options x, y, series, path, title.\n\nExample: `plot_lines(log, #{ x: \"step\", y: \"loss\", series: \"method\", path: out_path(\"loss.svg\"), title: \"Training loss\" });`", |t: Dynamic, o: Map| -> RhaiResult<String> {
        let opts = LinesOptions::from_row(&opts_row("plot_lines", &o)?).ctx("plot_lines")?;
        Ok(plot_lines(&as_table("plot_lines", &t)?, &opts).ctx("plot_lines")?.display().to_string())
    });
}
