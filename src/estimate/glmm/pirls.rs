//! Penalized iteratively reweighted least squares (lme4's `pwrssUpdate`): the conditional modes
//! of the spherical random effects u given (θ, β) — or of u and β jointly, glmer's first stage
//! (nAGQ = 0) and plain IRLS (`glm`) without random terms — by Fisher scoring on the penalized
//! deviance Σ dev.resid + ‖u‖², with step halving. The iterations run to a step below
//! `STEP_TOLERANCE`, far tighter than lme4's relative tolerance on the deviance, so that the
//! Laplace deviance is a smooth function of (θ, β) for finite differences. Then the Laplace
//! deviance: aic + ‖u‖² + log|L|². Must not optimize over θ or β.

use super::factor::{Factor, System};
use super::problem::{Problem, URows};

/// A Newton step of u (and β) below this (in max norm) ends the iterations.
const STEP_TOLERANCE: f64 = 1e-11;
const MAX_ITERATIONS: usize = 200;
const MAX_HALVINGS: usize = 40;

/// The conditional modes at (θ, β) and what the deviance needs there.
pub struct Mode<'a> {
    pub u: Vec<f64>,
    pub beta: Vec<f64>,
    /// The factor of U'WU + I with the weights at the mode.
    pub factor: Factor<'a>,
    /// The family's −2 log L at the mode (R's `aic()` of the family).
    pub aic: f64,
    /// The PIRLS iterations that found it (each one weighted system and its deviance).
    pub iterations: usize,
}

impl Mode<'_> {
    /// ‖u‖².
    pub fn penalty(&self) -> f64 {
        self.u.iter().map(|v| v * v).sum()
    }

    /// The Laplace approximation of −2 log L (lme4's `glmResp::Laplace`).
    pub fn laplace(&self) -> f64 {
        self.aic + self.penalty() + self.factor.logdet_u
    }
}

impl Problem {
    /// η = Xβ + offset + Uu.
    pub fn linear_predictor(&self, rows: &URows, beta: &[f64], u: &[f64]) -> Vec<f64> {
        let (qb, nlb) = self.blocked_shape();
        (0..self.n)
            .map(|i| {
                let x = &self.x[i * self.p..(i + 1) * self.p];
                let xb: f64 = x.iter().zip(beta).map(|(a, b)| a * b).sum();
                xb + self.offset[i] + rows.times(i, u, qb * nlb)
            })
            .collect()
    }

    /// Σ deviance residuals at η.
    pub fn deviance_residuals(&self, eta: &[f64]) -> f64 {
        let r = &self.response;
        (0..self.n)
            .map(|i| r.deviance_residual(self.y[i], r.mean(eta[i]), self.weights[i]))
            .sum()
    }

    /// −2 log L of the outcomes at η.
    pub fn aic(&self, eta: &[f64]) -> f64 {
        let r = &self.response;
        (0..self.n)
            .map(|i| r.minus_two_loglik(self.y[i], r.mean(eta[i]), self.weights[i]))
            .sum()
    }

    /// The weighted system at η: Fisher weights wt·μ'(η)²/V(μ), scores wt·μ'(η)(y − μ)/V(μ),
    /// the penalty on u, factored. `joint` borders it with X (β updated too).
    #[allow(clippy::needless_range_loop)] // i indexes eta, y, weights, x and the rows alike
    fn system_at(&self, rows: &URows, eta: &[f64], u: &[f64], joint: bool) -> Option<Factor<'_>> {
        let (qb, _) = self.blocked_shape();
        let m = self.dense_q + if joint { self.p } else { 0 };
        let pattern = if joint {
            &self.pattern_joint
        } else {
            &self.pattern
        };
        let mut system = System::new(qb, m, pattern);
        let r = &self.response;
        let mut entries: Vec<(usize, f64)> = Vec::new();
        for i in 0..self.n {
            let mu = r.mean(eta[i]);
            let d = r.mean_derivative(eta[i]);
            let v = r.variance(mu);
            let w = self.weights[i] * d * d / v;
            let score = self.weights[i] * d * (self.y[i] - mu) / v;
            entries.clear();
            entries.extend_from_slice(&rows.dense[rows.start[i]..rows.start[i + 1]]);
            if joint {
                let x = &self.x[i * self.p..(i + 1) * self.p];
                entries.extend(x.iter().enumerate().map(|(j, &v)| (self.dense_q + j, v)));
            }
            let eb = &rows.blocked[i * qb..(i + 1) * qb];
            system.add_row(rows.blocked_level[i], eb, &entries, w, score);
        }
        system.add_penalty(self.dense_q);
        for (k, value) in u.iter().enumerate() {
            system.rhs[k] -= value;
        }
        system.factor(self.dense_q)
    }

    /// The conditional modes from (u0, β0): u only, or u and β when `joint`.
    pub fn pirls(
        &self,
        rows: &URows,
        beta0: &[f64],
        u0: &[f64],
        joint: bool,
    ) -> Result<Mode<'_>, String> {
        let q = self.q();
        let mut u = u0.to_vec();
        let mut beta = beta0.to_vec();
        let mut eta = self.linear_predictor(rows, &beta, &u);
        let mut pdev = self.deviance_residuals(&eta) + squared(&u);
        for iteration in 1..=MAX_ITERATIONS {
            let factor = self
                .system_at(rows, &eta, &u, joint)
                .ok_or("PIRLS: the penalized weighted system is not positive definite")?;
            let step = factor.solve(&factor.rhs);
            let largest = step.iter().fold(0.0_f64, |a, s| a.max(s.abs()));
            if !largest.is_finite() {
                return Err("PIRLS: the step is not finite".into());
            }
            if largest < STEP_TOLERANCE {
                return Ok(self.mode(u, beta, factor, eta, iteration));
            }
            let (mut scale, mut accepted) = (1.0, false);
            for _ in 0..MAX_HALVINGS {
                let nu: Vec<f64> = (0..q).map(|k| u[k] + scale * step[k]).collect();
                let nbeta: Vec<f64> = if joint {
                    (0..self.p).map(|j| beta[j] + scale * step[q + j]).collect()
                } else {
                    beta.clone()
                };
                let neta = self.linear_predictor(rows, &nbeta, &nu);
                let npdev = self.deviance_residuals(&neta) + squared(&nu);
                if npdev.is_finite() && npdev <= pdev + 1e-10 * pdev.abs().max(1.0) {
                    (u, beta, eta, pdev) = (nu, nbeta, neta, npdev);
                    accepted = true;
                    break;
                }
                scale /= 2.0;
            }
            if !accepted {
                // At the floor of rounding no step lowers the deviance: the modes are found.
                if largest < 1e-6 {
                    return Ok(self.mode(u, beta, factor, eta, iteration));
                }
                return Err("PIRLS: step halving failed to reduce the deviance".into());
            }
        }
        Err(format!(
            "PIRLS did not converge in {MAX_ITERATIONS} iterations"
        ))
    }

    fn mode<'a>(
        &self,
        u: Vec<f64>,
        beta: Vec<f64>,
        factor: Factor<'a>,
        eta: Vec<f64>,
        iterations: usize,
    ) -> Mode<'a> {
        Mode {
            aic: self.aic(&eta),
            iterations,
            u,
            beta,
            factor,
        }
    }
}

fn squared(u: &[f64]) -> f64 {
    u.iter().map(|v| v * v).sum()
}
