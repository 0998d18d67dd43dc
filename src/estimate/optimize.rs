//! Minimizing the profiled deviance over (θ, log δ), and the record of how it went.
//!
//! Strategy, and why. The deviance is smooth in unconstrained θ (it depends on ΛΛ' only, so a
//! variance at zero is an interior point where the deviance is even in that θ), but it is often
//! badly scaled (random effects far smaller than the residual) and flat along a correlation of
//! ±1. argmin offers no BOBYQA, and its Nelder–Mead needed thousands of evaluations on the facial
//! design and still stopped ~100 deviance units short in 12 dimensions. So:
//! 1. a few evaluations along T = s·I (s = 1 … 0.01) pick a start;
//! 2. BFGS on forward-difference gradients (n evaluations; their O(h) error only matters for
//!    the last digits, which Newton's central differences provide), with
//!    an Armijo backtracking line search; when progress first slows, its inverse-Hessian model
//!    is restarted from a finite-difference Hessian, which it would otherwise need dozens of
//!    iterations to learn in ill-conditioned (near-singular) problems;
//! 3. Newton steps on the finite-difference Hessian (shifted when not positive definite) polish
//!    θ to ~1e-6 and the deviance to ~1e-9, which lme4's log-likelihood agreement at 1e-6 needs;
//!    the last gradient and Hessian are the convergence check reported in `OptSummary`
//!    (converged when the Newton decrement √(g'H⁻¹g) < 1e-3, i.e. at most ~5e-7 deviance left);
//! 4. only if that check fails: argmin's Nelder–Mead restarted with shrinking simplices, then
//!    Newton again.
//!
//! Finite-difference evaluations run in parallel (rayon); each evaluation is sequential, so
//! results do not depend on the number of threads. This module must not touch rows or build
//! fits.

use std::sync::atomic::{AtomicUsize, Ordering};

use argmin::core::{CostFunction, Error, Executor, State, TerminationReason, TerminationStatus};
use argmin::solver::neldermead::NelderMead;
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::deviance::ProfiledDeviance;

/// How the optimizer ran.
#[derive(Debug, Clone, PartialEq)]
pub struct OptSummary {
    /// Start of (θ, log δ).
    pub start: Vec<f64>,
    /// Optimum of (θ, log δ), θ normalised to non-negative diagonals.
    pub optimum: Vec<f64>,
    /// The criterion at the optimum (−2 log L for ML, the REML criterion for REML).
    pub deviance: f64,
    pub evaluations: usize,
    pub optimizer: String,
    pub converged: bool,
    /// Euclidean norm of the finite-difference gradient at the optimum.
    pub gradient_norm: f64,
    pub hessian_positive_definite: bool,
    pub warnings: Vec<String>,
}

struct Objective<'a> {
    deviance: &'a ProfiledDeviance,
    evaluations: &'a AtomicUsize,
}

impl CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Self::Param) -> Result<f64, Error> {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        Ok(self.deviance.deviance(x))
    }
}

/// Relative change in the criterion below which a restart or Newton step counts as no progress.
const PROGRESS: f64 = 1e-12;

pub fn minimize(deviance: &ProfiledDeviance) -> OptSummary {
    minimize_from(deviance, None)
}

/// `minimize`, also trying `warm` (e.g. the original data's optimum, for a bootstrap refit) as
/// a start beside the scan along T = s·I; ignored when its length does not fit.
pub fn minimize_from(deviance: &ProfiledDeviance, warm: Option<&[f64]>) -> OptSummary {
    let evaluations = AtomicUsize::new(0);
    let f = |x: &[f64]| {
        evaluations.fetch_add(1, Ordering::Relaxed);
        deviance.deviance(x)
    };
    let start = deviance.start();
    let n = start.len();
    let mut warnings = Vec::new();
    if n == 0 {
        let d = f(&start);
        return OptSummary {
            start: start.clone(),
            optimum: start,
            deviance: d,
            evaluations: evaluations.load(Ordering::Relaxed),
            optimizer: "none (no covariance parameters)".into(),
            converged: d.is_finite(),
            gradient_norm: 0.0,
            hessian_positive_definite: true,
            warnings,
        };
    }

    // lme4 starts at T = I. Random effects are often far smaller than the residual (T ≪ I), and
    // BFGS then spends most of its iterations shrinking T along a curved valley: a handful of
    // evaluations along T = s·I chooses a better start.
    let mut origin = start.clone();
    let mut origin_f = f(&origin);
    for s in [0.3, 0.1, 0.03, 0.01] {
        let trial: Vec<f64> = start
            .iter()
            .enumerate()
            .map(|(i, v)| if i < deviance.ntheta() { v * s } else { *v })
            .collect();
        let ft = f(&trial);
        if ft < origin_f {
            origin = trial;
            origin_f = ft;
        }
    }
    if let Some(w) = warm.filter(|w| w.len() == n) {
        let fw = f(w);
        if fw < origin_f {
            origin = w.to_vec();
        }
    }
    let (mut best, mut best_f) = bfgs(&f, &origin);
    let mut used_nelder_mead = false;
    let mut nm_converged = true;
    let (mut g, mut h);
    (best, best_f, g, h) = newton(&f, best, best_f);
    if decrement(&g, &h) >= 1e-3 {
        // Rare: BFGS on finite differences stalled away from the optimum. Nelder–Mead from
        // where it stopped, restarted with smaller simplices, then Newton again.
        used_nelder_mead = true;
        let mut step = 0.5;
        for round in 0..8 {
            let tolerance = 1e-10 * (1.0 + best_f.abs());
            let (x, fx, converged) = nelder_mead(
                deviance,
                &evaluations,
                &best,
                step,
                tolerance,
                500 * n.max(2),
            );
            let improved = best_f - fx;
            if fx < best_f {
                best = x;
                best_f = fx;
            }
            nm_converged = converged;
            if round > 0 && improved.abs() <= PROGRESS * (1.0 + best_f.abs()) {
                break;
            }
            step = (step * 0.2).max(1e-3);
        }
        (best, best_f, g, h) = newton(&f, best, best_f);
    }

    // Flipping the sign of a column of T flips signs in g and H but keeps their norms, the
    // Newton decrement and positive definiteness: the last Newton iteration's g and H serve.
    deviance.normalise(&mut best);
    let gradient_norm = g.norm();
    let hessian_positive_definite = h.clone().cholesky().is_some();
    // The gradient of a deviance of size D is only known to about sqrt(eps)·D/h; lme4's check
    // (scaled gradient < 2e-3) is of the same spirit.
    let newton_decrement = decrement(&g, &h);
    let converged = best_f.is_finite() && (newton_decrement < 1e-3 || gradient_norm < 1e-3);
    if !nm_converged {
        warnings.push("Nelder-Mead reached its iteration limit".to_string());
    }
    if !converged {
        warnings.push(format!(
            "the optimizer did not converge: gradient norm {gradient_norm:.3e}"
        ));
    }
    OptSummary {
        start,
        optimum: best,
        deviance: best_f,
        evaluations: evaluations.load(Ordering::Relaxed),
        optimizer: if used_nelder_mead {
            "BFGS, Newton, then Nelder-Mead (argmin) with restarts and Newton".into()
        } else {
            "BFGS, then Newton (finite differences)".into()
        },
        converged,
        gradient_norm,
        hessian_positive_definite,
        warnings,
    }
}

/// The same BFGS-then-Newton strategy on any smooth criterion of unconstrained parameters,
/// started at `start` (no Nelder–Mead fallback: its callers' criteria are cheap and smooth, and
/// a failed convergence check is reported, not hidden).
pub(crate) fn minimize_smooth(f: &(impl Fn(&[f64]) -> f64 + Sync), start: &[f64]) -> OptSummary {
    let evaluations = AtomicUsize::new(0);
    let counted = |x: &[f64]| {
        evaluations.fetch_add(1, Ordering::Relaxed);
        f(x)
    };
    let (best, best_f) = bfgs(&counted, start);
    let (best, best_f, g, h) = newton(&counted, best, best_f);
    let gradient_norm = g.norm();
    let hessian_positive_definite = h.clone().cholesky().is_some();
    let converged = best_f.is_finite() && (decrement(&g, &h) < 1e-3 || gradient_norm < 1e-3);
    let mut warnings = Vec::new();
    if !converged {
        warnings.push(format!(
            "the optimizer did not converge: gradient norm {gradient_norm:.3e}"
        ));
    }
    OptSummary {
        start: start.to_vec(),
        optimum: best,
        deviance: best_f,
        evaluations: evaluations.load(Ordering::Relaxed),
        optimizer: "BFGS, then Newton (finite differences)".into(),
        converged,
        gradient_norm,
        hessian_positive_definite,
        warnings,
    }
}

/// The Newton decrement √(g'H⁻¹g), or without a positive definite Hessian the gradient norm.
fn decrement(g: &DVector<f64>, h: &DMatrix<f64>) -> f64 {
    match h.clone().cholesky() {
        Some(c) => g.dot(&c.solve(g)).abs().sqrt(),
        None => g.norm(),
    }
}

/// BFGS on forward-difference gradients with an Armijo backtracking line search; the inverse
/// Hessian approximation is reset to a scaled identity whenever it stops giving descent.
fn bfgs(f: &(impl Fn(&[f64]) -> f64 + Sync), start: &[f64]) -> (Vec<f64>, f64) {
    let n = start.len();
    let mut x = DVector::from_column_slice(start);
    let mut fx = f(x.as_slice());
    if !fx.is_finite() {
        return (start.to_vec(), fx);
    }
    let mut g = forward_gradient(f, x.as_slice(), fx);
    let mut restarted = false;
    let mut scaled = false;
    let mut hinv = DMatrix::identity(n, n) * (0.1 / g.norm().max(1e-8));
    let mut stalls = 0;
    for _ in 0..500 {
        let mut d = -&hinv * &g;
        if g.dot(&d) >= 0.0 {
            hinv = DMatrix::identity(n, n) * (0.1 / g.norm().max(1e-8));
            d = -&hinv * &g;
        }
        let slope = g.dot(&d);
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..50 {
            let trial = &x + &d * t;
            let ft = f(trial.as_slice());
            if ft.is_finite() && ft <= fx + 1e-4 * t * slope {
                accepted = Some((trial, ft));
                break;
            }
            t *= 0.5;
        }
        let Some((xn, fxn)) = accepted else { break };
        if !restarted && fx - fxn < 1e-6 * (1.0 + fxn.abs()) {
            // Progress has slowed: the problem is ill-conditioned here (small or singular
            // variances). Restart the quasi-Newton model from the finite-difference Hessian,
            // which BFGS would need dozens of iterations to learn.
            restarted = true;
            let (gn, h) = gradient_hessian(f, xn.as_slice());
            if let Some(inverse) = positive_definite_inverse(&h) {
                hinv = inverse;
                scaled = true;
            }
            x = xn;
            fx = fxn;
            g = gn;
            stalls = 0;
            continue;
        }
        let gn = forward_gradient(f, xn.as_slice(), fxn);
        let s = &xn - &x;
        let y = &gn - &g;
        let sy = s.dot(&y);
        if sy > 1e-12 * s.norm() * y.norm() {
            if !scaled {
                hinv = DMatrix::identity(n, n) * (sy / y.dot(&y));
                scaled = true;
            }
            let rho = 1.0 / sy;
            let hy = &hinv * &y;
            let yhy = y.dot(&hy);
            hinv += (&s * s.transpose()) * (rho * rho * yhy + rho)
                - (&hy * s.transpose() + &s * hy.transpose()) * rho;
        }
        let gain = fx - fxn;
        x = xn;
        fx = fxn;
        g = gn;
        stalls = if gain <= 1e-10 * (1.0 + fx.abs()) {
            stalls + 1
        } else {
            0
        };
        if stalls >= 3 {
            break;
        }
    }
    (x.as_slice().to_vec(), fx)
}

/// Newton steps on the finite-difference Hessian (shifted when not positive definite), with
/// backtracking, until a step no longer lowers the criterion. Returns the point, its criterion,
/// and the gradient and Hessian at it.
fn newton(
    f: &(impl Fn(&[f64]) -> f64 + Sync),
    mut best: Vec<f64>,
    mut best_f: f64,
) -> NewtonResult {
    let mut iteration = 0;
    loop {
        iteration += 1;
        let (g, h) = gradient_hessian(f, &best);
        let s = newton_step(&g, &h);
        // With a positive definite Hessian and a Newton decrement below the convergence bound,
        // at most dec²/2 < 5e-7 of deviance remains before the step and far less after it:
        // take the step and stop instead of paying for one more gradient and Hessian only to
        // confirm. The g and H returned are then those before the step, an upper bound on the
        // (quadratically smaller) ones after it.
        let last = h.clone().cholesky().is_some() && decrement(&g, &h) < 1e-3;
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..40 {
            let trial: Vec<f64> = best.iter().zip(&s).map(|(x, d)| x + t * d).collect();
            let ft = f(&trial);
            if ft < best_f {
                let gain = best_f - ft;
                best = trial;
                best_f = ft;
                moved = gain > PROGRESS * (1.0 + best_f.abs());
                break;
            }
            t *= 0.5;
        }
        if !moved || last || iteration == 30 {
            return (best, best_f, g, h);
        }
    }
}

type NewtonResult = (Vec<f64>, f64, DVector<f64>, DMatrix<f64>);

fn nelder_mead(
    deviance: &ProfiledDeviance,
    evaluations: &AtomicUsize,
    x0: &[f64],
    step: f64,
    sd_tolerance: f64,
    max_iters: usize,
) -> (Vec<f64>, f64, bool) {
    let mut simplex = vec![x0.to_vec()];
    for i in 0..x0.len() {
        let mut v = x0.to_vec();
        v[i] += step * x0[i].abs().clamp(0.1, 1.0);
        simplex.push(v);
    }
    let fallback = (x0.to_vec(), deviance.deviance(x0), false);
    let Ok(solver) = NelderMead::new(simplex).with_sd_tolerance(sd_tolerance) else {
        return fallback;
    };
    let problem = Objective {
        deviance,
        evaluations,
    };
    let result = Executor::new(problem, solver)
        .configure(|s| s.max_iters(max_iters as u64))
        .run();
    match result {
        Ok(r) => {
            let state = r.state();
            let converged = matches!(
                state.get_termination_status(),
                TerminationStatus::Terminated(TerminationReason::SolverConverged)
            );
            match state.get_best_param() {
                Some(x) => (x.clone(), state.get_best_cost(), converged),
                None => fallback,
            }
        }
        Err(_) => fallback,
    }
}

/// Forward differences: half the evaluations of central ones; accurate enough for BFGS, which
/// hands the last digits to Newton on central differences.
fn forward_gradient(f: &(impl Fn(&[f64]) -> f64 + Sync), x: &[f64], fx: f64) -> DVector<f64> {
    let h = 1e-7;
    let g: Vec<f64> = (0..x.len())
        .into_par_iter()
        .map(|i| (f(&moved(x, &[(i, h)])) - fx) / h)
        .collect();
    DVector::from_vec(g)
}

fn gradient(f: &(impl Fn(&[f64]) -> f64 + Sync), x: &[f64]) -> DVector<f64> {
    let h = 1e-6;
    let g: Vec<f64> = (0..x.len())
        .into_par_iter()
        .map(|i| (f(&moved(x, &[(i, h)])) - f(&moved(x, &[(i, -h)]))) / (2.0 * h))
        .collect();
    DVector::from_vec(g)
}

/// `x` with `d` added to the coordinates named in `moves`.
fn moved(x: &[f64], moves: &[(usize, f64)]) -> Vec<f64> {
    let mut y = x.to_vec();
    for &(i, d) in moves {
        y[i] += d;
    }
    y
}

/// Central finite differences. Steps are absolute: θ is O(0.01–10) and log δ O(1). The
/// evaluations run in parallel; each is sequential inside, so the digits do not depend on the
/// number of threads.
fn gradient_hessian(
    f: &(impl Fn(&[f64]) -> f64 + Sync),
    x: &[f64],
) -> (DVector<f64>, DMatrix<f64>) {
    let n = x.len();
    let hh = 1e-4;
    let f0 = f(x);
    let g = gradient(f, x);
    let up: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| f(&moved(x, &[(i, hh)])))
        .collect();
    let down: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| f(&moved(x, &[(i, -hh)])))
        .collect();
    let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (0..i).map(move |j| (i, j))).collect();
    // Second-order accurate with two evaluations per pair (not four).
    let off: Vec<f64> = pairs
        .par_iter()
        .map(|&(i, j)| {
            (f(&moved(x, &[(i, hh), (j, hh)])) - up[i] - up[j] + 2.0 * f0 - down[i] - down[j]
                + f(&moved(x, &[(i, -hh), (j, -hh)])))
                / (2.0 * hh * hh)
        })
        .collect();
    let mut h = DMatrix::zeros(n, n);
    for i in 0..n {
        h[(i, i)] = (up[i] - 2.0 * f0 + down[i]) / (hh * hh);
    }
    for (&(i, j), v) in pairs.iter().zip(off) {
        h[(i, j)] = v;
        h[(j, i)] = v;
    }
    (g, h)
}

/// (H + λI)⁻¹ with the smallest shift λ ≥ 0 (on a ×10 grid) that makes it positive definite.
fn positive_definite_inverse(h: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let n = h.nrows();
    let scale = h
        .diagonal()
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()))
        .max(1e-8);
    let mut shift = 0.0;
    for _ in 0..60 {
        if let Some(c) = (h + DMatrix::identity(n, n) * shift).cholesky() {
            return Some(c.inverse());
        }
        shift = if shift == 0.0 {
            1e-8 * scale
        } else {
            shift * 10.0
        };
    }
    None
}

/// −H⁻¹g, shifting H by a multiple of I until it is positive definite.
fn newton_step(g: &DVector<f64>, h: &DMatrix<f64>) -> DVector<f64> {
    let n = g.len();
    let scale = h
        .diagonal()
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()))
        .max(1e-8);
    let mut shift = 0.0;
    for _ in 0..60 {
        let m = h + DMatrix::identity(n, n) * shift;
        if let Some(c) = m.cholesky() {
            return -c.solve(g);
        }
        shift = if shift == 0.0 {
            1e-8 * scale
        } else {
            shift * 10.0
        };
    }
    -g / scale
}
