//! Average marginal effects (`ame(x)` in a definition): the mean over the analysis rows of the
//! slope of the response-scale mean in predictor `x`, fixed part only (random effects at zero,
//! R's `re.form = NA`),
//!
//!   AME(β) = (1/n) Σ_i g⁻¹'(η_i) · s_i,   η_i = x_i'β + o_i,   s_i = ∂η_i/∂x = dx_i'β + do_i,
//!
//! with its exact gradient in β, (1/n) Σ_i [g⁻¹''(η_i) s_i x_i + g⁻¹'(η_i) dx_i], so the
//! delta method needs no step and each Monte Carlo draw costs one pass over the distinct rows.
//! The analysis rows are held fixed (as `marginaleffects::avg_slopes` does): the interval is
//! the parameters' uncertainty, not the covariates' sampling. Owns that arithmetic; the rows and
//! their slopes come from `design::fixed_slopes`, and it must not read the frame.

use std::collections::HashMap;

use crate::design::FixedSlopes;
use crate::model::Link;

/// One `ame(x)`: the distinct rows it averages over and where β sits in a parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct AverageMarginalEffect {
    /// The predictor, as `ame`'s argument names it.
    pub variable: String,
    link: Link,
    p: usize,
    /// Per distinct row: x (p), dx (p), offset, its slope; then how many observations share it.
    rows: Vec<(Vec<f64>, f64)>,
    n: f64,
    /// The parameter-table row of each fixed effect, in the design's column order.
    beta_rows: Vec<usize>,
}

impl AverageMarginalEffect {
    /// The effect of `variable` over the rows of `slopes`, with β at `beta_rows` of a parameter
    /// vector. With the identity link the mean slope is linear in β, so the rows collapse into
    /// their mean; otherwise rows with the same values are counted once.
    pub fn new(variable: &str, link: Link, slopes: &FixedSlopes, beta_rows: Vec<usize>) -> Self {
        let (n, p) = slopes.x.shape();
        let row = |i: usize| -> Vec<f64> {
            let mut r: Vec<f64> = slopes.x.row(i).iter().copied().collect();
            r.extend(slopes.dx.row(i).iter());
            r.push(slopes.offset[i]);
            r.push(slopes.doffset[i]);
            r
        };
        let rows = if link == Link::Identity {
            let mut mean = vec![0.0; 2 * p + 2];
            for i in 0..n {
                for (m, v) in mean.iter_mut().zip(row(i)) {
                    *m += v / n as f64;
                }
            }
            vec![(mean, n as f64)]
        } else {
            let mut rows: Vec<(Vec<f64>, f64)> = Vec::new();
            let mut seen: HashMap<Vec<u64>, usize> = HashMap::new();
            for i in 0..n {
                let r = row(i);
                let key = r.iter().map(|v| v.to_bits()).collect();
                let k = *seen.entry(key).or_insert_with(|| {
                    rows.push((r, 0.0));
                    rows.len() - 1
                });
                rows[k].1 += 1.0;
            }
            rows
        };
        AverageMarginalEffect {
            variable: variable.to_string(),
            link,
            p,
            rows,
            n: n as f64,
            beta_rows,
        }
    }

    /// Its value at `params` (one value per parameter-table row).
    pub fn value(&self, params: &[f64]) -> f64 {
        let mut total = 0.0;
        for (r, count) in &self.rows {
            let (eta, slope) = self.linear_predictor(r, params);
            total += count * mean_slope(self.link, eta) * slope;
        }
        total / self.n
    }

    /// Its value and gradient over the parameter-table rows at `params`.
    pub fn value_and_gradient(&self, params: &[f64]) -> (f64, Vec<f64>) {
        let p = self.p;
        let mut total = 0.0;
        let mut beta_gradient = vec![0.0; p];
        for (r, count) in &self.rows {
            let (eta, slope) = self.linear_predictor(r, params);
            let first = mean_slope(self.link, eta);
            let second = mean_curvature(self.link, eta);
            total += count * first * slope;
            for (k, g) in beta_gradient.iter_mut().enumerate() {
                *g += count * (second * slope * r[k] + first * r[p + k]);
            }
        }
        let mut gradient = vec![0.0; params.len()];
        for (&row, g) in self.beta_rows.iter().zip(beta_gradient) {
            gradient[row] = g / self.n;
        }
        (total / self.n, gradient)
    }

    /// η and ∂η/∂x of one stored row.
    fn linear_predictor(&self, r: &[f64], params: &[f64]) -> (f64, f64) {
        let p = self.p;
        let (mut eta, mut slope) = (r[2 * p], r[2 * p + 1]);
        for (k, &row) in self.beta_rows.iter().enumerate() {
            eta += r[k] * params[row];
            slope += r[p + k] * params[row];
        }
        (eta, slope)
    }
}

fn dnorm(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// dμ/dη of the inverse link at `eta`.
fn mean_slope(link: Link, eta: f64) -> f64 {
    match link {
        Link::Identity => 1.0,
        Link::Logit => {
            let mu = logistic(eta);
            mu * (1.0 - mu)
        }
        Link::Probit => dnorm(eta),
        Link::Cloglog => (eta - eta.exp()).exp(),
        Link::Log => eta.exp(),
    }
}

/// d²μ/dη² of the inverse link at `eta`.
fn mean_curvature(link: Link, eta: f64) -> f64 {
    match link {
        Link::Identity => 0.0,
        Link::Logit => {
            let mu = logistic(eta);
            mu * (1.0 - mu) * (1.0 - 2.0 * mu)
        }
        Link::Probit => -eta * dnorm(eta),
        Link::Cloglog => (eta - eta.exp()).exp() * (1.0 - eta.exp()),
        Link::Log => eta.exp(),
    }
}

fn logistic(eta: f64) -> f64 {
    // Two halves, so e^-η never overflows.
    if eta >= 0.0 {
        1.0 / (1.0 + (-eta).exp())
    } else {
        let e = eta.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::function::erf::erfc;

    /// The link's first and second derivatives against central differences of the one before.
    #[test]
    fn link_derivatives_are_consistent() {
        let mean = |link: Link, eta: f64| match link {
            Link::Identity => eta,
            Link::Logit => logistic(eta),
            Link::Probit => 0.5 * erfc(-eta / std::f64::consts::SQRT_2),
            Link::Cloglog => 1.0 - (-eta.exp()).exp(),
            Link::Log => eta.exp(),
        };
        let h = 1e-5;
        for link in [
            Link::Identity,
            Link::Logit,
            Link::Probit,
            Link::Cloglog,
            Link::Log,
        ] {
            for eta in [-2.3, -0.4, 0.0, 0.7, 1.9] {
                let first = (mean(link, eta + h) - mean(link, eta - h)) / (2.0 * h);
                let second = (mean_slope(link, eta + h) - mean_slope(link, eta - h)) / (2.0 * h);
                assert!(
                    (first - mean_slope(link, eta)).abs() < 1e-8,
                    "{link:?} {eta}"
                );
                assert!(
                    (second - mean_curvature(link, eta)).abs() < 1e-8,
                    "{link:?} {eta}"
                );
            }
        }
    }
}
