//! Delta-method standard errors of defined quantities: `se_k = sqrt(g_k V g_k')` with `g_k` the
//! exact gradient of definition `k` at the estimates and `V` the asymptotic covariance of all
//! table parameters.
//!
//! Owns only that product (and the Wald interval built from it); it must not compute `V` (the
//! estimation stage does) nor draw anything.

use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, Normal};

use super::defined::DefinedQuantities;

/// The estimate and delta-method SE of one defined quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaEstimate {
    pub estimate: f64,
    pub se: f64,
}

/// Estimates and delta-method SEs of every definition, in definition order. A negative
/// `g V g'` (V not positive semi-definite) gives a NaN SE rather than a made-up number.
pub fn delta_method(
    quantities: &DefinedQuantities,
    estimates: &[f64],
    covariance: &DMatrix<f64>,
) -> Vec<DeltaEstimate> {
    let values = quantities.values(estimates);
    let jacobian = quantities.jacobian(estimates);
    values
        .iter()
        .enumerate()
        .map(|(k, &estimate)| {
            let g: DVector<f64> = jacobian.row(k).transpose();
            let variance = (g.transpose() * covariance * &g)[(0, 0)];
            DeltaEstimate {
                estimate,
                se: variance.sqrt(),
            }
        })
        .collect()
}

/// The normal quantile for a two-sided interval at `level` (1.96 at 0.95).
pub fn normal_critical(level: f64) -> f64 {
    let standard = Normal::new(0.0, 1.0).expect("the standard normal is valid");
    standard.inverse_cdf(0.5 + level / 2.0)
}

/// The Wald interval `estimate ± z·se` at `level`.
pub fn wald_interval(estimate: DeltaEstimate, level: f64) -> (f64, f64) {
    let z = normal_critical(level);
    (
        estimate.estimate - z * estimate.se,
        estimate.estimate + z * estimate.se,
    )
}
