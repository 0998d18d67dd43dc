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

/// One random term's conditional modes: per effect its name, a value per level and, where the
/// fit provides them, the conditional SDs that give each mode its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Caterpillar {
    pub group: String,
    pub levels: Vec<String>,
    pub effects: Vec<CaterpillarEffect>,
}

/// One effect of a `Caterpillar`: values (and SDs) in the term's `levels` order.
#[derive(Debug, Clone, PartialEq)]
pub struct CaterpillarEffect {
    pub name: String,
    pub values: Vec<f64>,
    pub sd: Option<Vec<f64>>,
}

/// lme4's `dotplot(ranef(fit, condVar = TRUE))` draws mode ± this many conditional SDs
/// (qnorm(0.975)).
pub const CATERPILLAR_Z: f64 = 1.959963984540054;

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

/// A caterpillar plot: one panel per effect, each mode with its 95% interval (mode ± 1.96
/// conditional SD) where the SDs are known. Levels are sorted by the first effect's mode in every
/// panel, as lme4's `dotplot` does, so that a level sits on the same row across panels.
pub fn caterpillar_svg(term: &Caterpillar, title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let height = (120 + 14 * term.levels.len() as u32).clamp(SIZE.1, 4000);
        let width = SIZE.0.max(320 * term.effects.len() as u32);
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(failed)?;
        let panels = root.split_evenly((1, term.effects.len().max(1)));
        let mut order: Vec<usize> = (0..term.levels.len()).collect();
        if let Some(first) = term.effects.first() {
            order.retain(|&i| i < first.values.len());
            order.sort_by(|&a, &b| first.values[a].total_cmp(&first.values[b]));
        }
        let n = order.len();
        let names: Vec<String> = order.iter().map(|&i| term.levels[i].clone()).collect();
        for (effect, panel) in term.effects.iter().zip(&panels) {
            let values = &effect.values;
            let value = |i: usize| values.get(i).copied().unwrap_or(f64::NAN);
            let half = |i: usize| {
                effect
                    .sd
                    .as_ref()
                    .and_then(|sd| sd.get(i))
                    .map(|s| CATERPILLAR_Z * s)
                    .filter(|h| h.is_finite())
            };
            let ends = order.iter().flat_map(|&i| match half(i) {
                Some(h) => [value(i) - h, value(i) + h],
                None => [value(i), value(i)],
            });
            let (x0, x1) = padded_range(ends.chain([0.0]));
            let mut chart = ChartBuilder::on(panel)
                .caption(&effect.name, ("sans-serif", 16))
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
            let x_desc = if effect.sd.is_some() {
                "conditional mode, 95% interval"
            } else {
                "conditional mode"
            };
            chart
                .configure_mesh()
                .y_labels(n.clamp(1, 60))
                .y_label_formatter(&label)
                // Panels are narrow when a term has several effects: few ticks keep their
                // labels apart.
                .x_labels(5)
                .x_desc(x_desc)
                .draw()
                .map_err(failed)?;
            chart
                .draw_series(LineSeries::new(
                    [(0.0, -0.5), (0.0, n as f64 - 0.5)],
                    BLACK.stroke_width(1),
                ))
                .map_err(failed)?;
            chart
                .draw_series(order.iter().enumerate().filter_map(|(rank, &i)| {
                    let (v, h) = (value(i), half(i)?);
                    v.is_finite().then(|| {
                        PathElement::new(
                            vec![(v - h, rank as f64), (v + h, rank as f64)],
                            POINT.stroke_width(1),
                        )
                    })
                }))
                .map_err(failed)?;
            chart
                .draw_series(
                    order
                        .iter()
                        .enumerate()
                        .filter(|(_, &i)| value(i).is_finite())
                        .map(|(rank, &i)| Circle::new((value(i), rank as f64), 3, POINT.filled())),
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
