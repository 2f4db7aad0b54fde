//! Heatmap of the mean of a value over two categorical columns (e.g. LoRA rank ×
//! quantisation → mean score), with the value printed in each cell and a colour scale
//! (viridis) on the right. Cells without data are drawn light grey without a number.
//! Laid out by hand on a plotters SVG drawing area (cells, labels and scale are plain
//! rectangles and texts).

use super::SCALE_OPACITY;
use super::{draw_err, levels, viridis, write_svg, Opts, PlotError, Result, CELL_OPACITY};
use crate::stats::describe::mean;
use crate::table::Table;
use crate::value::Row;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::PathBuf;

const FN: &str = "plot_heatmap";

/// Options of [`plot_heatmap`].
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapOptions {
    /// Column whose values are the columns of the heatmap.
    pub x: String,
    /// Column whose values are the rows.
    pub y: String,
    /// Numeric column averaged per cell.
    pub value: String,
    /// Output SVG file.
    pub path: PathBuf,
    /// Title (default `mean <value> by <y> × <x>`).
    pub title: Option<String>,
    /// Decimals of the printed cell values (default 3).
    pub decimals: usize,
    /// Cell width in pixels (default 90).
    pub cell_width: u32,
    /// Cell height in pixels (default 44).
    pub cell_height: u32,
}

impl HeatmapOptions {
    /// Valid option keys.
    pub const KEYS: [&'static str; 8] = [
        "x",
        "y",
        "value",
        "path",
        "title",
        "decimals",
        "cell_width",
        "cell_height",
    ];

    /// Options with defaults for the optional fields.
    pub fn new(x: &str, y: &str, value: &str, path: impl Into<PathBuf>) -> Self {
        HeatmapOptions {
            x: x.into(),
            y: y.into(),
            value: value.into(),
            path: path.into(),
            title: None,
            decimals: 3,
            cell_width: 90,
            cell_height: 44,
        }
    }

    /// Options from a map with the keys [`Self::KEYS`] (x, y, value and path required).
    pub fn from_row(row: &Row) -> Result<Self> {
        let o = Opts::new(FN, row, &Self::KEYS)?;
        let mut h =
            HeatmapOptions::new(&o.str("x")?, &o.str("y")?, &o.str("value")?, o.str("path")?);
        h.title = o.opt_str("title")?;
        if let Some(d) = o.opt_uint("decimals", 0, 10)? {
            h.decimals = d as usize;
        }
        if let Some(w) = o.opt_uint("cell_width", 10, 1000)? {
            h.cell_width = w as u32;
        }
        if let Some(v) = o.opt_uint("cell_height", 10, 1000)? {
            h.cell_height = v as u32;
        }
        Ok(h)
    }
}

/// The cells of a heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapCells {
    /// Column labels (values of `x`), in order of first appearance.
    pub x_levels: Vec<String>,
    /// Row labels (values of `y`), in order of first appearance.
    pub y_levels: Vec<String>,
    /// `means[row][col]`: the mean value, `None` where no row of the table has the pair.
    pub means: Vec<Vec<Option<f64>>>,
}

/// Cell means of `value` by `y` (rows) and `x` (columns).
pub fn heatmap_cells(t: &Table, x: &str, y: &str, value: &str) -> Result<HeatmapCells> {
    let xs = t.key_column(FN, x)?;
    let ys = t.key_column(FN, y)?;
    let vs = t.numeric_column_for(FN, value)?;
    if vs.is_empty() {
        return Err(PlotError::Empty {
            func: FN,
            what: "the table has no rows".into(),
        });
    }
    let (lx, ly) = (levels(&xs), levels(&ys));
    let mut acc = vec![vec![Vec::new(); lx.len()]; ly.len()];
    for ((a, b), v) in xs.iter().zip(&ys).zip(vs) {
        let i = lx.iter().position(|l| l == a).unwrap_or(0);
        let j = ly.iter().position(|l| l == b).unwrap_or(0);
        acc[j][i].push(v);
    }
    let means = acc
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|c| if c.is_empty() { None } else { Some(mean(&c)) })
                .collect()
        })
        .collect();
    Ok(HeatmapCells {
        x_levels: lx,
        y_levels: ly,
        means,
    })
}

fn text_colour(c: RGBColor) -> &'static RGBColor {
    let lum = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if lum < 140.0 {
        &WHITE
    } else {
        &BLACK
    }
}

pub(crate) fn style(size: f64, colour: &'static RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font())
        .color(colour)
        .pos(Pos::new(h, v))
}

/// Renders the heatmap to an SVG string.
pub fn render_heatmap(t: &Table, o: &HeatmapOptions) -> Result<String> {
    let HeatmapCells {
        x_levels: lx,
        y_levels: ly,
        means: cells,
    } = heatmap_cells(t, &o.x, &o.y, &o.value)?;
    let present: Vec<f64> = cells.iter().flatten().flatten().copied().collect();
    let lo = present.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let scale = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    let (cw, ch) = (o.cell_width as i32, o.cell_height as i32);
    let longest_y = ly.iter().map(|s| s.chars().count()).max().unwrap_or(1) as i32;
    let left = (longest_y * 8 + 24).max(60);
    let (top, bottom, right) = (60, 56, 120);
    let (nx, ny) = (lx.len() as i32, ly.len() as i32);
    let width = (left + nx * cw + right) as u32;
    let height = (top + ny * ch + bottom) as u32;
    let title = o
        .title
        .clone()
        .unwrap_or_else(|| format!("mean {} by {} × {}", o.value, o.y, o.x));
    let err = draw_err(FN);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let center = HPos::Center;
        root.draw(&Text::new(
            title,
            (width as i32 / 2, 12),
            style(20.0, &BLACK, center, VPos::Top),
        ))
        .map_err(&err)?;
        root.draw(&Text::new(
            o.y.clone(),
            (left - 8, top - 10),
            style(14.0, &BLACK, HPos::Right, VPos::Bottom),
        ))
        .map_err(&err)?;
        for (j, row) in cells.iter().enumerate() {
            let y0 = top + j as i32 * ch;
            root.draw(&Text::new(
                ly[j].clone(),
                (left - 8, y0 + ch / 2),
                style(14.0, &BLACK, HPos::Right, VPos::Center),
            ))
            .map_err(&err)?;
            for (i, cell) in row.iter().enumerate() {
                let x0 = left + i as i32 * cw;
                let corners = [(x0, y0), (x0 + cw, y0 + ch)];
                match cell {
                    Some(v) => {
                        let c = viridis(scale(*v));
                        root.draw(&Rectangle::new(corners, c.mix(CELL_OPACITY).filled()))
                            .map_err(&err)?;
                        root.draw(&Text::new(
                            format!("{v:.prec$}", prec = o.decimals),
                            (x0 + cw / 2, y0 + ch / 2),
                            style(13.0, text_colour(c), center, VPos::Center),
                        ))
                        .map_err(&err)?;
                    }
                    None => {
                        root.draw(&Rectangle::new(corners, RGBColor(221, 221, 221).filled()))
                            .map_err(&err)?;
                    }
                }
            }
        }
        let grid_bottom = top + ny * ch;
        for (i, name) in lx.iter().enumerate() {
            root.draw(&Text::new(
                name.clone(),
                (left + i as i32 * cw + cw / 2, grid_bottom + 8),
                style(14.0, &BLACK, center, VPos::Top),
            ))
            .map_err(&err)?;
        }
        root.draw(&Text::new(
            o.x.clone(),
            (left + nx * cw / 2, grid_bottom + 32),
            style(14.0, &BLACK, center, VPos::Top),
        ))
        .map_err(&err)?;
        // Colour scale: 20 steps, maximum on top.
        let steps = 20;
        let (bx, bw) = (left + nx * cw + 24, 18);
        let step_h = (ny * ch) as f64 / steps as f64;
        for s in 0..steps {
            let t = 1.0 - (s as f64 + 0.5) / steps as f64;
            let y0 = top + (s as f64 * step_h).round() as i32;
            let y1 = top + ((s + 1) as f64 * step_h).round() as i32;
            root.draw(&Rectangle::new(
                [(bx, y0), (bx + bw, y1)],
                viridis(t).mix(SCALE_OPACITY).filled(),
            ))
            .map_err(&err)?;
        }
        for (v, y) in [(hi, top), (lo, grid_bottom)] {
            root.draw(&Text::new(
                format!("{v:.prec$}", prec = o.decimals),
                (bx + bw + 6, y),
                style(12.0, &BLACK, HPos::Left, VPos::Center),
            ))
            .map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// Draws the heatmap and writes it to `o.path`; returns the path.
pub fn plot_heatmap(t: &Table, o: &HeatmapOptions) -> Result<PathBuf> {
    let svg = render_heatmap(t, o)?;
    write_svg(FN, &o.path, &svg)
}
