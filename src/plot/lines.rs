//! Line chart of a numeric y against a numeric x, one line per series (e.g. proportion of
//! target-language tokens vs layer, one line per adapter), with point markers and a legend.
//! Several rows with the same (series, x) are averaged; points are joined in order of x.

use super::{draw_err, draw_legend, levels, palette, write_svg, LegendMark, Opts, PlotError};
use super::{Result, LEGEND_WIDTH, LINE_OPACITY};
use crate::stats::describe::mean;
use crate::table::display::fmt_g4;
use crate::table::Table;
use crate::value::Row;
use plotters::prelude::*;
use std::path::PathBuf;

const FN: &str = "plot_lines";

/// Options of [`plot_lines`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinesOptions {
    /// Numeric column on the x axis.
    pub x: String,
    /// Numeric column on the y axis.
    pub y: String,
    /// Optional categorical column: one line per value (one line without it).
    pub series: Option<String>,
    /// Output SVG file.
    pub path: PathBuf,
    /// Title (default `<y> by <x>`).
    pub title: Option<String>,
    /// Width in pixels (default 720).
    pub width: u32,
    /// Height in pixels (default 440).
    pub height: u32,
}

impl LinesOptions {
    /// Valid option keys.
    pub const KEYS: [&'static str; 7] = ["x", "y", "series", "path", "title", "width", "height"];

    /// Options with defaults for the optional fields.
    pub fn new(x: &str, y: &str, path: impl Into<PathBuf>) -> Self {
        LinesOptions {
            x: x.into(),
            y: y.into(),
            series: None,
            path: path.into(),
            title: None,
            width: 720,
            height: 440,
        }
    }

    /// Options from a map with the keys [`Self::KEYS`] (x, y and path required).
    pub fn from_row(row: &Row) -> Result<Self> {
        let o = Opts::new(FN, row, &Self::KEYS)?;
        let mut l = LinesOptions::new(&o.str("x")?, &o.str("y")?, o.str("path")?);
        l.series = o.opt_str("series")?;
        l.title = o.opt_str("title")?;
        if let Some(w) = o.opt_uint("width", 100, 10_000)? {
            l.width = w as u32;
        }
        if let Some(h) = o.opt_uint("height", 100, 10_000)? {
            l.height = h as u32;
        }
        Ok(l)
    }
}

/// One line: the series name and its (x, mean y) points sorted by x.
pub type Series = (String, Vec<(f64, f64)>);

/// The lines, in order of first appearance of the series.
pub fn line_data(t: &Table, o: &LinesOptions) -> Result<Vec<Series>> {
    let xs = t.numeric_column_for(FN, &o.x)?;
    let ys = t.numeric_column_for(FN, &o.y)?;
    let ss = match &o.series {
        Some(s) => t.key_column(FN, s)?,
        None => vec![o.y.clone(); xs.len()],
    };
    if xs.is_empty() {
        return Err(PlotError::Empty {
            func: FN,
            what: "the table has no rows".into(),
        });
    }
    let names = levels(&ss);
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        // (x, values at x), in order of first appearance, then sorted by x.
        let mut pts: Vec<(f64, Vec<f64>)> = Vec::new();
        for ((s, x), y) in ss.iter().zip(&xs).zip(&ys) {
            if *s != name {
                continue;
            }
            match pts.iter_mut().find(|p| p.0 == *x) {
                Some(p) => p.1.push(*y),
                None => pts.push((*x, vec![*y])),
            }
        }
        let mut pts: Vec<(f64, f64)> = pts.into_iter().map(|(x, v)| (x, mean(&v))).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.push((name, pts));
    }
    Ok(out)
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let p = 0.05 * (hi - lo);
        (lo - p, hi + p)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

/// Renders the line chart to an SVG string.
pub fn render_lines(t: &Table, o: &LinesOptions) -> Result<String> {
    let lines = line_data(t, o)?;
    let all = lines.iter().flat_map(|l| l.1.iter());
    let (xlo, xhi, ylo, yhi) = all.fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    let (x0, x1) = padded(xlo, xhi);
    let (y0, y1) = padded(ylo, yhi);
    // Integer x values (layers, ranks, steps) get one tick per integer when there are few.
    let integer_x = lines
        .iter()
        .flat_map(|l| l.1.iter())
        .all(|p| p.0.fract() == 0.0);
    let span = (xhi - xlo).max(0.0) as usize + 1;
    let x_ticks = if integer_x && span <= 24 { span } else { 10 };
    let title = o
        .title
        .clone()
        .unwrap_or_else(|| format!("{} by {}", o.y, o.x));
    let err = draw_err(FN);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (o.width, o.height)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (main, side) = match o.series {
            Some(_) => root.split_horizontally(o.width.saturating_sub(LEGEND_WIDTH)),
            None => root.split_horizontally(o.width),
        };
        let mut chart = ChartBuilder::on(&main)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_labels(x_ticks)
            .x_label_formatter(&|v| {
                if integer_x {
                    format!("{}", v.round())
                } else {
                    fmt_g4(*v)
                }
            })
            .y_label_formatter(&|v| fmt_g4(*v))
            .x_desc(o.x.as_str())
            .y_desc(o.y.as_str())
            .draw()
            .map_err(&err)?;
        let mut entries = Vec::with_capacity(lines.len());
        for (i, (name, pts)) in lines.iter().enumerate() {
            let colour = palette(i);
            chart
                .draw_series(LineSeries::new(
                    pts.iter().copied(),
                    colour.mix(LINE_OPACITY).stroke_width(2),
                ))
                .map_err(&err)?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(&err)?;
            entries.push((name.clone(), colour));
        }
        if let Some(series) = &o.series {
            draw_legend(FN, &side, series, &entries, LegendMark::Line)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// Draws the line chart and writes it to `o.path`; returns the path.
pub fn plot_lines(t: &Table, o: &LinesOptions) -> Result<PathBuf> {
    let svg = render_lines(t, o)?;
    write_svg(FN, &o.path, &svg)
}
