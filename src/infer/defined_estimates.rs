//! The numbers a report shows for each defined quantity: estimate at θ̂, delta-method SE, and
//! an interval by the chosen method (Wald from the delta SE, or Monte Carlo percentiles).
//!
//! Owns only the assembling of `delta` and `monte_carlo` into plain rows the lead copies into
//! `report::DefinedRow`; it must not render, and it does not do bootstrap intervals (those
//! refit, which is the estimation stage's business).

use nalgebra::DMatrix;

use crate::diagnostics::Diagnostic;

use super::defined::DefinedQuantities;
use super::delta::{delta_method, wald_interval};
use super::monte_carlo::{monte_carlo, MonteCarloSettings};

/// How defined quantities get their intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IntervalMethod {
    /// No interval: estimate and delta SE only.
    None,
    /// `estimate ± z·se` with the delta-method SE.
    Delta {
        level: f64,
    },
    MonteCarlo(MonteCarloSettings),
}

/// One defined quantity's results.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinedEstimate {
    pub name: String,
    /// The definition evaluated at the estimates (not the mean of the draws).
    pub estimate: f64,
    /// Delta-method SE (whatever the interval method).
    pub se: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub level: Option<f64>,
    /// "delta" or "monte carlo"; `None` without an interval.
    pub method: Option<String>,
    /// Monte Carlo draws made (all definitions share them).
    pub draws: Option<usize>,
    /// Standard deviation of the Monte Carlo draws.
    pub mc_sd: Option<f64>,
}

/// Estimates, SEs and intervals of every definition, in definition order, plus warnings.
pub fn estimate_defined(
    quantities: &DefinedQuantities,
    estimates: &[f64],
    covariance: &DMatrix<f64>,
    method: &IntervalMethod,
) -> Result<(Vec<DefinedEstimate>, Vec<Diagnostic>), Vec<Diagnostic>> {
    if estimates.len() != quantities.parameters
        || covariance.nrows() != quantities.parameters
        || covariance.ncols() != quantities.parameters
    {
        return Err(vec![Diagnostic::error(
            format!(
                "defined quantities need {n} estimates and an {n}×{n} covariance, got {} and \
                 {}×{}",
                estimates.len(),
                covariance.nrows(),
                covariance.ncols(),
                n = quantities.parameters
            ),
            crate::diagnostics::Location::None,
        )]);
    }
    let delta = delta_method(quantities, estimates, covariance);
    let mut rows: Vec<DefinedEstimate> = quantities
        .programs
        .iter()
        .zip(&delta)
        .map(|(program, d)| DefinedEstimate {
            name: program.name.clone(),
            estimate: d.estimate,
            se: d.se,
            lower: None,
            upper: None,
            level: None,
            method: None,
            draws: None,
            mc_sd: None,
        })
        .collect();
    let mut warnings = Vec::new();
    match method {
        IntervalMethod::None => {}
        IntervalMethod::Delta { level } => {
            for (row, d) in rows.iter_mut().zip(&delta) {
                let (lower, upper) = wald_interval(*d, *level);
                row.lower = Some(lower);
                row.upper = Some(upper);
                row.level = Some(*level);
                row.method = Some("delta".to_string());
            }
        }
        IntervalMethod::MonteCarlo(settings) => {
            let result = monte_carlo(quantities, estimates, covariance, settings)?;
            for (row, interval) in rows.iter_mut().zip(&result.intervals) {
                row.lower = Some(interval.lower);
                row.upper = Some(interval.upper);
                row.level = Some(result.level);
                row.method = Some("monte carlo".to_string());
                row.draws = Some(result.draws);
                row.mc_sd = Some(interval.sd);
            }
            warnings = result.warnings;
        }
    }
    Ok((rows, warnings))
}
