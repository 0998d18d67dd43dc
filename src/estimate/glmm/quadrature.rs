//! Adaptive Gauss–Hermite quadrature for a model with one scalar random effect (lme4's
//! `glmerAGQ`): per level, the integral over its effect is taken around the conditional mode,
//! scaled by the conditional SD 1/L_jj, with `GHrule(nAGQ)`'s nodes and weights (for the
//! standard normal density, symmetrized as lme4 does). Must not optimize.

use nalgebra::{DMatrix, SymmetricEigen};

use super::pirls::Mode;
use super::problem::{Problem, URows};

/// Nodes z and weights w of the `n`-point Gauss–Hermite rule for the standard normal density
/// (Σ w = 1), by Golub–Welsch on the probabilists' Hermite recurrence, symmetrized.
pub fn gauss_hermite(n: usize) -> Vec<(f64, f64)> {
    let jacobi = DMatrix::from_fn(n, n, |i, j| {
        if i + 1 == j || j + 1 == i {
            (i.max(j) as f64).sqrt()
        } else {
            0.0
        }
    });
    let eigen = SymmetricEigen::new(jacobi);
    let mut rule: Vec<(f64, f64)> = (0..n)
        .map(|k| {
            let v = eigen.eigenvectors[(0, k)];
            (eigen.eigenvalues[k], v * v)
        })
        .collect();
    rule.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = rule.iter().map(|r| r.1).sum();
    (0..n)
        .map(|k| {
            let (a, b) = (rule[k], rule[n - 1 - k]);
            ((a.0 - b.0) / 2.0, (a.1 + b.1) / (2.0 * total))
        })
        .collect()
}

impl Problem {
    /// Per level of the (only, scalar) term: u_j² plus the deviance residuals of its rows at
    /// the random effects `u`.
    #[allow(clippy::needless_range_loop)] // i indexes eta, y, weights and the rows alike
    fn level_deviances(&self, rows: &URows, beta: &[f64], u: &[f64]) -> Vec<f64> {
        let (_, nlevels) = self.blocked_shape();
        let eta = self.linear_predictor(rows, beta, u);
        let mut out: Vec<f64> = u.iter().map(|v| v * v).collect();
        out.resize(nlevels, 0.0);
        let r = &self.response;
        for i in 0..self.n {
            if let Some(l) = rows.blocked_level[i] {
                out[l] += r.deviance_residual(self.y[i], r.mean(eta[i]), self.weights[i]);
            }
        }
        out
    }

    /// −2 log L by AGQ at the modes: lme4's AGQ deviance, Σ_j devc0_j + log|L|² − 2 Σ_j
    /// log(Σ_k w_k exp(−(devc_j(z_k) − devc0_j)/2 + z_k²/2)), plus the saturated model's
    /// −2 log L. lme4 leaves that constant out (its deviance residuals are relative to the
    /// saturated model), so its nAGQ > 1 logLik of a binomial with trials or a Poisson count
    /// is not on the scale of its Laplace fit or of `glm`; this one is (the optimum is the same).
    pub fn agq_deviance(&self, rows: &URows, mode: &Mode, rule: &[(f64, f64)]) -> f64 {
        let devc0 = self.level_deviances(rows, &mode.beta, &mode.u);
        let sd: Vec<f64> = mode
            .factor
            .blocked_diagonal()
            .iter()
            .map(|l| 1.0 / l)
            .collect();
        let mut mult = vec![0.0; devc0.len()];
        for &(z, w) in rule {
            if z == 0.0 {
                mult.iter_mut().for_each(|m| *m += w);
                continue;
            }
            let u: Vec<f64> = mode.u.iter().zip(&sd).map(|(u, s)| u + z * s).collect();
            let devc = self.level_deviances(rows, &mode.beta, &u);
            for (j, m) in mult.iter_mut().enumerate() {
                *m += w * (-0.5 * (devc[j] - devc0[j]) + 0.5 * z * z).exp();
            }
        }
        let eta = self.linear_predictor(rows, &mode.beta, &mode.u);
        let saturated = mode.aic - self.deviance_residuals(&eta);
        devc0.iter().sum::<f64>() + mode.factor.logdet_u
            - 2.0 * mult.iter().map(|m| m.ln()).sum::<f64>()
            + saturated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_integrates_normal_moments() {
        let rule = gauss_hermite(25);
        let moment = |k: i32| rule.iter().map(|(z, w)| w * z.powi(k)).sum::<f64>();
        assert!((moment(0) - 1.0).abs() < 1e-13);
        assert!(moment(1).abs() < 1e-13);
        assert!((moment(2) - 1.0).abs() < 1e-12);
        assert!((moment(4) - 3.0).abs() < 1e-11);
        assert_eq!(rule[12].0, 0.0);
    }
}
