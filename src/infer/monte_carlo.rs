//! Monte Carlo (quasi-Bayesian) intervals for defined quantities: draw the whole parameter
//! vector from N(θ̂, V̂), evaluate every definition on each draw, and take percentiles (R's
//! quantile type 7) and the standard deviation of the draws.
//!
//! Owns the factorisation of V̂ (Cholesky, continuous in V̂; a semi-definite V̂ works), the draw
//! generator and its seeding, and the parallel layout. Reproducibility is by construction:
//! draws are made in FIXED-SIZE chunks, chunk `c` uses ChaCha8 seeded with `seed` on stream
//! `c`, so which thread runs a chunk never changes a digit. It must not compile definitions or
//! know what they mean (mediation builds on its output).

use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::diagnostics::{Diagnostic, Location};

use super::defined::DefinedQuantities;
use super::draw_stream::{self, EXACT_DRAWS};
use super::histogram::{histogram, Histogram};

/// Draws per chunk. Part of the reproducibility contract: changing it changes the digits.
pub const CHUNK_DRAWS: usize = 4096;

/// Eigenvalues below `−NEGATIVE_TOLERANCE · λ_max` are worth a warning; smaller negative ones
/// are rounding noise of a singular V̂ and are clamped silently.
const NEGATIVE_TOLERANCE: f64 = 1e-10;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonteCarloSettings {
    pub draws: usize,
    pub level: f64,
    pub seed: u64,
    /// Show a progress bar on stderr (drawn only when stderr is a terminal).
    pub progress: bool,
}

/// The Monte Carlo summary of one defined quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonteCarloInterval {
    pub lower: f64,
    pub upper: f64,
    pub mean: f64,
    /// The standard deviation of the draws (n − 1 divisor).
    pub sd: f64,
    /// Draws with a finite value (the others, e.g. `sqrt` of a negative variance draw, are
    /// left out of the summary and counted in a warning).
    pub finite_draws: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonteCarloResult {
    /// One per definition, in definition order.
    pub intervals: Vec<MonteCarloInterval>,
    pub draws: usize,
    pub level: f64,
    pub seed: u64,
    pub warnings: Vec<Diagnostic>,
}

/// θ = mean + F z with z standard normal of dimension `rank` (the number of parameters): F is the
/// lower Cholesky factor of V̂ (of V̂ with its negative eigenvalues set to 0, when it has any),
/// with a column whose pivot is zero up to rounding left at zero (a semi-definite V̂).
///
/// Why Cholesky and not an eigen factor U·sqrt(Λ): the Cholesky factor is unique and moves
/// continuously with V̂, while eigenvectors may flip sign or swap order under a change of V̂ in
/// its tenth digit (another version's rounding), which redraws every θ: the same file, data
/// and seed would print a visibly different interval. Every draw also uses the same number of
/// normals whatever the rank, so a direction dropped at a boundary does not shift the others.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawFactor {
    pub mean: Vec<f64>,
    /// Column-major `mean.len() × rank`: θ is built as `mean + Σ_j z_j·F[:, j]`, whose
    /// inner loop runs over independent rows and vectorises, where a row-by-row dot product
    /// would be one long dependent chain of additions.
    pub factor: Vec<f64>,
    pub rank: usize,
    pub warnings: Vec<Diagnostic>,
}

/// A pivot at most this fraction of its column's variance is a dependent column of a
/// semi-definite V̂ (rounding, not variance).
const ZERO_PIVOT: f64 = 1e-10;

impl DrawFactor {
    pub fn new(estimates: &[f64], covariance: &DMatrix<f64>) -> Result<Self, Diagnostic> {
        let n = estimates.len();
        if covariance.nrows() != n || covariance.ncols() != n {
            return Err(Diagnostic::error(
                format!(
                    "the parameter covariance is {}×{} but there are {n} parameters",
                    covariance.nrows(),
                    covariance.ncols()
                ),
                Location::None,
            ));
        }
        if covariance.iter().chain(estimates).any(|x| !x.is_finite()) {
            return Err(Diagnostic::error(
                "the parameter estimates or their covariance are not finite, so no Monte Carlo \
                 interval can be drawn",
                Location::None,
            ));
        }
        let mut symmetric = (covariance + covariance.transpose()) * 0.5;
        let eigen = SymmetricEigen::new(symmetric.clone());
        let largest = eigen.eigenvalues.iter().fold(0.0f64, |m, &l| m.max(l));
        let negative: Vec<f64> = eigen
            .eigenvalues
            .iter()
            .copied()
            .filter(|&l| l < -NEGATIVE_TOLERANCE * largest.max(f64::MIN_POSITIVE))
            .collect();
        let mut warnings = Vec::new();
        if !negative.is_empty() {
            let smallest = negative.iter().fold(0.0f64, |m, &l| m.min(l));
            warnings.push(Diagnostic::warning(
                format!(
                    "the parameter covariance is not positive semi-definite ({} negative \
                     eigenvalue{}, the smallest {smallest:.3e}); Monte Carlo draws set them to 0",
                    negative.len(),
                    if negative.len() == 1 { "" } else { "s" }
                ),
                Location::None,
            ));
            let clamped = eigen.eigenvalues.map(|l| l.max(0.0));
            symmetric = &eigen.eigenvectors
                * DMatrix::from_diagonal(&clamped)
                * eigen.eigenvectors.transpose();
        }
        let l = crate::estimate::semidefinite_cholesky(&symmetric, |j, pivot| {
            pivot <= ZERO_PIVOT * symmetric[(j, j)].abs() || pivot <= 0.0
        });
        Ok(DrawFactor {
            mean: estimates.to_vec(),
            factor: l.as_slice().to_vec(),
            rank: n,
            warnings,
        })
    }
}

/// Evaluates every definition on `draws` parameter draws; the result is draw-major
/// (`draws × definitions`). Identical for any rayon thread count.
pub fn draw_values(
    quantities: &DefinedQuantities,
    factor: &DrawFactor,
    draws: usize,
    seed: u64,
    progress: bool,
) -> Vec<f64> {
    let m = quantities.len();
    let mut values = vec![0.0; draws * m];
    if m == 0 || draws == 0 {
        return values;
    }
    let bar = progress_bar(progress, draws);
    values
        .par_chunks_mut(CHUNK_DRAWS * m)
        .enumerate()
        .for_each(|(chunk, out)| {
            draw_chunk(quantities, factor, seed, chunk, out);
            bar.inc(CHUNK_DRAWS as u64);
        });
    bar.finish_and_clear();
    values
}

/// A progress bar over `draws` Monte Carlo draws (hidden unless `progress`).
pub(crate) fn progress_bar(progress: bool, draws: usize) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let chunks = draws.div_ceil(CHUNK_DRAWS);
    ProgressBar::new(chunks as u64 * CHUNK_DRAWS as u64).with_style(
        ProgressStyle::with_template("Monte Carlo {bar:40} {pos}/{len} draws ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// The draws of chunk `chunk` (ChaCha8 seeded with `seed` on stream `chunk`), every definition
/// evaluated on each, draw-major into `out` (`out.len() / m` draws, at most `CHUNK_DRAWS`).
pub(crate) fn draw_chunk(
    quantities: &DefinedQuantities,
    factor: &DrawFactor,
    seed: u64,
    chunk: usize,
    out: &mut [f64],
) {
    let m = quantities.len();
    let n = factor.mean.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(chunk as u64);
    let mut z = vec![0.0; factor.rank];
    let mut theta = vec![0.0; n];
    for draw in out.chunks_exact_mut(m) {
        for zj in z.iter_mut() {
            *zj = rng.sample(StandardNormal);
        }
        theta.copy_from_slice(&factor.mean);
        for (column, &zj) in factor.factor.chunks_exact(n.max(1)).zip(&z) {
            for (t, f) in theta.iter_mut().zip(column) {
                *t += zj * f;
            }
        }
        quantities.evaluate(&theta, draw);
    }
}

/// R's `quantile(x, p, type = 7)`; reorders `x`. `NaN` for an empty slice.
pub fn quantile_type7(x: &mut [f64], p: f64) -> f64 {
    let n = x.len();
    if n == 0 {
        return f64::NAN;
    }
    let index = (n - 1) as f64 * p;
    let lo = index.floor() as usize;
    let hi = (index.ceil() as usize).min(n - 1);
    let (_, &mut low, right) = x.select_nth_unstable_by(lo, f64::total_cmp);
    let high = if hi > lo {
        right.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        low
    };
    let h = index - lo as f64;
    if h > 0.0 && high != low {
        (1.0 - h) * low + h * high
    } else {
        low
    }
}

/// R's type 7 from the two order statistics around the quantile, rounded as `quantile_type7`.
fn type7(o: draw_stream::OrderStatistics) -> f64 {
    if o.h > 0.0 && o.high != o.low {
        (1.0 - o.h) * o.low + o.h * o.high
    } else {
        o.low
    }
}

/// The finite values of column `k` of draw-major `values` with `m` columns, in draw order.
pub(crate) fn finite_column(values: &[f64], m: usize, k: usize) -> Vec<f64> {
    values
        .iter()
        .skip(k)
        .step_by(m.max(1))
        .copied()
        .filter(|v| v.is_finite())
        .collect()
}

/// Summarises draw-major `values` column `k`: percentiles at `level` and the draws' SD.
fn summarize(values: &[f64], m: usize, k: usize, level: f64) -> MonteCarloInterval {
    let mut column = finite_column(values, m, k);
    let count = column.len();
    let mean = column.iter().sum::<f64>() / count as f64;
    let sd = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count as f64 - 1.0)).sqrt();
    let lower = quantile_type7(&mut column, (1.0 - level) / 2.0);
    let upper = quantile_type7(&mut column, (1.0 + level) / 2.0);
    MonteCarloInterval {
        lower,
        upper,
        mean,
        sd,
        finite_draws: count,
    }
}

/// Monte Carlo intervals of every definition.
pub fn monte_carlo(
    quantities: &DefinedQuantities,
    estimates: &[f64],
    covariance: &DMatrix<f64>,
    settings: &MonteCarloSettings,
) -> Result<MonteCarloResult, Vec<Diagnostic>> {
    let factor = checked_factor(quantities, estimates, covariance, settings)?;
    let intervals = intervals(quantities, &factor, settings);
    let mut warnings = factor.warnings;
    for (program, interval) in quantities.programs.iter().zip(&intervals) {
        let dropped = settings.draws - interval.finite_draws;
        if dropped > 0 {
            warnings.push(Diagnostic::warning(
                format!(
                    "`{}` has no finite value in {dropped} of {} Monte Carlo draws (e.g. the \
                     square root of a negative variance draw); its interval uses the other {}",
                    program.name, settings.draws, interval.finite_draws
                ),
                Location::Source(program.span),
            ));
        }
    }
    Ok(MonteCarloResult {
        intervals,
        draws: settings.draws,
        level: settings.level,
        seed: settings.seed,
        warnings,
    })
}

/// The draw factor of V̂, once the settings and the estimates are usable; every problem found
/// otherwise.
fn checked_factor(
    quantities: &DefinedQuantities,
    estimates: &[f64],
    covariance: &DMatrix<f64>,
    settings: &MonteCarloSettings,
) -> Result<DrawFactor, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    if settings.draws < 2 {
        errors.push(Diagnostic::error(
            format!("Monte Carlo needs at least 2 draws, not {}", settings.draws),
            Location::None,
        ));
    }
    if !(settings.level > 0.0 && settings.level < 1.0) {
        errors.push(Diagnostic::error(
            format!(
                "the interval level must be between 0 and 1, not {}",
                settings.level
            ),
            Location::None,
        ));
    }
    if estimates.len() != quantities.parameters {
        errors.push(Diagnostic::error(
            format!(
                "{} estimates given for a parameter table of {} rows",
                estimates.len(),
                quantities.parameters
            ),
            Location::None,
        ));
    }
    let factor = DrawFactor::new(estimates, covariance).map_err(|e| vec![e]);
    match factor {
        Ok(f) if errors.is_empty() => Ok(f),
        Ok(_) => Err(errors),
        Err(mut e) => {
            errors.append(&mut e);
            Err(errors)
        }
    }
}

/// Every definition's interval: from all draws kept and sorted, or past `EXACT_DRAWS` from the
/// stream in bounded memory, with the same order statistics.
fn intervals(
    quantities: &DefinedQuantities,
    factor: &DrawFactor,
    settings: &MonteCarloSettings,
) -> Vec<MonteCarloInterval> {
    let m = quantities.len();
    if settings.draws > EXACT_DRAWS {
        let probabilities = [(1.0 - settings.level) / 2.0, (1.0 + settings.level) / 2.0];
        draw_stream::summarise(
            quantities,
            factor,
            settings.draws,
            settings.seed,
            &probabilities,
            settings.progress,
        )
        .into_iter()
        .map(|c| MonteCarloInterval {
            lower: type7(c.quantiles[0]),
            upper: type7(c.quantiles[1]),
            mean: c.mean,
            sd: c.sd,
            finite_draws: c.finite,
        })
        .collect()
    } else {
        let values = draw_values(
            quantities,
            factor,
            settings.draws,
            settings.seed,
            settings.progress,
        );
        (0..m)
            .map(|k| summarize(&values, m, k, settings.level))
            .collect()
    }
}

/// The draws `monte_carlo` makes with the same settings (same seed, same digits), binned per
/// definition, keeping the finite draws as the interval does.
pub fn draw_histograms(
    quantities: &DefinedQuantities,
    estimates: &[f64],
    covariance: &DMatrix<f64>,
    settings: &MonteCarloSettings,
) -> Result<Vec<Histogram>, Diagnostic> {
    let factor = DrawFactor::new(estimates, covariance)?;
    if settings.draws > EXACT_DRAWS {
        return Ok(draw_stream::histograms(
            quantities,
            &factor,
            settings.draws,
            settings.seed,
        ));
    }
    let values = draw_values(quantities, &factor, settings.draws, settings.seed, false);
    let m = quantities.len();
    Ok((0..m)
        .map(|k| {
            let column: Vec<f64> = values.iter().skip(k).step_by(m.max(1)).copied().collect();
            histogram(&column)
        })
        .collect())
}
