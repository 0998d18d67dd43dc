//! Bootstraps: the cluster bootstrap (resample the groups of one column with replacement), the
//! row bootstrap (resample rows), and the parametric bootstrap (simulate outcomes from the fitted
//! model), each followed by a refit and percentile intervals of whatever the refit reports.
//!
//! Owns making the replicate frames, the replicate seeds, the parallel schedule and the
//! summaries (percentile interval, bootstrap SD, failed and non-converged counts). It does not
//! fit: the caller hands it a `refit` function from a frame to the statistics of interest (the
//! ParameterTable's estimates, and the defined quantities evaluated on them), so that every
//! engine and every kind of statistic goes through the same resampling.
//!
//! Reproducibility: replicate `r`'s generator is ChaCha8 seeded from `seed` on stream `r`, so a
//! replicate's data do not depend on which thread runs it or in what order; replicates run in
//! parallel (rayon) over fixed-size chunks and are collected in replicate order. With a refit that
//! is itself deterministic (the optimizer is), results are bit-identical for any thread count.
//!
//! Cluster bootstrap: a group drawn twice must count as two groups, so each drawn group gets a new
//! id (its draw index) in the resampled column and in every random term's grouping column nested
//! in it (e.g. sessions within patients); grouping columns that are not nested in it (crossed
//! factors) keep their values. The frame's prepared values (`let` columns) are resampled with their
//! rows, not recomputed.

use std::collections::HashMap;

use nalgebra::DVector;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::data::{Column, MISSING_CODE};
use crate::design::{observation_rows, ObservationRows};
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::Fit;
use crate::model::ModelSpec;
use crate::prepare::AnalysisFrame;

/// Replicates per parallel task: small enough to balance two cores, large enough to amortise
/// scheduling. The schedule does not affect the results.
const CHUNK: usize = 8;

/// How replicate data sets are made.
#[derive(Debug, Clone, Copy)]
pub enum Resampling<'a> {
    /// Resample the groups of this column with replacement.
    Clusters(&'a str),
    /// Resample rows with replacement.
    Rows,
    /// Simulate every outcome from the fitted model: fixed part, random effects drawn from their
    /// fitted covariance, residuals from the fitted residual variances.
    Parametric(&'a Fit),
}

/// What one refit reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Replicate {
    pub values: Vec<f64>,
    pub converged: bool,
}

/// The bootstrap's settings.
pub struct Settings<'a> {
    pub draws: usize,
    /// Coverage of the percentile interval, e.g. 0.95.
    pub level: f64,
    pub seed: u64,
    /// Called once per finished replicate (from any thread), for a progress bar.
    pub progress: Option<&'a (dyn Fn() + Sync)>,
}

/// The replicates and their summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    pub draws: usize,
    pub level: f64,
    /// Per replicate: its statistics, or why it failed.
    pub replicates: Vec<Result<Replicate, String>>,
    /// Refits that returned an error (or the wrong number of statistics).
    pub failed: usize,
    /// Refits that did not converge; their values are left out of the summaries.
    pub not_converged: usize,
    /// Per statistic: the percentile interval (R's `quantile` type 7) over the usable
    /// replicates; NaN when none are usable.
    pub intervals: Vec<(f64, f64)>,
    /// Per statistic: the SD of the usable replicates.
    pub sd: Vec<f64>,
    /// Per statistic: how many replicates were usable (finite value, converged refit).
    pub usable: Vec<usize>,
}

/// Run `settings.draws` replicates of `frame` resampled by `resampling`, refit each with
/// `refit`, and summarise the `statistics` values (the refit must report that many).
pub fn bootstrap<F>(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    resampling: Resampling,
    settings: &Settings,
    statistics: usize,
    refit: F,
) -> Result<Bootstrap, Diagnostic>
where
    F: Fn(&AnalysisFrame) -> Result<Replicate, String> + Sync,
{
    let maker = ReplicateMaker::new(spec, frame, resampling)?;
    let draws = settings.draws;
    let chunks: Vec<(usize, usize)> = (0..draws)
        .step_by(CHUNK)
        .map(|start| (start, (start + CHUNK).min(draws)))
        .collect();
    let replicates: Vec<Result<Replicate, String>> = chunks
        .into_par_iter()
        .flat_map_iter(|(start, end)| {
            let maker = &maker;
            let refit = &refit;
            (start..end).map(move |r| {
                let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
                rng.set_stream(r as u64);
                let result = maker
                    .make(&mut rng)
                    .and_then(|f| refit(&f))
                    .and_then(|rep| {
                        if rep.values.len() == statistics {
                            Ok(rep)
                        } else {
                            Err(format!(
                                "the refit has {} parameters, the model {statistics} (a level or \
                             group missing from the replicate)",
                                rep.values.len()
                            ))
                        }
                    });
                if let Some(tick) = settings.progress {
                    tick();
                }
                result
            })
        })
        .collect();
    Ok(summarise(replicates, statistics, settings.level))
}

fn summarise(
    replicates: Vec<Result<Replicate, String>>,
    statistics: usize,
    level: f64,
) -> Bootstrap {
    let failed = replicates.iter().filter(|r| r.is_err()).count();
    let not_converged = replicates
        .iter()
        .filter(|r| matches!(r, Ok(rep) if !rep.converged))
        .count();
    let alpha = (1.0 - level) / 2.0;
    let mut intervals = Vec::with_capacity(statistics);
    let mut sd = Vec::with_capacity(statistics);
    let mut usable = Vec::with_capacity(statistics);
    for s in 0..statistics {
        let mut values = usable_values(&replicates, s);
        values.sort_by(f64::total_cmp);
        usable.push(values.len());
        intervals.push((quantile(&values, alpha), quantile(&values, 1.0 - alpha)));
        sd.push(standard_deviation(&values));
    }
    Bootstrap {
        draws: replicates.len(),
        level,
        replicates,
        failed,
        not_converged,
        intervals,
        sd,
        usable,
    }
}

/// Statistic `s` of the replicates the summaries use (a converged refit, a finite value), in
/// replicate order.
fn usable_values(replicates: &[Result<Replicate, String>], s: usize) -> Vec<f64> {
    replicates
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|rep| rep.converged)
        .filter_map(|rep| rep.values.get(s).copied())
        .filter(|v| v.is_finite())
        .collect()
}

impl Bootstrap {
    /// Statistic `s` of exactly the replicates its interval and SD were computed from (for
    /// figures of the replicate distribution).
    pub fn usable(&self, s: usize) -> Vec<f64> {
        usable_values(&self.replicates, s)
    }
}

/// R's `quantile(x, prob, type = 7)` of sorted values; NaN for none.
pub fn quantile(sorted: &[f64], prob: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * prob;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

fn standard_deviation(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return f64::NAN;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (ss / (n - 1) as f64).sqrt()
}

/// Makes replicate frames; everything that does not depend on the draw is worked out once.
enum ReplicateMaker<'a> {
    Clusters {
        frame: &'a AnalysisFrame,
        /// The frame rows of each cluster.
        members: Vec<Vec<usize>>,
        /// Frame columns to renumber per draw, with each row's level within the column.
        renumber: Vec<(usize, Vec<u32>, usize)>,
    },
    Rows {
        frame: &'a AnalysisFrame,
    },
    Parametric(Simulator<'a>),
}

impl<'a> ReplicateMaker<'a> {
    fn new(
        spec: &'a ModelSpec,
        frame: &'a AnalysisFrame,
        resampling: Resampling<'a>,
    ) -> Result<Self, Diagnostic> {
        match resampling {
            Resampling::Rows => Ok(ReplicateMaker::Rows { frame }),
            Resampling::Parametric(fit) => Simulator::new(spec, frame, fit).map(Self::Parametric),
            Resampling::Clusters(column) => {
                let Some(index) = frame.names.iter().position(|n| n == column) else {
                    return Err(Diagnostic::error(
                        format!("bootstrap: no column `{column}` to resample"),
                        Location::None,
                    ));
                };
                let (codes, nlevels) = level_codes(&frame.columns[index]);
                let mut members = vec![Vec::new(); nlevels];
                for (row, &c) in codes.iter().enumerate() {
                    if c != MISSING_CODE {
                        members[c as usize].push(row);
                    }
                }
                let mut renumber = vec![(index, codes.clone(), nlevels)];
                let mut seen = vec![index];
                for term in &spec.random {
                    for g in &term.grouping {
                        let Some(gi) = frame.names.iter().position(|n| n == g) else {
                            continue;
                        };
                        if seen.contains(&gi) {
                            continue;
                        }
                        seen.push(gi);
                        let (inner, n_inner) = level_codes(&frame.columns[gi]);
                        if nested(&inner, n_inner, &codes) {
                            renumber.push((gi, inner, n_inner));
                        }
                    }
                }
                for (ci, ..) in &renumber {
                    let name = &frame.names[*ci];
                    let predictor = spec
                        .equations
                        .iter()
                        .flat_map(|e| &e.terms)
                        .any(|t| t.variables.contains(name));
                    if predictor {
                        return Err(Diagnostic::error(
                            format!(
                                "bootstrap: `{name}` is a grouping column renumbered in each \
                                 replicate and also a fixed-effect predictor"
                            ),
                            Location::None,
                        ));
                    }
                }
                if members.len() < 2 {
                    return Err(Diagnostic::error(
                        format!("bootstrap: `{column}` has fewer than two groups to resample"),
                        Location::None,
                    ));
                }
                Ok(ReplicateMaker::Clusters {
                    frame,
                    members,
                    renumber,
                })
            }
        }
    }

    fn make(&self, rng: &mut ChaCha8Rng) -> Result<AnalysisFrame, String> {
        match self {
            ReplicateMaker::Rows { frame } => {
                let n = frame.nrows;
                let rows: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
                Ok(select_rows(frame, &rows))
            }
            ReplicateMaker::Clusters {
                frame,
                members,
                renumber,
            } => {
                let g = members.len();
                let drawn: Vec<usize> = (0..g).map(|_| rng.random_range(0..g)).collect();
                let rows: Vec<usize> = drawn
                    .iter()
                    .flat_map(|&c| members[c].iter().copied())
                    .collect();
                let mut out = select_rows(frame, &rows);
                for (column, codes, nlevels) in renumber {
                    let mut values = Vec::with_capacity(rows.len());
                    for (draw, &c) in drawn.iter().enumerate() {
                        for &row in &members[c] {
                            let code = codes[row];
                            values.push(if code == MISSING_CODE {
                                f64::NAN
                            } else {
                                (draw * nlevels + code as usize) as f64
                            });
                        }
                    }
                    out.columns[*column] = Column::Numeric(values);
                }
                Ok(out)
            }
            ReplicateMaker::Parametric(simulator) => simulator.simulate(rng),
        }
    }
}

/// A column's values as dense level codes (first appearance), `MISSING_CODE` for missing.
fn level_codes(column: &Column) -> (Vec<u32>, usize) {
    match column {
        Column::Text { codes, levels } => (codes.clone(), levels.len()),
        Column::Numeric(values) => {
            let mut index: HashMap<u64, u32> = HashMap::new();
            let codes = values
                .iter()
                .map(|v| {
                    if v.is_nan() {
                        MISSING_CODE
                    } else {
                        let next = index.len() as u32;
                        *index.entry((v + 0.0).to_bits()).or_insert(next)
                    }
                })
                .collect();
            (codes, index.len())
        }
    }
}

/// Whether every level of `inner` occurs within one level of `outer`.
fn nested(inner: &[u32], n_inner: usize, outer: &[u32]) -> bool {
    let mut owner = vec![MISSING_CODE; n_inner];
    for (&i, &o) in inner.iter().zip(outer) {
        if i == MISSING_CODE || o == MISSING_CODE {
            continue;
        }
        let slot = &mut owner[i as usize];
        if *slot == MISSING_CODE {
            *slot = o;
        } else if *slot != o {
            return false;
        }
    }
    true
}

fn select_rows(frame: &AnalysisFrame, rows: &[usize]) -> AnalysisFrame {
    AnalysisFrame {
        names: frame.names.clone(),
        columns: frame.columns.iter().map(|c| c.select(rows)).collect(),
        nrows: rows.len(),
        source_rows: rows.iter().map(|&r| frame.source_rows[r]).collect(),
        drops: frame.drops.clone(),
        warnings: Vec::new(),
    }
}

/// Simulates outcomes from a fitted model. Equations are simulated in file order, each on the
/// frame as updated by the earlier ones, so an outcome that predicts a later equation (a
/// mediator) enters it with its simulated values. `let` columns computed from an outcome are not
/// recomputed.
struct Simulator<'a> {
    spec: &'a ModelSpec,
    frame: &'a AnalysisFrame,
    fit: &'a Fit,
    rows: ObservationRows,
    /// Per random term: σT, so that b = σT u with u standard normal.
    scale: Vec<nalgebra::DMatrix<f64>>,
    /// Frame column of each equation's outcome.
    outcomes: Vec<usize>,
}

impl<'a> Simulator<'a> {
    fn new(
        spec: &'a ModelSpec,
        frame: &'a AnalysisFrame,
        fit: &'a Fit,
    ) -> Result<Self, Diagnostic> {
        let rows = observation_rows(spec, frame).map_err(|d| {
            d.into_iter()
                .next()
                .unwrap_or_else(|| Diagnostic::error("bootstrap: no observations", Location::None))
        })?;
        if rows.x.ncols() != fit.beta.len() || rows.terms.len() != fit.random.len() {
            return Err(Diagnostic::error(
                "parametric bootstrap: the fit does not match the model's design",
                Location::None,
            ));
        }
        let scale = fit
            .random
            .iter()
            .map(|c| {
                // A boundary fit has a singular covariance, which Cholesky refuses: then the
                // symmetric square root, which draws the same distribution.
                c.covariance.clone().cholesky().map_or_else(
                    || {
                        let eig = c.covariance.clone().symmetric_eigen();
                        let root = eig.eigenvalues.map(|v| v.max(0.0).sqrt());
                        &eig.eigenvectors * nalgebra::DMatrix::from_diagonal(&root)
                    },
                    |l| l.l(),
                )
            })
            .collect();
        let outcomes = spec
            .equations
            .iter()
            .map(|e| {
                frame
                    .names
                    .iter()
                    .position(|n| *n == e.outcome)
                    .ok_or_else(|| {
                        Diagnostic::error(
                            format!(
                                "parametric bootstrap: the outcome `{}` is not a column",
                                e.outcome
                            ),
                            Location::None,
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Simulator {
            spec,
            frame,
            fit,
            rows,
            scale,
            outcomes,
        })
    }

    fn simulate(&self, rng: &mut ChaCha8Rng) -> Result<AnalysisFrame, String> {
        // Random effects first, one draw per level, shared by every equation.
        let effects: Vec<Vec<DVector<f64>>> = self
            .rows
            .terms
            .iter()
            .zip(&self.scale)
            .map(|(term, scale)| {
                (0..term.nlevels)
                    .map(|_| {
                        let u = DVector::from_fn(scale.ncols(), |_, _| {
                            rng.sample::<f64, _>(StandardNormal)
                        });
                        scale * u
                    })
                    .collect()
            })
            .collect();
        let mut frame = self.frame.clone();
        let sds: Vec<f64> = self.fit.residual.iter().map(|r| r.sd).collect();
        for (e, &outcome) in self.outcomes.iter().enumerate() {
            // Rebuilt after an earlier equation changed a column this one may read.
            let rebuilt;
            let rows = if e == 0 {
                &self.rows
            } else {
                rebuilt = observation_rows(self.spec, &frame)
                    .map_err(|d| d.first().map(|d| d.message.clone()).unwrap_or_default())?;
                &rebuilt
            };
            let Column::Numeric(mut values) = frame.columns[outcome].clone() else {
                return Err("the outcome is not numeric".into());
            };
            for i in (0..rows.len()).filter(|&i| rows.equation[i] == e) {
                let mut y = rows.offset[i] + (rows.x.row(i) * &self.fit.beta)[(0, 0)];
                for (k, term) in rows.terms.iter().enumerate() {
                    if let Some(level) = term.level[i] {
                        y += (term.z.row(i) * &effects[k][level])[(0, 0)];
                    }
                }
                let sd = sds.get(rows.class[i]).copied().unwrap_or(f64::NAN);
                y += sd * rng.sample::<f64, _>(StandardNormal);
                values[rows.row[i]] = y;
            }
            frame.columns[outcome] = Column::Numeric(values);
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_r_type_7() {
        // R: quantile(c(1, 2, 4, 8, 16), c(0.025, 0.975)) = 1.1, 15.2
        let x = [1.0, 2.0, 4.0, 8.0, 16.0];
        assert!((quantile(&x, 0.025) - 1.1).abs() < 1e-12);
        assert!((quantile(&x, 0.975) - 15.2).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(quantile(&[3.0], 0.1), 3.0);
    }

    #[test]
    fn failed_and_unconverged_refits_are_counted_and_left_out() {
        let ok = |v: f64, converged| {
            Ok(Replicate {
                values: vec![v, f64::NAN],
                converged,
            })
        };
        let replicates = vec![
            ok(1.0, true),
            Err("rank deficient".to_string()),
            ok(100.0, false),
            ok(3.0, true),
        ];
        let b = summarise(replicates, 2, 0.5);
        assert_eq!((b.draws, b.failed, b.not_converged), (4, 1, 1));
        assert_eq!(b.usable, vec![2, 0]);
        // R: quantile(c(1, 3), c(0.25, 0.75)) = 1.5, 2.5; sd(c(1, 3)) = sqrt(2)
        assert_eq!(b.intervals[0], (1.5, 2.5));
        assert!((b.sd[0] - 2f64.sqrt()).abs() < 1e-15);
        assert!(b.intervals[1].0.is_nan() && b.sd[1].is_nan());
        // Figures bin the same replicates: the failed and the unconverged left out.
        assert_eq!(b.usable(0), vec![1.0, 3.0]);
        assert!(b.usable(1).is_empty());
    }

    #[test]
    fn nesting_is_detected() {
        // sessions 0,1 in patient 0; 2 in patient 1: nested. Session 0 in both: not nested.
        assert!(nested(&[0, 0, 1, 2], 3, &[0, 0, 0, 1]));
        assert!(!nested(&[0, 1, 0], 2, &[0, 0, 1]));
    }
}
