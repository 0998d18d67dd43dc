//! Figures of a fit as SVG text (`--plot DIR`): residuals against fitted values (one panel per
//! equation; for a binomial or Poisson outcome Pearson residuals against the fitted mean, and
//! for a 0/1 outcome also the binned residuals), a caterpillar plot of each random term's conditional modes, and the distribution of
//! each defined quantity's Monte Carlo draws or bootstrap replicates with its estimate and
//! interval.
//!
//! Owns the drawing only: every number it draws is handed to it (fitted values, conditional
//! modes, binned draws). It must not compute statistics or write files; the pipeline decides
//! where the text goes. Figures are made to be projected: 800×600, large type, the model named
//! in a subtitle rather than in a title that runs off the page.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::infer::binned_residuals::ResidualBin;
use crate::infer::histogram::Histogram;

const SIZE: (u32, u32) = (800, 600);
const POINT: RGBColor = RGBColor(31, 119, 180);
const MARK: RGBColor = RGBColor(214, 39, 40);
const SUBTLE: RGBColor = RGBColor(90, 90, 90);
const BAND: RGBColor = RGBColor(150, 150, 150);
const FONT: &str = "sans-serif";
/// Type sizes as plotters takes them (its SVG text comes out at about 0.8 of these in pixels):
/// ticks and legend ~15 px, the title ~21 px on an 800 px page.
const TITLE: u32 = 26;
const TEXT: u32 = 18;
/// Title band above the chart: the title and one subtitle line.
const HEADER: u32 = 70;
/// A caterpillar plot's pixels per level (room for its label), and the tallest page it grows to.
const ROW_HEIGHT: u32 = 16;
const MAX_HEIGHT: u32 = 4200;
/// Above this many observations in a panel, residuals are drawn as shaded cells (how many
/// observations fall in each) instead of points, which would be one blot and megabytes of SVG.
const MAX_POINTS: usize = 5000;
const CELLS: (usize, usize) = (100, 75);

/// Observations of one fit: fitted value (fixed plus random part) and residual, and which
/// equation each belongs to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResidualPoints {
    pub fitted: Vec<f64>,
    pub residual: Vec<f64>,
    /// Each observation's equation, an index into `equations` (empty: all in one equation).
    pub equation: Vec<usize>,
    /// Each equation's outcome, in file order.
    pub equations: Vec<String>,
    /// What `fitted` and `residual` are.
    pub scale: ResidualScale,
    /// A 0/1 outcome's binned residuals (y − μ averaged over bins of μ), drawn as a figure of
    /// their own; empty otherwise.
    pub binned: Vec<ResidualBin>,
}

/// The residuals a figure draws, so that its title and axes say which.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ResidualScale {
    /// y − (x'β + z'b) against x'β + z'b: a Gaussian outcome (lme4's `plot(lmer_fit)`).
    #[default]
    Raw,
    /// (y − μ)/√V(μ) (with binomial trials: on the proportion scale, weighted by the trials)
    /// against μ = g⁻¹(η): lme4's `plot(glmer_fit)`. `family` names the family and link.
    Pearson { family: String },
}

impl ResidualScale {
    /// The figure's title, its axes' names and what the subtitle adds after the count.
    fn words(&self) -> (&'static str, &'static str, &'static str, String) {
        match self {
            ResidualScale::Raw => (
                "residuals against fitted values",
                "fitted value",
                "residual",
                String::new(),
            ),
            ResidualScale::Pearson { family } => (
                "Pearson residuals against fitted means",
                "fitted mean (response scale)",
                "Pearson residual",
                format!(", {family}: Pearson residuals against fitted mean (response scale)"),
            ),
        }
    }
}

/// One random term's conditional modes: per effect its name, a value per level and, where the
/// fit provides them, the conditional SDs that give each mode its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Caterpillar {
    pub group: String,
    pub levels: Vec<String>,
    pub effects: Vec<CaterpillarEffect>,
    /// For a non-Gaussian family, the link whose scale the modes are on (`logit`, `log`), said
    /// on the axis.
    pub link: Option<String>,
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

/// One defined quantity's binned draws or replicates with its estimate and interval.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawFigure {
    pub name: String,
    /// What the values are, as the title names them: "Monte Carlo draws", "cluster bootstrap
    /// replicates".
    pub source: String,
    /// What one value is called on the count axis: "draws", "replicates".
    pub unit: String,
    /// How many were made, when some could not be used (failed or unconverged refits).
    pub requested: Option<usize>,
    /// Said after the count in the subtitle, e.g. ", resampling dyad".
    pub note: String,
    pub histogram: Histogram,
    pub estimate: f64,
    pub interval: Option<(f64, f64)>,
    /// The interval's coverage, e.g. 0.95.
    pub level: Option<f64>,
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

/// Tick labels for an axis spanning `span`: as many decimals as the ticks (about ten per axis)
/// need and no trailing zeros, so `6000` and `0.25` rather than `6000.0` and `0.25000`.
fn tick_format(span: f64) -> impl Fn(&f64) -> String {
    let decimals = if span > 0.0 && span.is_finite() {
        (1.0 - (span / 10.0).log10().floor()).clamp(0.0, 12.0) as usize
    } else {
        2
    };
    move |v: &f64| trim_number(format!("{v:.decimals$}"))
}

fn trim_number(mut text: String) -> String {
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

/// A number for a legend or subtitle: four significant digits.
fn short_number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        return format!("{v:.3e}");
    }
    let magnitude = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    let decimals = (3 - magnitude).clamp(0, 8) as usize;
    trim_number(format!("{v:.decimals$}"))
}

/// Fills `root`, writes the title and the subtitle centred above the chart, and hands back the
/// area below them.
fn with_header<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<SVGBackend<'a>, Shift>, String> {
    root.fill(&WHITE).map_err(failed)?;
    let (width, _) = root.dim_in_pixel();
    let centre = Pos::new(HPos::Center, VPos::Top);
    // A long definition name must not run off an 800 px page.
    let size = if title.chars().count() > 55 {
        TEXT + 2
    } else {
        TITLE
    };
    root.draw(&Text::new(
        title.to_string(),
        (width as i32 / 2, 8),
        (FONT, size).into_font().color(&BLACK).pos(centre),
    ))
    .map_err(failed)?;
    root.draw(&Text::new(
        subtitle.to_string(),
        (width as i32 / 2, 40),
        (
            FONT,
            if subtitle.chars().count() > 85 {
                TEXT - 2
            } else {
                TEXT
            },
        )
            .into_font()
            .color(&SUBTLE)
            .pos(centre),
    ))
    .map_err(failed)?;
    Ok(root.split_vertically(HEADER).1)
}

/// Residuals against fitted values with the zero line: one panel per equation (side by side,
/// two to a row), since equations have their own outcomes and scales. `model` names the fit in
/// the subtitle.
pub fn residuals_svg(points: &ResidualPoints, model: &str) -> Result<String, String> {
    let equations = points.equations.len().max(1);
    let columns = equations.min(2);
    let rows = equations.div_ceil(columns);
    let size = (SIZE.0, SIZE.1 + 300 * (rows as u32 - 1));
    let n = points
        .fitted
        .iter()
        .zip(&points.residual)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .count();
    let (title, x_desc, y_desc, what) = points.scale.words();
    let mut subtitle = format!("{model}: {n} observations{what}");
    if n > MAX_POINTS {
        subtitle.push_str(", shaded by how many fall in each cell");
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let body = with_header(&root, title, &subtitle)?;
        let panels = body.split_evenly((rows, columns));
        for (e, panel) in panels.iter().enumerate().take(equations) {
            let (fitted, residual): (Vec<f64>, Vec<f64>) = points
                .fitted
                .iter()
                .zip(&points.residual)
                .enumerate()
                .filter(|(i, _)| points.equation.get(*i).copied().unwrap_or(0) == e)
                .map(|(_, (&x, &y))| (x, y))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .unzip();
            let caption = if points.equations.len() > 1 {
                points.equations[e].clone()
            } else {
                String::new()
            };
            residual_panel(panel, (&fitted, &residual), &caption, (x_desc, y_desc))?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

fn residual_panel(
    panel: &DrawingArea<SVGBackend<'_>, Shift>,
    (fitted, residual): (&[f64], &[f64]),
    caption: &str,
    (x_desc, y_desc): (&str, &str),
) -> Result<(), String> {
    let (x0, x1) = padded_range(fitted.iter().copied());
    let (y0, y1) = padded_range(residual.iter().copied().chain([0.0]));
    let mut builder = ChartBuilder::on(panel);
    builder
        .margin(15)
        .margin_right(35)
        .x_label_area_size(55)
        .y_label_area_size(85);
    if !caption.is_empty() {
        builder.caption(caption, (FONT, TEXT + 3));
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(failed)?;
    let (x_label, y_label) = (tick_format(x1 - x0), tick_format(y1 - y0));
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .x_labels(if caption.is_empty() { 10 } else { 6 })
        .y_labels(8)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style((FONT, TEXT))
        .axis_desc_style((FONT, TEXT + 1))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(failed)?;
    if fitted.len() > MAX_POINTS {
        shaded_cells(&mut chart, fitted, residual, (x0, x1), (y0, y1))?;
    } else {
        let radius = if fitted.len() > 500 { 2 } else { 3 };
        chart
            .draw_series(
                fitted
                    .iter()
                    .zip(residual)
                    .map(|(&x, &y)| Circle::new((x, y), radius, POINT.mix(0.7).filled())),
            )
            .map_err(failed)?;
    }
    chart
        .draw_series(LineSeries::new(
            [(x0, 0.0), (x1, 0.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(failed)?;
    Ok(())
}

/// A 0/1 outcome's binned residuals (Gelman & Hill's binned residual plot): per bin of fitted
/// means, the average residual y − μ against the average fitted mean, between grey lines at ±2
/// standard errors of that average were the model true; a bin outside them is drawn in red (and
/// counted in the subtitle).
/// `model` names the fit in the subtitle.
pub fn binned_residuals_svg(bins: &[ResidualBin], model: &str) -> Result<String, String> {
    let n: usize = bins.iter().map(|b| b.n).sum();
    let outside = bins.iter().filter(|b| b.residual.abs() > b.band).count();
    let subtitle = format!(
        "{model}: {n} observations in {} bins; grey: ±2 SE if the model holds; {outside} outside (red)",
        bins.len()
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let body = with_header(&root, "binned residuals against fitted means", &subtitle)?;
        let (x0, x1) = padded_range(bins.iter().map(|b| b.fitted));
        let ends = bins.iter().flat_map(|b| [b.residual, b.band, -b.band]);
        let (y0, y1) = padded_range(ends.chain([0.0]));
        let mut chart = ChartBuilder::on(&body)
            .margin(15)
            .margin_right(35)
            .x_label_area_size(55)
            .y_label_area_size(85)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(failed)?;
        let (x_label, y_label) = (tick_format(x1 - x0), tick_format(y1 - y0));
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.08))
            .x_labels(10)
            .y_labels(8)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style((FONT, TEXT))
            .axis_desc_style((FONT, TEXT + 1))
            .x_desc("fitted mean (response scale), bin average")
            .y_desc("average residual (y − fitted mean)")
            .draw()
            .map_err(failed)?;
        draw_bins(&mut chart, bins, (x0, x1))?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The zero line, the band's two lines and each bin's average.
fn draw_bins(
    chart: &mut Chart<'_, '_>,
    bins: &[ResidualBin],
    (x0, x1): (f64, f64),
) -> Result<(), String> {
    chart
        .draw_series(LineSeries::new(
            [(x0, 0.0), (x1, 0.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(failed)?;
    // The band is said in the subtitle: a legend box would hide bins.
    for sign in [1.0, -1.0] {
        let line = bins.iter().map(|b| (b.fitted, sign * b.band));
        chart
            .draw_series(LineSeries::new(line, BAND.stroke_width(2)))
            .map_err(failed)?;
    }
    chart
        .draw_series(bins.iter().map(|b| {
            let colour = if b.residual.abs() > b.band {
                MARK
            } else {
                POINT
            };
            Circle::new((b.fitted, b.residual), 5, colour.filled())
        }))
        .map_err(failed)?;
    Ok(())
}

/// A chart with numbers on both axes, as every figure here draws.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Counts per cell of the panel's `CELLS` grid over [x0, x1] × [y0, y1], shaded on a log scale
/// so that single outliers stay visible.
fn shaded_cells(
    chart: &mut Chart<'_, '_>,
    fitted: &[f64],
    residual: &[f64],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<(), String> {
    let (nx, ny) = CELLS;
    let (wx, wy) = ((x1 - x0) / nx as f64, (y1 - y0) / ny as f64);
    let mut counts = vec![0usize; nx * ny];
    for (&x, &y) in fitted.iter().zip(residual) {
        let i = (((x - x0) / wx) as usize).min(nx - 1);
        let j = (((y - y0) / wy) as usize).min(ny - 1);
        counts[j * nx + i] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    chart
        .draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(k, &c)| {
                    let (i, j) = ((k % nx) as f64, (k / nx) as f64);
                    let shade = 0.15 + 0.85 * (1.0 + c as f64).ln() / (1.0 + most).ln();
                    Rectangle::new(
                        [
                            (x0 + i * wx, y0 + j * wy),
                            (x0 + (i + 1.0) * wx, y0 + (j + 1.0) * wy),
                        ],
                        POINT.mix(shade).filled(),
                    )
                }),
        )
        .map_err(failed)?;
    Ok(())
}

/// A caterpillar plot: one panel per effect, each mode with its 95% interval (mode ± 1.96
/// conditional SD) where the SDs are known. Levels are sorted by the first effect's mode in every
/// panel, as lme4's `dotplot` does, so that a level sits on the same row across panels. `model`
/// names the fit in the subtitle.
pub fn caterpillar_svg(term: &Caterpillar, model: &str) -> Result<String, String> {
    let mut order: Vec<usize> = (0..term.levels.len()).collect();
    if let Some(first) = term.effects.first() {
        order.retain(|&i| i < first.values.len());
        order.sort_by(|&a, &b| first.values[a].total_cmp(&first.values[b]));
    }
    let n = order.len();
    let names: Vec<String> = order.iter().map(|&i| term.levels[i].clone()).collect();
    let with_sd = term.effects.iter().any(|e| e.sd.is_some());
    let subtitle = format!(
        "{model}: {n} level{}{}",
        if n == 1 { "" } else { "s" },
        if with_sd {
            ", mode ± 1.96 conditional SD (95%)"
        } else {
            ""
        }
    );
    // A row per level, tall enough for its label while the page stays printable; past that
    // only some levels are named.
    let row = ROW_HEIGHT as usize;
    let height = (HEADER as usize + 110 + row * n).clamp(SIZE.1 as usize, MAX_HEIGHT as usize);
    let plot_height = height.saturating_sub(HEADER as usize + 110);
    let labelled = if plot_height >= row * n {
        n
    } else {
        plot_height / row
    };
    let width = SIZE.0.max(330 * term.effects.len() as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height as u32)).into_drawing_area();
        let body = with_header(
            &root,
            &format!("conditional modes by {}", term.group),
            &subtitle,
        )?;
        let panels = body.split_evenly((1, term.effects.len().max(1)));
        for (effect, panel) in term.effects.iter().zip(&panels) {
            // Per row (level in `order`), the mode and the half-width of its interval.
            let modes: Vec<(f64, Option<f64>)> = order
                .iter()
                .map(|&i| (mode(effect, i), half_interval(effect, i)))
                .collect();
            let axis = match &term.link {
                Some(link) => format!("conditional mode ({link} scale)"),
                None => "conditional mode".to_string(),
            };
            caterpillar_panel(panel, (&effect.name, &axis), &modes, &names, labelled)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The conditional mode of level `i` (NaN when the effect has none).
fn mode(effect: &CaterpillarEffect, i: usize) -> f64 {
    effect.values.get(i).copied().unwrap_or(f64::NAN)
}

/// Half the width of level `i`'s interval, where a finite conditional SD gives one.
fn half_interval(effect: &CaterpillarEffect, i: usize) -> Option<f64> {
    effect
        .sd
        .as_ref()
        .and_then(|sd| sd.get(i))
        .map(|s| CATERPILLAR_Z * s)
        .filter(|h| h.is_finite())
}

/// One effect's panel, headed `caption`: `modes` (mode and half-interval per row, bottom up)
/// against the level `names`, `labelled` of them named on the axis; `axis` names the x axis.
fn caterpillar_panel(
    panel: &DrawingArea<SVGBackend<'_>, Shift>,
    (caption, axis): (&str, &str),
    modes: &[(f64, Option<f64>)],
    names: &[String],
    labelled: usize,
) -> Result<(), String> {
    let n = modes.len();
    let ends = modes.iter().flat_map(|&(v, half)| match half {
        Some(h) => [v - h, v + h],
        None => [v, v],
    });
    let (x0, x1) = padded_range(ends.chain([0.0]));
    let label_width = names.iter().map(|s| s.chars().count()).max().unwrap_or(1);
    let mut chart = ChartBuilder::on(panel)
        .caption(caption, (FONT, TEXT + 1))
        .margin(10)
        .margin_right(25)
        .x_label_area_size(55)
        .y_label_area_size((20 + 10 * label_width as u32).clamp(40, 160))
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
    let x_label = tick_format(x1 - x0);
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .y_labels(labelled.max(1))
        .y_label_formatter(&label)
        // Panels are narrow when a term has several effects: few ticks keep their
        // labels apart.
        .x_labels(5)
        .x_label_formatter(&x_label)
        .label_style((FONT, TEXT - 3))
        .axis_desc_style((FONT, TEXT))
        .x_desc(axis)
        .draw()
        .map_err(failed)?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, -0.5), (0.0, n as f64 - 0.5)],
            BLACK.stroke_width(1),
        ))
        .map_err(failed)?;
    draw_modes(&mut chart, modes)
}

/// Each finite mode as a dot on its row, over its interval's line where it has one.
fn draw_modes(chart: &mut Chart<'_, '_>, modes: &[(f64, Option<f64>)]) -> Result<(), String> {
    chart
        .draw_series(modes.iter().enumerate().filter_map(|(rank, &(v, half))| {
            let h = half?;
            v.is_finite().then(|| {
                PathElement::new(
                    vec![(v - h, rank as f64), (v + h, rank as f64)],
                    POINT.stroke_width(2),
                )
            })
        }))
        .map_err(failed)?;
    let radius = if modes.len() > 100 { 2 } else { 4 };
    chart
        .draw_series(
            modes
                .iter()
                .enumerate()
                .filter(|(_, &(v, _))| v.is_finite())
                .map(|(rank, &(v, _))| Circle::new((v, rank as f64), radius, POINT.filled())),
        )
        .map_err(failed)?;
    Ok(())
}

/// The histogram of a defined quantity's draws or replicates, the estimate as a solid black
/// line and the interval's ends as dashed red lines, with a legend giving their values. `model`
/// names the fit in the subtitle.
pub fn draws_svg(figure: &DrawFigure, model: &str) -> Result<String, String> {
    let h = &figure.histogram;
    let title = format!("{} of {}", figure.source, figure.name);
    let count = match figure.requested {
        Some(n) if n != h.total() => format!("{} of {n}", h.total()),
        _ => h.total().to_string(),
    };
    let mut subtitle = format!("{model}: {count} {}{}", figure.unit, figure.note);
    let outside = h.below + h.above;
    if outside > 0 {
        subtitle.push_str(&format!("; {outside} off the chart"));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let body = with_header(&root, &title, &subtitle)?;
        let (x0, x1) = padded_range(
            [h.lower, h.upper(), figure.estimate]
                .into_iter()
                .chain(figure.interval.iter().flat_map(|&(a, b)| [a, b])),
        );
        // Headroom for the legend above the tallest bar.
        let top = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.3;
        let mut chart = ChartBuilder::on(&body)
            .margin(15)
            .margin_top(5)
            // Room for half of the last tick label.
            .margin_right(35)
            .x_label_area_size(55)
            .y_label_area_size(85)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(failed)?;
        let x_label = tick_format(x1 - x0);
        let y_label = |v: &f64| format!("{v:.0}");
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.08))
            .disable_x_mesh()
            .x_labels(10)
            .y_labels(6)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style((FONT, TEXT))
            .axis_desc_style((FONT, TEXT + 1))
            .x_desc(figure.name.as_str())
            .y_desc(figure.unit.as_str())
            .draw()
            .map_err(failed)?;
        // One rectangle per bin, a pixel of white either side so the bins can be told apart.
        chart
            .draw_series(h.counts.iter().enumerate().map(|(k, &c)| {
                let left = h.lower + h.width * k as f64;
                let mut bar =
                    Rectangle::new([(left, 0.0), (left + h.width, c as f64)], POINT.filled());
                bar.set_margin(0, 0, 1, 0);
                bar
            }))
            .map_err(failed)?;
        draw_marks(&mut chart, figure, top)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The interval's ends and the estimate as vertical lines up to `top`, with their legend.
fn draw_marks<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    figure: &DrawFigure,
    top: f64,
) -> Result<(), String> {
    // No usable values leave the interval NaN: then no lines, rather than lines at 0.
    let interval = figure
        .interval
        .filter(|(lo, hi)| lo.is_finite() && hi.is_finite());
    if let Some((lo, hi)) = interval {
        let label = match figure.level {
            Some(level) => format!(
                "{}% interval: {} to {}",
                short_number(100.0 * level),
                short_number(lo),
                short_number(hi)
            ),
            None => format!("interval: {} to {}", short_number(lo), short_number(hi)),
        };
        let style = MARK.stroke_width(3);
        for (k, x) in [lo, hi].into_iter().enumerate() {
            let series = chart
                .draw_series(DashedLineSeries::new([(x, 0.0), (x, top)], 10, 6, style))
                .map_err(failed)?;
            if k == 0 {
                series
                    .label(label.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
            }
        }
    }
    let estimate_style = BLACK.stroke_width(3);
    if figure.estimate.is_finite() {
        chart
            .draw_series(LineSeries::new(
                [(figure.estimate, 0.0), (figure.estimate, top)],
                estimate_style,
            ))
            .map_err(failed)?
            .label(format!("estimate: {}", short_number(figure.estimate)))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], estimate_style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, TEXT))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(failed)?;
    Ok(())
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
            ..ResidualPoints::default()
        };
        let svg = residuals_svg(&points, "r").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        // Two finite points drawn; the NaN one left out.
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn pearson_residuals_say_so() {
        let points = ResidualPoints {
            fitted: vec![0.2, 0.5],
            residual: vec![1.5, -0.5],
            scale: ResidualScale::Pearson {
                family: "poisson (log link)".into(),
            },
            ..ResidualPoints::default()
        };
        let svg = residuals_svg(&points, "m").unwrap();
        assert!(svg.contains("Pearson residuals against fitted means"));
        assert!(svg.contains("fitted mean (response scale)"));
        assert!(!svg.contains("fitted value"));
    }

    #[test]
    fn binned_residuals_mark_bins_outside_their_band() {
        let bin = |fitted: f64, residual: f64| ResidualBin {
            fitted,
            residual,
            n: 10,
            lowest: fitted - 0.01,
            highest: fitted + 0.01,
            band: 0.1,
        };
        let bins = [bin(0.2, 0.05), bin(0.4, -0.2), bin(0.6, 0.0)];
        let svg = binned_residuals_svg(&bins, "m").unwrap();
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("fill=\"#D62728\"").count(), 1);
        assert!(svg.contains("30 observations in 3 bins"));
        assert!(svg.contains("1 outside (red)"));
    }

    fn figure(estimate: f64, interval: Option<(f64, f64)>) -> DrawFigure {
        DrawFigure {
            name: "ab".into(),
            source: "row bootstrap replicates".into(),
            unit: "replicates".into(),
            requested: Some(10),
            note: String::new(),
            histogram: crate::infer::histogram::histogram(&[1.0, 2.0, 2.5, 3.0]),
            estimate,
            interval,
            level: Some(0.9),
        }
    }

    #[test]
    fn distribution_figure_says_what_it_shows() {
        let svg = draws_svg(&figure(2.0, Some((1.1, 2.9))), "m.tandem").unwrap();
        assert!(svg.contains("row bootstrap replicates of ab"));
        // 4 of the 10 replicates usable.
        assert!(svg.contains("m.tandem: 4 of 10 replicates"));
        assert!(svg.contains("90% interval: 1.1 to 2.9"));
        assert!(svg.contains("estimate: 2"));
        // Rice's rule's minimum of 10 bins.
        assert_eq!(svg.matches("fill=\"#1F77B4\"").count(), 10);
    }

    #[test]
    fn no_usable_values_draw_no_lines() {
        let svg = draws_svg(&figure(f64::NAN, Some((f64::NAN, f64::NAN))), "m").unwrap();
        assert!(!svg.contains("interval:") && !svg.contains("estimate:"));
        assert!(!svg.contains("#D62728"));
    }

    #[test]
    fn ticks_drop_trailing_zeros() {
        let f = tick_format(2.0);
        assert_eq!(f(&0.25), "0.25");
        assert_eq!(f(&6000.0), "6000");
        assert_eq!(f(&-0.0), "0");
        assert_eq!(tick_format(40000.0)(&20000.0), "20000");
        assert_eq!(short_number(0.0375712), "0.03757");
        assert_eq!(short_number(-0.30717), "-0.3072");
        assert_eq!(short_number(95.0), "95");
    }

    #[test]
    fn names_become_file_safe() {
        assert_eq!(file_safe("cask:batch"), "cask_batch");
        assert_eq!(file_safe("a b/c"), "a_b_c");
    }
}
