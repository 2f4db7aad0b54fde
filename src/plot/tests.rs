//! Plot tests: the SVGs parse as XML (roxmltree) and contain the expected number of marks,
//! found by their documented opacities.

use super::*;
use crate::table::Table;
use serde_json::json;

fn parse_count(svg: &str, tag: &str, opacity: f64) -> usize {
    let doc = roxmltree::Document::parse(svg).expect("valid XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let want = format!("{opacity}");
    doc.descendants()
        .filter(|n| n.tag_name().name() == tag && n.attribute("opacity") == Some(want.as_str()))
        .count()
}

fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("valid XML");
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

fn table(v: serde_json::Value) -> Table {
    match v {
        serde_json::Value::Array(a) => Table::from_values(a).unwrap(),
        _ => unreachable!(),
    }
}

/// Rank × quantisation scores, two seeds each, with one missing cell (r = 16, nf4).
fn grid() -> Table {
    let mut rows = Vec::new();
    for (r, base) in [(4, 0.50), (8, 0.55), (16, 0.60)] {
        for (qi, q) in ["none", "int8", "nf4"].iter().enumerate() {
            if r == 16 && *q == "nf4" {
                continue;
            }
            for seed in 0..2 {
                let f1 = base - 0.02 * qi as f64 + 0.01 * seed as f64;
                rows.push(json!({"r": r, "quant": q, "seed": seed, "f1": f1}));
            }
        }
    }
    table(serde_json::Value::Array(rows))
}

#[test]
fn heatmap_cells_values_and_file() {
    let t = grid();
    let dir = tempfile::tempdir().unwrap();
    let mut o = HeatmapOptions::new("quant", "r", "f1", dir.path().join("h.svg"));
    o.decimals = 3;
    let path = plot_heatmap(&t, &o).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert_eq!(parse_count(&svg, "rect", CELL_OPACITY), 8); // 3 × 3 minus the missing cell
    assert_eq!(parse_count(&svg, "rect", SCALE_OPACITY), 20);
    let tx = texts(&svg);
    // r = 4, none: mean of 0.50 and 0.51 = 0.505; r = 16, int8: 0.58/0.59 → 0.585.
    assert!(tx.iter().any(|s| s == "0.505"), "{tx:?}");
    assert!(tx.iter().any(|s| s == "0.585"), "{tx:?}");
    for label in [
        "none",
        "int8",
        "nf4",
        "4",
        "8",
        "16",
        "mean f1 by r × quant",
    ] {
        assert!(
            tx.iter().any(|s| s == label),
            "missing label {label}: {tx:?}"
        );
    }
    // The cell means are the pivot of the table.
    let c = heatmap::heatmap_cells(&t, "quant", "r", "f1").unwrap();
    assert_eq!((c.x_levels.len(), c.y_levels.len()), (3, 3));
    assert_eq!(c.means[2][2], None);
    assert!((c.means[1][1].unwrap() - 0.535).abs() < 1e-12);
}

#[test]
fn bars_with_error_bars() {
    let t = table(json!([
        {"method": "LoRA", "f1": 0.60}, {"method": "LoRA", "f1": 0.62}, {"method": "LoRA", "f1": 0.64},
        {"method": "DoRA", "f1": 0.61}, {"method": "DoRA", "f1": 0.65},
        {"method": "VeRA", "f1": 0.50}
    ]));
    let mut o = BarsOptions::new("method", "f1", "unused.svg");
    o.error = ErrorKind::Sd;
    let svg = render_bars(&t, &o).unwrap();
    assert_eq!(parse_count(&svg, "rect", BAR_OPACITY), 3);
    // VeRA has a single value: no error bar. Each error bar is 3 lines and a circle.
    assert_eq!(parse_count(&svg, "circle", ERRORBAR_OPACITY), 2);
    assert_eq!(parse_count(&svg, "line", ERRORBAR_OPACITY), 6);
    let tx = texts(&svg);
    for label in ["LoRA", "DoRA", "VeRA"] {
        assert!(tx.iter().any(|s| s == label), "missing {label}: {tx:?}");
    }
    // Error half-widths: sd of (0.60, 0.62, 0.64) = 0.02; ci95 = t(0.975, 2)·0.02/√3.
    let (_, _, bars) = bars::bar_data(&t, &o).unwrap();
    assert!((bars[0].err - 0.02).abs() < 1e-12);
    o.error = ErrorKind::Ci95;
    let (_, _, bars) = bars::bar_data(&t, &o).unwrap();
    // scipy.stats.t.ppf(0.975, 2) = 4.302652729749464
    assert!((bars[0].err - 4.302652729749464 * 0.02 / 3f64.sqrt()).abs() < 1e-9);
    assert!(bars[2].err.is_nan());
}

#[test]
fn grouped_bars_have_a_legend() {
    let t = grid();
    let mut o = BarsOptions::new("quant", "f1", "unused.svg");
    o.group = Some("r".into());
    let svg = render_bars(&t, &o).unwrap();
    assert_eq!(parse_count(&svg, "rect", BAR_OPACITY), 8);
    assert_eq!(parse_count(&svg, "circle", ERRORBAR_OPACITY), 8);
    let tx = texts(&svg);
    for label in ["4", "8", "16"] {
        assert!(tx.iter().any(|s| s == label), "legend {label}: {tx:?}");
    }
}

#[test]
fn lines_one_per_series() {
    let mut rows = Vec::new();
    for (a, slope) in [("LoRA", 0.05), ("DoRA", 0.04), ("VeRA", 0.01)] {
        for layer in 0..6 {
            rows.push(json!({"adapter": a, "layer": layer, "prop": 0.2 + slope * layer as f64}));
        }
    }
    let t = table(serde_json::Value::Array(rows));
    let dir = tempfile::tempdir().unwrap();
    let mut o = LinesOptions::new("layer", "prop", dir.path().join("l.svg"));
    o.series = Some("adapter".into());
    let path = plot_lines(&t, &o).unwrap();
    let svg = std::fs::read_to_string(path).unwrap();
    assert_eq!(parse_count(&svg, "polyline", LINE_OPACITY), 3);
    let tx = texts(&svg);
    for label in ["LoRA", "DoRA", "VeRA", "prop by layer"] {
        assert!(tx.iter().any(|s| s == label), "legend {label}: {tx:?}");
    }
    let data = lines::line_data(&t, &o).unwrap();
    assert_eq!(data[2].0, "VeRA");
    assert_eq!(data[2].1.len(), 6);
    assert!((data[0].1[5].1 - 0.45).abs() < 1e-12);
}

#[test]
fn options_from_maps() {
    let row = |v: serde_json::Value| v.as_object().cloned().unwrap();
    let o = HeatmapOptions::from_row(&row(
        json!({"x": "quant", "y": "r", "value": "f1", "path": "h.svg", "decimals": 2}),
    ))
    .unwrap();
    assert_eq!(o.decimals, 2);
    let e = HeatmapOptions::from_row(&row(
        json!({"x": "a", "y": "b", "value": "v", "path": "p", "colour": 1}),
    ))
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "plot_heatmap: unknown option 'colour' (expected one of: x, y, value, path, title, decimals, cell_width, cell_height)"
    );
    let e = BarsOptions::from_row(&row(
        json!({"x": "a", "value": "v", "path": "p", "error": "se"}),
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("option 'error' = \"se\" is invalid"), "{e}");
    let e = LinesOptions::from_row(&row(json!({"x": "a", "path": "p"})))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "plot_lines: missing option 'y'");
    let e = BarsOptions::from_row(&row(json!({"x": "a", "value": "v", "path": 3})))
        .unwrap_err()
        .to_string();
    assert!(e.contains("'path' = 3 is invalid (a string)"), "{e}");
}

#[test]
fn bad_tables() {
    let t = grid();
    let o = HeatmapOptions::new("quant", "r", "quant", "x.svg");
    let e = render_heatmap(&t, &o).unwrap_err().to_string();
    assert!(e.contains("column 'quant' is not numeric"), "{e}");
    let o = LinesOptions::new("layer", "f1", "x.svg");
    let e = render_lines(&t, &o).unwrap_err().to_string();
    assert!(e.contains("unknown column 'layer'"), "{e}");
    let empty = Table::new();
    assert!(render_bars(&empty, &BarsOptions::new("a", "b", "x.svg")).is_err());
    // A path that cannot be written (its "directory" is a file; missing directories are
    // created) is an I/O error naming the path.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("x.svg").display().to_string();
    let o = BarsOptions::new("quant", "f1", &bad);
    let e = plot_bars(&t, &o).unwrap_err().to_string();
    assert!(e.starts_with(&format!("plot_bars: {bad}")), "{e}");
}
