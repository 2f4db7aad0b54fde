//! Bar chart of group means with error bars (sample sd or the 95 % t confidence interval of
//! the mean), optionally grouped side by side by a second column (with a legend).

use super::heatmap::style;
use super::{draw_err, draw_legend, levels, palette, write_svg, LegendMark, Opts, PlotError};
use super::{Result, LEGEND_WIDTH};
use super::{BAR_OPACITY, ERRORBAR_OPACITY};
use crate::stats::describe::{ci95_halfwidth, mean, sd};
use crate::table::display::fmt_g4;
use crate::table::Table;
use crate::value::Row;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::PathBuf;

const FN: &str = "plot_bars";

/// What the error bars show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No error bars.
    None,
    /// ± one sample standard deviation (ddof = 1).
    Sd,
    /// ± the half-width of the 95 % t confidence interval of the mean.
    Ci95,
}

impl ErrorKind {
    /// Parses "none", "sd" or "ci95".
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(ErrorKind::None),
            "sd" => Some(ErrorKind::Sd),
            "ci95" => Some(ErrorKind::Ci95),
            _ => None,
        }
    }

    fn half_width(self, v: &[f64]) -> f64 {
        match self {
            ErrorKind::None => f64::NAN,
            ErrorKind::Sd => sd(v),
            ErrorKind::Ci95 => ci95_halfwidth(v),
        }
    }
}

/// Options of [`plot_bars`].
#[derive(Debug, Clone, PartialEq)]
pub struct BarsOptions {
    /// Categorical column on the x axis.
    pub x: String,
    /// Numeric column averaged per bar.
    pub value: String,
    /// Optional second categorical column: bars side by side within each x, with a legend.
    pub group: Option<String>,
    /// Error bars (default 95 % CI).
    pub error: ErrorKind,
    /// Output SVG file.
    pub path: PathBuf,
    /// Title (default `mean <value> by <x>`).
    pub title: Option<String>,
    /// Width in pixels (default 640).
    pub width: u32,
    /// Height in pixels (default 420).
    pub height: u32,
}

impl BarsOptions {
    /// Valid option keys.
    pub const KEYS: [&'static str; 8] = [
        "x", "value", "group", "error", "path", "title", "width", "height",
    ];

    /// Options with defaults for the optional fields.
    pub fn new(x: &str, value: &str, path: impl Into<PathBuf>) -> Self {
        BarsOptions {
            x: x.into(),
            value: value.into(),
            group: None,
            error: ErrorKind::Ci95,
            path: path.into(),
            title: None,
            width: 640,
            height: 420,
        }
    }

    /// Options from a map with the keys [`Self::KEYS`] (x, value and path required; error is
    /// "sd", "ci95" or "none").
    pub fn from_row(row: &Row) -> Result<Self> {
        let o = Opts::new(FN, row, &Self::KEYS)?;
        let mut b = BarsOptions::new(&o.str("x")?, &o.str("value")?, o.str("path")?);
        b.group = o.opt_str("group")?;
        if let Some(e) = o.opt_str("error")? {
            b.error = ErrorKind::parse(&e).ok_or_else(|| PlotError::BadOption {
                func: FN,
                key: "error".into(),
                value: format!("\"{e}\""),
                expected: "one of \"sd\", \"ci95\", \"none\"",
            })?;
        }
        b.title = o.opt_str("title")?;
        if let Some(w) = o.opt_uint("width", 100, 10_000)? {
            b.width = w as u32;
        }
        if let Some(h) = o.opt_uint("height", 100, 10_000)? {
            b.height = h as u32;
        }
        Ok(b)
    }
}

/// One bar: category index, group index, mean, error half-width (NaN when none).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Index into the x levels.
    pub x: usize,
    /// Index into the group levels (0 without groups).
    pub group: usize,
    /// Mean of the value.
    pub mean: f64,
    /// Error half-width (NaN for no error bar, e.g. a single value).
    pub err: f64,
}

/// The bars: `(x levels, group levels, bars)`, in order of first appearance.
pub fn bar_data(t: &Table, o: &BarsOptions) -> Result<(Vec<String>, Vec<String>, Vec<Bar>)> {
    let xs = t.key_column(FN, &o.x)?;
    let gs = match &o.group {
        Some(g) => t.key_column(FN, g)?,
        None => vec![String::new(); xs.len()],
    };
    let vs = t.numeric_column_for(FN, &o.value)?;
    if vs.is_empty() {
        return Err(PlotError::Empty {
            func: FN,
            what: "the table has no rows".into(),
        });
    }
    let (lx, lg) = (levels(&xs), levels(&gs));
    let mut acc: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); lg.len()]; lx.len()];
    for ((a, g), v) in xs.iter().zip(&gs).zip(vs) {
        let i = lx.iter().position(|l| l == a).unwrap_or(0);
        let j = lg.iter().position(|l| l == g).unwrap_or(0);
        acc[i][j].push(v);
    }
    let mut bars = Vec::new();
    for (i, row) in acc.iter().enumerate() {
        for (j, vals) in row.iter().enumerate() {
            if !vals.is_empty() {
                bars.push(Bar {
                    x: i,
                    group: j,
                    mean: mean(vals),
                    err: o.error.half_width(vals),
                });
            }
        }
    }
    Ok((lx, lg, bars))
}

/// Renders the bar chart to an SVG string.
pub fn render_bars(t: &Table, o: &BarsOptions) -> Result<String> {
    let (lx, lg, bars) = bar_data(t, o)?;
    let n = lx.len();
    let ng = lg.len().max(1);
    let lo = bars
        .iter()
        .map(|b| {
            if b.err.is_finite() {
                b.mean - b.err
            } else {
                b.mean
            }
        })
        .fold(0.0f64, f64::min);
    let hi = bars
        .iter()
        .map(|b| {
            if b.err.is_finite() {
                b.mean + b.err
            } else {
                b.mean
            }
        })
        .fold(0.0f64, f64::max);
    let pad = if hi > lo { 0.08 * (hi - lo) } else { 1.0 };
    let (y0, y1) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    let title = o
        .title
        .clone()
        .unwrap_or_else(|| format!("mean {} by {}", o.value, o.x));
    let err = draw_err(FN);
    let slot = 0.8 / ng as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (o.width, o.height)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (main, side) = match o.group {
            Some(_) => root.split_horizontally(o.width.saturating_sub(LEGEND_WIDTH)),
            None => root.split_horizontally(o.width),
        };
        let mut chart = ChartBuilder::on(&main)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, y0..y1)
            .map_err(&err)?;
        // Category labels are drawn by hand at the bar centres (plotters' key points for an
        // f64 axis need not fall on them).
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|v| fmt_g4(*v))
            .x_desc(o.x.as_str())
            .y_desc(o.value.as_str())
            .draw()
            .map_err(&err)?;
        for (i, name) in lx.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64, y0));
            main.draw(&Text::new(
                name.clone(),
                (px, py + 6),
                style(14.0, &BLACK, HPos::Center, VPos::Top),
            ))
            .map_err(&err)?;
        }
        for g in 0..lg.len() {
            let colour = palette(g);
            let rects: Vec<Rectangle<(f64, f64)>> = bars
                .iter()
                .filter(|b| b.group == g)
                .map(|b| {
                    let x0 = b.x as f64 - 0.4 + g as f64 * slot;
                    Rectangle::new(
                        [(x0, 0.0), (x0 + slot, b.mean)],
                        colour.mix(BAR_OPACITY).filled(),
                    )
                })
                .collect();
            chart.draw_series(rects).map_err(&err)?;
        }
        // Whisker width in pixels (plotters also draws a circle of half this radius at the mean).
        let whisker = 8;
        let errs: Vec<ErrorBar<f64, f64, _>> = bars
            .iter()
            .filter(|b| b.err.is_finite())
            .map(|b| {
                let xc = b.x as f64 - 0.4 + (b.group as f64 + 0.5) * slot;
                ErrorBar::new_vertical(
                    xc,
                    b.mean - b.err,
                    b.mean,
                    b.mean + b.err,
                    BLACK.mix(ERRORBAR_OPACITY).stroke_width(1),
                    whisker,
                )
            })
            .collect();
        chart.draw_series(errs).map_err(&err)?;
        if let Some(group) = &o.group {
            let entries: Vec<(String, RGBColor)> = lg
                .iter()
                .enumerate()
                .map(|(g, name)| (name.clone(), palette(g)))
                .collect();
            draw_legend(FN, &side, group, &entries, LegendMark::Box)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// Draws the bar chart and writes it to `o.path`; returns the path.
pub fn plot_bars(t: &Table, o: &BarsOptions) -> Result<PathBuf> {
    let svg = render_bars(t, o)?;
    write_svg(FN, &o.path, &svg)
}
