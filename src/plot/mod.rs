//! SVG plots of result tables with `plotters` (SVG backend only; text is emitted as SVG
//! `<text>` elements, so no font files are needed): [`heatmap::plot_heatmap`] (e.g. rank ×
//! quantisation mean score, value printed in each cell), [`bars::plot_bars`] (group means with
//! sd or 95 % CI error bars) and [`lines::plot_lines`] (one line per series with a legend).
//!
//! Each function takes a [`Table`](crate::table::Table) and an options struct (with `from_row` for the Rhai option
//! maps: unknown keys are errors listing the valid ones), renders to a string
//! (`render_*`) and writes it to `path`, returning the path.
//!
//! Countable marks: the data-bearing shapes carry a fixed, documented opacity so that tests
//! and users can find them in the SVG: heatmap cells [`CELL_OPACITY`], colour-scale steps
//! [`SCALE_OPACITY`], bars [`BAR_OPACITY`], error-bar marks [`ERRORBAR_OPACITY`], series lines
//! [`LINE_OPACITY`].

pub mod bars;
pub mod heatmap;
pub mod lines;

pub use bars::{plot_bars, render_bars, BarsOptions, ErrorKind};
pub use heatmap::{plot_heatmap, render_heatmap, HeatmapOptions};
pub use lines::{plot_lines, render_lines, LinesOptions};

use crate::table::TableError;
use crate::value::{as_f64, Row, Value};
use plotters::style::RGBColor;
use std::path::{Path, PathBuf};

/// Opacity of heatmap cells (`<rect opacity="0.97">`).
pub const CELL_OPACITY: f64 = 0.97;
/// Opacity of the colour-scale steps of a heatmap.
pub const SCALE_OPACITY: f64 = 0.98;
/// Opacity of bars.
pub const BAR_OPACITY: f64 = 0.9;
/// Opacity of error-bar marks (three `<line>`s and one `<circle>` per bar).
pub const ERRORBAR_OPACITY: f64 = 0.85;
/// Opacity of series lines (`<polyline>`).
pub const LINE_OPACITY: f64 = 0.95;

/// Errors of the plotting functions.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A required option is missing.
    #[error("{func}: missing option '{key}'")]
    MissingOption {
        /// Function name.
        func: &'static str,
        /// The option.
        key: &'static str,
    },
    /// An option that the function does not know.
    #[error("{func}: unknown option '{key}' (expected one of: {expected})")]
    UnknownOption {
        /// Function name.
        func: &'static str,
        /// The option given.
        key: String,
        /// The valid options, comma-separated.
        expected: String,
    },
    /// An option with a value of the wrong type or range.
    #[error("{func}: option '{key}' = {value} is invalid ({expected})")]
    BadOption {
        /// Function name.
        func: &'static str,
        /// The option.
        key: String,
        /// Its value as JSON.
        value: String,
        /// What is expected.
        expected: &'static str,
    },
    /// Nothing to plot.
    #[error("{func}: {what}")]
    Empty {
        /// Function name.
        func: &'static str,
        /// What is missing.
        what: String,
    },
    /// A table problem (unknown or non-numeric column).
    #[error(transparent)]
    Table(#[from] TableError),
    /// plotters reported a drawing error.
    #[error("{func}: drawing failed: {message}")]
    Draw {
        /// Function name.
        func: &'static str,
        /// The plotters error.
        message: String,
    },
    /// Writing the SVG file failed.
    #[error("{func}: {path}: {source}")]
    Io {
        /// Function name.
        func: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, PlotError>;

/// Reads an option map: checks the keys against `valid` and gives typed access.
pub(crate) struct Opts<'a> {
    func: &'static str,
    row: &'a Row,
}

impl<'a> Opts<'a> {
    pub(crate) fn new(func: &'static str, row: &'a Row, valid: &[&str]) -> Result<Self> {
        if let Some(k) = row.keys().find(|k| !valid.contains(&k.as_str())) {
            return Err(PlotError::UnknownOption {
                func,
                key: k.clone(),
                expected: valid.join(", "),
            });
        }
        Ok(Opts { func, row })
    }

    fn bad(&self, key: &str, v: &Value, expected: &'static str) -> PlotError {
        PlotError::BadOption {
            func: self.func,
            key: key.to_string(),
            value: v.to_string(),
            expected,
        }
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.row.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.bad(key, v, "a string")),
        }
    }

    pub(crate) fn str(&self, key: &'static str) -> Result<String> {
        self.opt_str(key)?.ok_or(PlotError::MissingOption {
            func: self.func,
            key,
        })
    }

    pub(crate) fn opt_uint(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>> {
        match self.row.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match as_f64(v) {
                Some(x) if x.fract() == 0.0 && x >= min as f64 && x <= max as f64 => {
                    Ok(Some(x as u64))
                }
                _ => Err(self.bad(key, v, "an integer in the allowed range")),
            },
        }
    }
}

/// Distinct values in order of first appearance.
pub(crate) fn levels(keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        if !out.contains(k) {
            out.push(k.clone());
        }
    }
    out
}

/// Categorical colours (matplotlib's "tab10").
pub fn palette(i: usize) -> RGBColor {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TAB10[i % TAB10.len()];
    RGBColor(r, g, b)
}

/// Sequential colour scale for t in [0, 1]: linear interpolation between five stops of
/// matplotlib's "viridis" (#440154, #3B528B, #21918C, #5EC962, #FDE725).
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + f * (y - x)).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Width in pixels of the legend column to the right of line and grouped bar charts.
pub(crate) const LEGEND_WIDTH: u32 = 150;

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub(crate) enum LegendMark {
    Line,
    Box,
}

/// Draws a legend (title, then one mark + label per entry) at the top of `area`.
pub(crate) fn draw_legend<DB: plotters::prelude::DrawingBackend>(
    func: &'static str,
    area: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    entries: &[(String, RGBColor)],
    mark: LegendMark,
) -> Result<()> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, VPos};
    let err = draw_err(func);
    area.draw(&Text::new(
        title.to_string(),
        (10, 50),
        heatmap::style(14.0, &BLACK, HPos::Left, VPos::Center),
    ))
    .map_err(&err)?;
    for (i, (label, colour)) in entries.iter().enumerate() {
        let y = 74 + 22 * i as i32;
        match mark {
            LegendMark::Line => area
                .draw(&PathElement::new(
                    vec![(10, y), (34, y)],
                    colour.stroke_width(2),
                ))
                .map_err(&err)?,
            LegendMark::Box => area
                .draw(&Rectangle::new([(14, y - 6), (26, y + 6)], colour.filled()))
                .map_err(&err)?,
        }
        area.draw(&Text::new(
            label.clone(),
            (40, y),
            heatmap::style(13.0, &BLACK, HPos::Left, VPos::Center),
        ))
        .map_err(&err)?;
    }
    Ok(())
}

/// Maps a plotters error to [`PlotError::Draw`].
pub(crate) fn draw_err<E: std::fmt::Debug>(func: &'static str) -> impl Fn(E) -> PlotError {
    move |e| PlotError::Draw {
        func,
        message: format!("{e:?}"),
    }
}

/// Writes `svg` to `path` (atomically) and returns the path.
pub(crate) fn write_svg(func: &'static str, path: &Path, svg: &str) -> Result<PathBuf> {
    crate::fsutil::write_atomic(path, svg.as_bytes()).map_err(|source| PlotError::Io {
        func,
        path: path.to_path_buf(),
        source,
    })?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests;
