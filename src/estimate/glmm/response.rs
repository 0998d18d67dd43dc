//! The family's functions of the mean as R's `binomial()`/`poisson()` define them (lme4's
//! glmFamily.cpp): inverse link and its derivative (with R's clamps, so extreme linear predictors
//! give the same numbers), variance, deviance residuals and the `aic()` term (−2 log L of the
//! conditional distribution). It must not know about random effects or optimization.

use statrs::function::erf::erfc;
use statrs::function::gamma::ln_gamma;

use crate::model::{FamilyKind, Link};

const EPS: f64 = f64::EPSILON;
/// R's `binomial()$linkinv` for logit clamps η at ±30 (its C code's THRESH/MTHRESH).
const LOGIT_THRESH: f64 = 30.0;

/// The conditional distribution of one equation's outcome and its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub kind: FamilyKind,
    pub link: Link,
}

fn pnorm(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn dnorm(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// −qnorm(ε): where R's probit `linkinv` clamps η.
fn probit_thresh() -> f64 {
    // qnorm(.Machine$double.eps) = -8.125890664701906.
    8.125_890_664_701_906
}

impl Response {
    /// μ = g⁻¹(η).
    pub fn mean(&self, eta: f64) -> f64 {
        match self.link {
            Link::Identity => eta,
            Link::Logit => {
                let e = if eta < -LOGIT_THRESH {
                    EPS
                } else if eta > LOGIT_THRESH {
                    1.0 / EPS
                } else {
                    eta.exp()
                };
                e / (1.0 + e)
            }
            Link::Probit => {
                let t = probit_thresh();
                pnorm(eta.clamp(-t, t))
            }
            Link::Cloglog => (-(-eta.exp()).exp_m1()).clamp(EPS, 1.0 - EPS),
            Link::Log => eta.exp().max(EPS),
        }
    }

    /// dμ/dη.
    pub fn mean_derivative(&self, eta: f64) -> f64 {
        match self.link {
            Link::Identity => 1.0,
            Link::Logit => {
                if eta.abs() > LOGIT_THRESH {
                    EPS
                } else {
                    let e = eta.exp();
                    e / ((1.0 + e) * (1.0 + e))
                }
            }
            Link::Probit => dnorm(eta).max(EPS),
            Link::Cloglog => {
                let e = eta.min(700.0);
                (e.exp() * (-e.exp()).exp()).max(EPS)
            }
            Link::Log => eta.exp().max(EPS),
        }
    }

    /// V(μ).
    pub fn variance(&self, mu: f64) -> f64 {
        match self.kind {
            FamilyKind::Gaussian => 1.0,
            FamilyKind::Binomial => mu * (1.0 - mu),
            FamilyKind::Poisson => mu,
        }
    }

    /// The deviance residual of one observation (R's `dev.resids`) with prior weight `wt`.
    pub fn deviance_residual(&self, y: f64, mu: f64, wt: f64) -> f64 {
        match self.kind {
            FamilyKind::Gaussian => wt * (y - mu) * (y - mu),
            FamilyKind::Binomial => 2.0 * wt * (y_log_y(y, mu) + y_log_y(1.0 - y, 1.0 - mu)),
            FamilyKind::Poisson => {
                let r = mu * wt;
                if y > 0.0 {
                    2.0 * (wt * (y * (y / mu).ln() - (y - mu)))
                } else {
                    2.0 * r
                }
            }
        }
    }

    /// −2 log L of one observation given its mean: R's `family()$aic` summand (binomial: the
    /// log density of `round(wt·y)` successes out of `round(wt)`; Poisson: of the count `y`).
    pub fn minus_two_loglik(&self, y: f64, mu: f64, wt: f64) -> f64 {
        match self.kind {
            FamilyKind::Gaussian => f64::NAN,
            FamilyKind::Binomial => {
                let m = wt.round();
                let k = (wt * y).round();
                if m <= 0.0 {
                    return 0.0;
                }
                -2.0 * log_binomial_density(k, m, mu)
            }
            FamilyKind::Poisson => {
                let log_density = if y == 0.0 {
                    -mu
                } else {
                    y * mu.ln() - mu - ln_gamma(y + 1.0)
                };
                -2.0 * wt * log_density
            }
        }
    }
}

/// y log(y/μ), 0 at y = 0 (R's `y_log_y`).
fn y_log_y(y: f64, mu: f64) -> f64 {
    if y > 0.0 {
        y * (y / mu).ln()
    } else {
        0.0
    }
}

/// log dbinom(k; m, p).
fn log_binomial_density(k: f64, m: f64, p: f64) -> f64 {
    let choose = ln_gamma(m + 1.0) - ln_gamma(k + 1.0) - ln_gamma(m - k + 1.0);
    let success = if k > 0.0 { k * p.ln() } else { 0.0 };
    let failure = if m - k > 0.0 {
        (m - k) * (-p).ln_1p()
    } else {
        0.0
    };
    choose + success + failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_invert_and_differentiate() {
        for link in [Link::Logit, Link::Probit, Link::Cloglog] {
            let r = Response {
                kind: FamilyKind::Binomial,
                link,
            };
            let h = 1e-6;
            for eta in [-2.0, -0.3, 0.0, 1.1] {
                let numeric = (r.mean(eta + h) - r.mean(eta - h)) / (2.0 * h);
                assert!(
                    (numeric - r.mean_derivative(eta)).abs() < 1e-8,
                    "{link:?} {eta}"
                );
            }
        }
    }

    #[test]
    fn binomial_density_matches_r() {
        // dbinom(3, 10, 0.4, log = TRUE) = -1.53715981...
        assert!((log_binomial_density(3.0, 10.0, 0.4) + 1.537_159_819_202_354).abs() < 1e-12);
    }
}
