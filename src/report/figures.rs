//! Figures of a fit as SVG text (`--plot DIR`): residuals against fitted values, a caterpillar
//! plot of each random term's conditional modes, and the Monte Carlo distribution of each
//! defined quantity with its interval.
//!
//! Owns the drawing only: every number it draws is handed to it (fitted values, conditional
//! modes, binned draws). It must not compute statistics or write files; the pipeline decides
//! where the text goes.

use plotters::prelude::*;

use crate::infer::monte_carlo::DrawHistogram;

const SIZE: (u32, u32) = (800, 600);
const POINT: RGBColor = RGBColor(31, 119, 180);
const MARK: RGBColor = RGBColor(214, 39, 40);

/// Observations of one fit: fitted value (fixed plus random part) and residual.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResidualPoints {
    pub fitted: Vec<f64>,
    pub residual: Vec<f64>,
}

/// One random term's conditional modes: per effect its name and a value per level.
#[derive(Debug, Clone, PartialEq)]
pub struct Caterpillar {
    pub group: String,
    pub levels: Vec<String>,
    /// (effect name, value per level in `levels` order).
    pub effects: Vec<(String, Vec<f64>)>,
}

/// One defined quantity's binned draws with its estimate and interval.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawFigure {
    pub name: String,
    pub histogram: DrawHistogram,
    pub estimate: f64,
    pub interval: Option<(f64, f64)>,
}

/// A drawing failure, as text (plotters' errors carry nothing a user can act on).
fn failed<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing failed: {e:?}")
}

/// A range that contains `values` with a margin, never empty (a constant series gets ±1).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    (lo - pad, hi + pad)
}

/// Residuals against fitted values, with the zero line.
pub fn residuals_svg(points: &ResidualPoints, title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let (x0, x1) = padded_range(points.fitted.iter().copied());
        let (y0, y1) = padded_range(points.residual.iter().copied().chain([0.0]));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("fitted value")
            .y_desc("residual")
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(LineSeries::new(
                [(x0, 0.0), (x1, 0.0)],
                BLACK.stroke_width(1),
            ))
            .map_err(failed)?;
        chart
            .draw_series(
                points
                    .fitted
                    .iter()
                    .zip(&points.residual)
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .map(|(&x, &y)| Circle::new((x, y), 2, POINT.filled())),
            )
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// A caterpillar plot: one panel per effect, levels sorted by their conditional mode. Points
/// only: the conditional SDs are not available from the fit.
pub fn caterpillar_svg(term: &Caterpillar, title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let height = (120 + 14 * term.levels.len() as u32).clamp(SIZE.1, 4000);
        let width = SIZE.0.max(320 * term.effects.len() as u32);
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(failed)?;
        let panels = root.split_evenly((1, term.effects.len().max(1)));
        for ((effect, values), panel) in term.effects.iter().zip(&panels) {
            let mut order: Vec<usize> = (0..values.len()).collect();
            order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
            let n = order.len();
            let (x0, x1) = padded_range(values.iter().copied().chain([0.0]));
            let names: Vec<String> = order
                .iter()
                .map(|&i| term.levels.get(i).cloned().unwrap_or_default())
                .collect();
            let mut chart = ChartBuilder::on(panel)
                .caption(effect, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(90)
                .build_cartesian_2d(x0..x1, -0.5..(n as f64 - 0.5))
                .map_err(failed)?;
            let label = |y: &f64| {
                let k = y.round();
                if (y - k).abs() < 1e-6 && k >= 0.0 {
                    names.get(k as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            chart
                .configure_mesh()
                .y_labels(n.clamp(1, 60))
                .y_label_formatter(&label)
                .x_desc("conditional mode")
                .draw()
                .map_err(failed)?;
            chart
                .draw_series(LineSeries::new(
                    [(0.0, -0.5), (0.0, n as f64 - 0.5)],
                    BLACK.stroke_width(1),
                ))
                .map_err(failed)?;
            chart
                .draw_series(
                    order
                        .iter()
                        .enumerate()
                        .filter(|(_, &i)| values[i].is_finite())
                        .map(|(rank, &i)| Circle::new((values[i], rank as f64), 3, POINT.filled())),
                )
                .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The histogram of a defined quantity's draws, the estimate as a solid line and the interval's
/// ends as dashed-looking thin lines.
pub fn draws_svg(figure: &DrawFigure, title: &str) -> Result<String, String> {
    let h = &figure.histogram;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let upper_edge = h.lower + h.width * h.counts.len() as f64;
        let (x0, x1) = padded_range(
            [h.lower, upper_edge, figure.estimate]
                .into_iter()
                .chain(figure.interval.iter().flat_map(|&(a, b)| [a, b])),
        );
        let top = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc(figure.name.as_str())
            .y_desc("draws")
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(h.counts.iter().enumerate().map(|(k, &c)| {
                let left = h.lower + h.width * k as f64;
                Rectangle::new([(left, 0.0), (left + h.width, c as f64)], POINT.filled())
            }))
            .map_err(failed)?;
        if let Some((lo, hi)) = figure.interval {
            for x in [lo, hi] {
                chart
                    .draw_series(LineSeries::new([(x, 0.0), (x, top)], MARK.stroke_width(2)))
                    .map_err(failed)?;
            }
        }
        chart
            .draw_series(LineSeries::new(
                [(figure.estimate, 0.0), (figure.estimate, top)],
                BLACK.stroke_width(2),
            ))
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// A file-name-safe form of a group or definition name (`cask:batch` → `cask_batch`).
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_figure_is_svg() {
        let points = ResidualPoints {
            fitted: vec![1.0, 2.0, 3.0],
            residual: vec![0.5, -0.25, f64::NAN],
        };
        let svg = residuals_svg(&points, "r").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        // Two finite points drawn; the NaN one left out.
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn names_become_file_safe() {
        assert_eq!(file_safe("cask:batch"), "cask_batch");
        assert_eq!(file_safe("a b/c"), "a_b_c");
    }
}
