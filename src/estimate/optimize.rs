//! Minimizing the profiled criterion over (θ, log δ, ρ), and the record of how it went
//! (`OptSummary`). This module must not touch rows or build fits.
//!
//! Strategy, and why.
//! 1. **Internal standardisation.** θ's natural scale is the inverse of its random-effect
//!    column's scale (a slope on a predictor measured in thousandths has θ in the thousands), so
//!    the optimizer works on θ̃ = s·θ with s the root mean square of the column the entry's row
//!    multiplies: the same problem for any unit of the predictors, and a start T̃ = c·I that means
//!    "random effects c times the residual SD" whatever the units.
//! 2. **Quasi-Newton on the exact gradient** (`ProfiledDeviance::criterion_gradient`): BFGS with
//!    a backtracking Armijo line search, from the best of a few starts along T̃ = c·I, lme4's
//!    T = I, a start from moments (`ProfiledDeviance::moment_start`) and a warm start when one
//!    is given. Where every parameter is a relative SD (uncorrelated terms, one residual class),
//!    BFGS starts from the curvature a variance component estimated from J levels has, 2J/θ̃²,
//!    not from the identity (InstEval: 17 → 14 gradients). θ is unconstrained: the criterion
//!    depends on ΛΛ' only, so a column's sign is free and a variance at zero is an interior
//!    point; negative diagonals are flipped at the end (as MixedModels.jl rectifies θ).
//! 3. **Newton polish** on a Hessian from central differences of the exact gradient, shifted to
//!    be positive definite where it is not, until a step no longer lowers the criterion or the
//!    new gradient leaves nothing to gain on the same Hessian (a fresh one, 2n gradients, would
//!    only confirm it).
//! 4. **The verdict is about the criterion, not the parametrisation.** With g and H at the end and
//!    H = VΛV', the Newton decrement λ² = Σ_{λₖ>0} (vₖ'g)²/λₖ is twice the decrease the local
//!    quadratic model still promises, in deviance units (−2 log L), which do not depend on the
//!    data's units or size. Converged means: λ²/2 ≤ 1e-6 (lme4 is compared to 1e-6 in logLik),
//!    no direction of clearly negative curvature, and along flat directions (λₖ ≈ 0: a variance
//!    at zero, a correlation that the data do not identify) a slope below 1e-4 deviance units per
//!    unit of the standardised parameter. lme4's relative check, max |H⁻¹g| in the standardised
//!    parameters, names the parameters that had not settled when the verdict is negative.
//!
//! Criteria without an analytic gradient (the random coefficient as a predictor,
//! `latent_predictor`) go through the same steps with central-difference gradients and a
//! Hessian of second differences. Gradients for a Hessian run in parallel (rayon); each is
//! sequential inside, so results do not depend on the number of threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rayon::prelude::*;

use super::deviance::ProfiledDeviance;
use crate::diagnostics::{Diagnostic, Location};

/// How the optimizer ran.
#[derive(Debug, Clone, PartialEq)]
pub struct OptSummary {
    /// Start of (θ, log δ, ρ) actually used (the best of the candidates).
    pub start: Vec<f64>,
    /// Optimum of (θ, log δ, ρ), θ normalised to non-negative diagonals.
    pub optimum: Vec<f64>,
    /// The criterion at the optimum (−2 log L for ML, the REML criterion for REML).
    pub deviance: f64,
    /// Criterion evaluations without a gradient (starts, line-search trials).
    pub evaluations: usize,
    /// Gradient evaluations (each also evaluates the criterion once).
    pub gradient_evaluations: usize,
    pub optimizer: String,
    pub converged: bool,
    /// Euclidean norm of the gradient at the optimum (natural parameters).
    pub gradient_norm: f64,
    pub hessian_positive_definite: bool,
    /// √(g'H⁺g) at the optimum, in deviance units.
    pub newton_decrement: f64,
    /// The criterion's Hessian at the optimum over the natural parameters (after normalising).
    pub hessian: DMatrix<f64>,
    /// Parameters that had not settled, with the Newton step still ahead in each (natural units).
    pub unsettled: Vec<(usize, f64)>,
    pub warnings: Vec<Diagnostic>,
}

/// Remaining deviance the verdict tolerates (half the squared Newton decrement).
const REMAINING: f64 = 1e-6;
/// Slope tolerated along a flat direction, deviance units per standardised unit.
const FLAT_SLOPE: f64 = 1e-4;
/// A standardised Newton step larger than this names the parameter as unsettled.
const UNSETTLED_STEP: f64 = 1e-3;

/// A smooth criterion over unconstrained parameters, with a gradient.
trait Criterion: Sync {
    fn len(&self) -> usize;
    /// (criterion evaluations, of which with a gradient) so far.
    fn counts(&self) -> (usize, usize);
    /// The criterion, or +∞ where it cannot be evaluated.
    fn value(&self, x: &[f64]) -> f64;
    fn value_gradient(&self, x: &[f64]) -> Option<(f64, DVector<f64>)>;
    /// Whether `value_gradient` is exact (rather than differenced).
    fn exact(&self) -> bool {
        true
    }
    /// A gradient good enough for the quasi-Newton phase (the exact one where there is one).
    fn rough_value_gradient(&self, x: &[f64]) -> Option<(f64, DVector<f64>)> {
        self.value_gradient(x)
    }
    /// A first guess of the inverse Hessian at `x` for quasi-Newton, where the criterion knows
    /// one (otherwise BFGS starts from a multiple of the identity).
    fn inverse_hessian_guess(&self, _x: &[f64]) -> Option<DMatrix<f64>> {
        None
    }
    /// The Hessian at `x`: central differences of the gradient.
    fn hessian(&self, x: &[f64]) -> Option<DMatrix<f64>> {
        let n = self.len();
        let step = |i: usize| 1e-4 * x[i].abs().max(1.0);
        // The 2n gradients as separate tasks: n columns of two would leave a core idle whenever
        // n is odd and small (a crossed design's three θ, each gradient a tenth of a second).
        let gradients: Vec<Option<DVector<f64>>> = (0..2 * n)
            .into_par_iter()
            .map(|k| {
                let (i, sign) = (k / 2, if k % 2 == 0 { 1.0 } else { -1.0 });
                Some(self.value_gradient(&moved(x, &[(i, sign * step(i))]))?.1)
            })
            .collect();
        let mut h = DMatrix::zeros(n, n);
        for (i, pair) in gradients.chunks(2).enumerate() {
            let (Some(up), Some(down)) = (&pair[0], &pair[1]) else {
                return None;
            };
            h.set_column(i, &((up - down) / (2.0 * step(i))));
        }
        Some((&h + h.transpose()) * 0.5)
    }
}

/// How many criterion evaluations a run made, and how many of them with a gradient.
#[derive(Default)]
struct Counters {
    evaluations: AtomicUsize,
    gradients: AtomicUsize,
}

impl Counters {
    fn value(&self) {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
    }
    fn gradient(&self) {
        self.gradients.fetch_add(1, Ordering::Relaxed);
    }
    fn counts(&self) -> (usize, usize) {
        (
            self.evaluations.load(Ordering::Relaxed),
            self.gradients.load(Ordering::Relaxed),
        )
    }
}

/// The profiled deviance in standardised coordinates y = s ⊙ x, with counters.
struct Standardised<'a> {
    deviance: &'a ProfiledDeviance,
    scale: Vec<f64>,
    counters: Counters,
}

impl Standardised<'_> {
    fn natural(&self, y: &[f64]) -> Vec<f64> {
        y.iter().zip(&self.scale).map(|(y, s)| y / s).collect()
    }
    fn internal(&self, x: &[f64]) -> Vec<f64> {
        x.iter().zip(&self.scale).map(|(x, s)| x * s).collect()
    }
}

impl Criterion for Standardised<'_> {
    fn len(&self) -> usize {
        self.scale.len()
    }
    /// diag(y²/2J) when every parameter is a relative SD estimated from J levels: a variance
    /// component's information, 2J/y² in deviance units (InstEval's three at lme4's optimum:
    /// guessed 69k, 9.5k and 4.0k against 57k, 17k and 6.8k). BFGS from the identity learns
    /// these ratios one iteration at a time. |y| is kept from 0.05 so that a variance near zero
    /// does not freeze its parameter.
    fn inverse_hessian_guess(&self, y: &[f64]) -> Option<DMatrix<f64>> {
        let levels = self.deviance.levels_per_parameter()?;
        (levels.len() == y.len() && levels.iter().all(|&j| j > 0)).then(|| {
            DMatrix::from_diagonal(&DVector::from_iterator(
                y.len(),
                y.iter()
                    .zip(&levels)
                    .map(|(y, &j)| y.abs().max(0.05).powi(2) / (2.0 * j as f64)),
            ))
        })
    }
    fn counts(&self) -> (usize, usize) {
        self.counters.counts()
    }
    fn value(&self, y: &[f64]) -> f64 {
        self.counters.value();
        self.deviance.deviance(&self.natural(y))
    }
    fn value_gradient(&self, y: &[f64]) -> Option<(f64, DVector<f64>)> {
        self.counters.value();
        self.counters.gradient();
        let (d, g) = self.deviance.criterion_gradient(&self.natural(y)).ok()?;
        Some((
            d,
            DVector::from_iterator(g.len(), g.iter().zip(&self.scale).map(|(g, s)| g / s)),
        ))
    }
}

/// A criterion known only by its values: central-difference gradients and second differences.
struct Differenced<'a, F: Fn(&[f64]) -> f64 + Sync> {
    f: &'a F,
    n: usize,
    counters: Counters,
}

impl<F: Fn(&[f64]) -> f64 + Sync> Criterion for Differenced<'_, F> {
    fn len(&self) -> usize {
        self.n
    }
    fn counts(&self) -> (usize, usize) {
        self.counters.counts()
    }
    fn value(&self, x: &[f64]) -> f64 {
        self.counters.value();
        let v = (self.f)(x);
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    }
    fn value_gradient(&self, x: &[f64]) -> Option<(f64, DVector<f64>)> {
        self.counters.gradient();
        let fx = self.value(x);
        let g: Vec<f64> = (0..x.len())
            .into_par_iter()
            .map(|i| {
                let h = 1e-6 * x[i].abs().max(1.0);
                (self.value(&moved(x, &[(i, h)])) - self.value(&moved(x, &[(i, -h)]))) / (2.0 * h)
            })
            .collect();
        (fx.is_finite() && g.iter().all(|v| v.is_finite())).then(|| (fx, DVector::from_vec(g)))
    }
    fn exact(&self) -> bool {
        false
    }
    /// Forward differences: half the evaluations of central ones, and accurate enough for BFGS,
    /// which hands the last digits to Newton on central differences.
    fn rough_value_gradient(&self, x: &[f64]) -> Option<(f64, DVector<f64>)> {
        self.counters.gradient();
        let fx = self.value(x);
        let g: Vec<f64> = (0..x.len())
            .into_par_iter()
            .map(|i| {
                let h = 1e-7 * x[i].abs().max(1.0);
                (self.value(&moved(x, &[(i, h)])) - fx) / h
            })
            .collect();
        (fx.is_finite() && g.iter().all(|v| v.is_finite())).then(|| (fx, DVector::from_vec(g)))
    }
    fn hessian(&self, x: &[f64]) -> Option<DMatrix<f64>> {
        let n = x.len();
        let hh = 1e-4;
        let f0 = self.value(x);
        let up: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| self.value(&moved(x, &[(i, hh)])))
            .collect();
        let down: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| self.value(&moved(x, &[(i, -hh)])))
            .collect();
        let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (0..i).map(move |j| (i, j))).collect();
        let off: Vec<f64> = pairs
            .par_iter()
            .map(|&(i, j)| {
                (self.value(&moved(x, &[(i, hh), (j, hh)])) - up[i] - up[j] + 2.0 * f0
                    - down[i]
                    - down[j]
                    + self.value(&moved(x, &[(i, -hh), (j, -hh)])))
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
        h.iter().all(|v| v.is_finite()).then_some(h)
    }
}

pub fn minimize(deviance: &ProfiledDeviance) -> OptSummary {
    minimize_from(deviance, None)
}

/// `minimize`, also trying `warm` (e.g. the original data's optimum, for a bootstrap refit) as
/// a start; ignored when its length does not fit.
pub fn minimize_from(deviance: &ProfiledDeviance, warm: Option<&[f64]>) -> OptSummary {
    let n = deviance.nparams();
    let criterion = Standardised {
        deviance,
        scale: deviance.parameter_scales(),
        counters: Counters::default(),
    };
    let lme4_start = deviance.start();
    if n == 0 {
        return without_parameters(&criterion, lme4_start);
    }
    let diagonal = deviance.diagonal_indices();
    let candidates = starts(&criterion, &diagonal, &lme4_start, warm);
    let run = revive_collapsed(
        &criterion,
        &diagonal,
        run(&criterion, &candidates, None, None),
    );
    let mut optimum = criterion.natural(&run.y);
    deviance.normalise(&mut optimum);
    let hessian = natural_hessian(&criterion, &run, &optimum);
    let scale = &criterion.scale;
    let gradient_norm = run
        .gradient
        .iter()
        .zip(scale)
        .map(|(g, s)| (g * s).powi(2))
        .sum::<f64>()
        .sqrt();
    let unsettled = run
        .unsettled
        .iter()
        .map(|&(i, step)| (i, step / scale[i]))
        .collect();
    summary(
        criterion.natural(&run.start),
        optimum,
        run,
        hessian,
        gradient_norm,
        unsettled,
        criterion.counts(),
        "BFGS on the exact gradient, then Newton (standardised θ)",
    )
}

/// The summary of a model without covariance parameters: the criterion at lme4's start.
fn without_parameters(criterion: &Standardised, lme4_start: Vec<f64>) -> OptSummary {
    let d = criterion.value(&lme4_start);
    OptSummary {
        start: lme4_start.clone(),
        optimum: lme4_start,
        deviance: d,
        evaluations: criterion.counts().0,
        gradient_evaluations: 0,
        optimizer: "none (no covariance parameters)".into(),
        converged: d.is_finite(),
        gradient_norm: 0.0,
        hessian_positive_definite: true,
        newton_decrement: 0.0,
        hessian: DMatrix::zeros(0, 0),
        unsettled: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Candidates in standardised coordinates: T̃ = c·I for a few c (random effects from as large
/// as the residual to a hundredth of it), lme4's T = I, the moments' start (InstEval: 26 → 18
/// gradients) and the warm start.
fn starts(
    criterion: &Standardised,
    diagonal: &[usize],
    lme4_start: &[f64],
    warm: Option<&[f64]>,
) -> Vec<Vec<f64>> {
    let deviance = criterion.deviance;
    let base = criterion.internal(lme4_start);
    let mut candidates: Vec<Vec<f64>> = [1.0, 0.3, 0.1, 0.01]
        .iter()
        .map(|c| {
            let mut y = base.clone();
            for &i in diagonal {
                y[i] = *c;
            }
            y
        })
        .collect();
    candidates.push(base);
    if let Some(moments) = deviance.moment_start() {
        candidates.push(criterion.internal(&moments));
    }
    if let Some(w) = warm.filter(|w| w.len() == deviance.nparams()) {
        candidates.push(criterion.internal(w));
    }
    candidates
}

/// A column of T at zero is a stationary set of the unconstrained criterion (it depends on
/// ΛΛ' only), and a singular fit can be a local optimum there: in the convergence campaign
/// one such fit sat 0.42 log-likelihood units below lme4's. So a fit with a standardised
/// diagonal below 1e-3 is restarted once with those columns revived; the lower criterion wins.
fn revive_collapsed(criterion: &Standardised, diagonal: &[usize], first: Run) -> Run {
    let collapsed: Vec<usize> = diagonal
        .iter()
        .copied()
        .filter(|&i| first.y[i].abs() < 1e-3)
        .collect();
    if collapsed.is_empty() || !first.f.is_finite() {
        return first;
    }
    let mut revived = first.y.clone();
    for &i in &collapsed {
        revived[i] = 0.5;
    }
    // BFGS starts from the first run's curvature: the revived point differs from its
    // optimum only in the revived columns, and relearning every scale costs many gradients.
    let model = positive_definite_inverse(&first.hessian);
    let again = run(criterion, &[revived], model, Some(first.f));
    if again.f < first.f - 1e-9 && again.y.iter().all(|v| v.is_finite()) {
        again
    } else {
        first
    }
}

/// The Hessian over the natural parameters: H_x = S H_y S. Flipping a column's sign flips
/// signs in g and H but keeps norms, the decrement and definiteness.
fn natural_hessian(criterion: &Standardised, run: &Run, optimum: &[f64]) -> DMatrix<f64> {
    let n = optimum.len();
    let scale = &criterion.scale;
    let mut hessian = DMatrix::from_fn(n, n, |i, j| run.hessian[(i, j)] * scale[i] * scale[j]);
    let flips = sign_flips(&criterion.natural(&run.y), optimum);
    for i in 0..n {
        for j in 0..n {
            hessian[(i, j)] *= flips[i] * flips[j];
        }
    }
    hessian
}

/// The same strategy on a smooth criterion known only by its values (central differences),
/// started at `start`.
pub(crate) fn minimize_smooth(f: &(impl Fn(&[f64]) -> f64 + Sync), start: &[f64]) -> OptSummary {
    let criterion = Differenced {
        f,
        n: start.len(),
        counters: Counters::default(),
    };
    let run = run(&criterion, &[start.to_vec()], None, None);
    let gradient_norm = run.gradient.norm();
    let hessian = run.hessian.clone();
    let unsettled = run.unsettled.clone();
    let optimum = run.y.clone();
    summary(
        start.to_vec(),
        optimum,
        run,
        hessian,
        gradient_norm,
        unsettled,
        criterion.counts(),
        "BFGS, then Newton (central differences)",
    )
}

#[allow(clippy::too_many_arguments)]
fn summary(
    start: Vec<f64>,
    optimum: Vec<f64>,
    run: Run,
    hessian: DMatrix<f64>,
    gradient_norm: f64,
    unsettled: Vec<(usize, f64)>,
    (evaluations, gradient_evaluations): (usize, usize),
    optimizer: &str,
) -> OptSummary {
    let mut warnings = Vec::new();
    if !run.converged {
        let message = format!(
            "the optimizer did not converge: the criterion could still fall by about {:.2e} \
             (Newton decrement {:.2e}{})",
            run.newton_decrement.powi(2) / 2.0,
            run.newton_decrement,
            if run.negative_curvature {
                ", with negative curvature"
            } else {
                ""
            }
        );
        warnings.push(Diagnostic::warning(message, Location::None));
    }
    OptSummary {
        start,
        optimum,
        deviance: run.f,
        evaluations,
        gradient_evaluations,
        optimizer: optimizer.into(),
        converged: run.converged,
        gradient_norm,
        hessian_positive_definite: hessian.clone().cholesky().is_some(),
        newton_decrement: run.newton_decrement,
        hessian,
        unsettled,
        warnings,
    }
}

/// ±1 per parameter: whether `normalise` flipped its sign.
fn sign_flips(before: &[f64], after: &[f64]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            if *b != 0.0 && b.signum() != a.signum() {
                -1.0
            } else {
                1.0
            }
        })
        .collect()
}

/// What one optimizer run ends with, in the criterion's own coordinates.
struct Run {
    /// The start the run used (the best of its candidates).
    start: Vec<f64>,
    y: Vec<f64>,
    f: f64,
    gradient: DVector<f64>,
    hessian: DMatrix<f64>,
    converged: bool,
    newton_decrement: f64,
    negative_curvature: bool,
    unsettled: Vec<(usize, f64)>,
}

impl Run {
    /// A run that could not start or whose quasi-Newton phase failed (or was abandoned).
    fn failed(start: Vec<f64>, n: usize, y: Vec<f64>, f: f64) -> Run {
        Run {
            start,
            y,
            f,
            gradient: DVector::from_element(n, f64::NAN),
            hessian: DMatrix::from_element(n, n, f64::NAN),
            converged: false,
            newton_decrement: f64::INFINITY,
            negative_curvature: false,
            unsettled: Vec::new(),
        }
    }
}

/// With `rival`, the criterion another run reached: a run whose quasi-Newton phase ends within
/// 1e-4 deviance units of it (but not 1e-6 below) has found the same optimum, and is abandoned
/// (returned with an infinite criterion) before its Hessian, which would cost 2n gradients to
/// gain rounding (the facial boundary design's restart: 45 of 121 gradients).
fn run(
    criterion: &impl Criterion,
    candidates: &[Vec<f64>],
    model: Option<DMatrix<f64>>,
    rival: Option<f64>,
) -> Run {
    let n = criterion.len();
    let (start, y0, f0) = best_start(criterion, candidates);
    let failed = |y: Vec<f64>, f: f64| Run::failed(candidates[start].clone(), n, y, f);
    if !f0.is_finite() {
        return failed(y0, f0);
    }
    let model = model.or_else(|| criterion.inverse_hessian_guess(&y0));
    let Some((y, mut f, mut g)) = bfgs(criterion, y0.clone(), None, model) else {
        return failed(y0, f0);
    };
    exact_gradient(criterion, &y, &mut f, &mut g);
    if let Some(rival) = rival {
        if f >= rival - 1e-6 && f <= rival + 1e-4 {
            return failed(y, f64::INFINITY);
        }
    }
    let (y, f, g, h) = newton_rounds(criterion, y, f, g);
    verdict(candidates[start].clone(), y, f, g, h)
}

/// The first best of the candidates (index, point, criterion). Duplicates (lme4's T = I is
/// T̃ = I when every column has unit scale) are evaluated once; the rest in parallel, the first
/// best kept in candidate order.
fn best_start(criterion: &impl Criterion, candidates: &[Vec<f64>]) -> (usize, Vec<f64>, f64) {
    let distinct: Vec<usize> = (0..candidates.len())
        .filter(|&i| !candidates[..i].contains(&candidates[i]))
        .collect();
    let values: Vec<f64> = distinct
        .par_iter()
        .map(|&i| criterion.value(&candidates[i]))
        .collect();
    distinct
        .iter()
        .zip(values)
        .map(|(&i, f)| (i, candidates[i].clone(), f))
        .fold(None, |best: Option<(usize, Vec<f64>, f64)>, c| match best {
            Some(b) if b.2 <= c.2 || !c.2.is_finite() => Some(b),
            _ => Some(c),
        })
        .expect("at least one start")
}

/// Where the quasi-Newton phase ran on a rough gradient, the criterion and its gradient at `y`
/// replaced by the differenced ones (kept when those fail).
fn exact_gradient(criterion: &impl Criterion, y: &[f64], f: &mut f64, g: &mut DVector<f64>) {
    if !criterion.exact() {
        if let Some((fe, ge)) = criterion.value_gradient(y) {
            *f = fe;
            *g = ge;
        }
    }
}

/// Rounds of: a Hessian, a Newton step, and (unless that step finished the job) BFGS again
/// from the Hessian's inverse, which it would otherwise need many iterations to learn in
/// ill-conditioned (near-singular) problems. Returns the last point, its criterion and gradient,
/// and the last Hessian.
fn newton_rounds(
    criterion: &impl Criterion,
    mut y: Vec<f64>,
    mut f: f64,
    mut g: DVector<f64>,
) -> (Vec<f64>, f64, DVector<f64>, DMatrix<f64>) {
    let n = criterion.len();
    let mut h = DMatrix::from_element(n, n, f64::NAN);
    for _ in 0..12 {
        let Some(hn) = criterion.hessian(&y) else {
            break;
        };
        h = hn;
        // Near the optimum a step can only gain rounding: a few halvings, then stop trying.
        let settled = nothing_to_gain(&g, &h);
        let halvings = if settled { 3 } else { 50 };
        let Some((yn, fn_, gn)) = newton_step(criterion, &y, f, &g, &h, halvings) else {
            break;
        };
        let gain = f - fn_;
        y = yn;
        f = fn_;
        g = gn;
        if settled || gain <= 1e-14 * f.abs().max(1.0) {
            break;
        }
        // The step was small enough that this Hessian still describes the new point when the
        // new gradient leaves nothing to gain on it: a fresh Hessian would only confirm that.
        if nothing_to_gain(&g, &h) {
            break;
        }
        let Some(hinv) = positive_definite_inverse(&h) else {
            continue;
        };
        match bfgs(criterion, y.clone(), Some((f, g.clone())), Some(hinv)) {
            Some((yb, fb, gb)) if fb <= f => {
                y = yb;
                f = fb;
                g = gb;
                exact_gradient(criterion, &y, &mut f, &mut g);
            }
            _ => {}
        }
    }
    (y, f, g, h)
}

/// One Newton step on `h` (shifted to be positive definite where it is not) with backtracking;
/// where `h` has clearly negative curvature (a saddle: e.g. a column of T at zero, where the
/// criterion is stationary by symmetry), also a search along that direction, keeping the lower
/// of the two. `None` when no step lowers the criterion.
fn newton_step(
    criterion: &impl Criterion,
    y: &[f64],
    f: f64,
    g: &DVector<f64>,
    h: &DMatrix<f64>,
    halvings: usize,
) -> Option<(Vec<f64>, f64, DVector<f64>)> {
    let along = |d: &DVector<f64>, t: f64| -> Vec<f64> {
        y.iter().zip(d.iter()).map(|(a, d)| a + t * d).collect()
    };
    let step = shifted_newton_step(g, h);
    let mut best: Option<(Vec<f64>, f64)> = None;
    let mut t = 1.0;
    for _ in 0..halvings {
        let trial = along(&step, t);
        let ft = criterion.value(&trial);
        if ft < f {
            best = Some((trial, ft));
            break;
        }
        t *= 0.5;
    }
    if let Some((v, _)) = negative_curvature_direction(g, h) {
        for t in [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0] {
            let trial = along(&v, t);
            let ft = criterion.value(&trial);
            if ft < best.as_ref().map_or(f, |b| b.1) {
                best = Some((trial, ft));
            }
        }
    }
    let (trial, _) = best?;
    let (fe, ge) = criterion.value_gradient(&trial)?;
    Some((trial, fe, ge))
}

/// The eigenvector of the most negative eigenvalue, signed to descend, when that eigenvalue is
/// clearly negative.
fn negative_curvature_direction(g: &DVector<f64>, h: &DMatrix<f64>) -> Option<(DVector<f64>, f64)> {
    if h.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let e = SymmetricEigen::new(h.clone());
    let largest = e.eigenvalues.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let (k, &lambda) = e
        .eigenvalues
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))?;
    if lambda >= -1e-6 * largest.max(1.0) {
        return None;
    }
    let v = e.eigenvectors.column(k).into_owned();
    Some(if v.dot(g) > 0.0 {
        (-v, lambda)
    } else {
        (v, lambda)
    })
}

/// (H + μI)⁻¹ with the smallest shift μ ≥ 0 (on a ×10 grid) that makes it positive definite.
fn positive_definite_inverse(h: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let n = h.nrows();
    if h.iter().any(|v| !v.is_finite()) {
        return None;
    }
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
            1e-10 * scale
        } else {
            shift * 10.0
        };
    }
    None
}

/// BFGS with an Armijo backtracking line search on the exact gradient. Stops when a step gains
/// less than the criterion's rounding twice in a row or the model promises nothing more.
fn bfgs(
    criterion: &impl Criterion,
    y0: Vec<f64>,
    at_start: Option<(f64, DVector<f64>)>,
    model: Option<DMatrix<f64>>,
) -> Option<(Vec<f64>, f64, DVector<f64>)> {
    let n = y0.len();
    let (mut f, mut g) = match at_start {
        Some(fg) => fg,
        None => criterion.rough_value_gradient(&y0)?,
    };
    let mut y = DVector::from_vec(y0);
    let mut scaled = model.is_some();
    let mut hinv = model.unwrap_or_else(|| DMatrix::identity(n, n));
    let mut stalls = 0;
    for _ in 0..400 {
        let mut d = -&hinv * &g;
        if g.dot(&d) >= 0.0 {
            hinv = DMatrix::identity(n, n);
            scaled = false;
            d = -g.clone();
        }
        // The first step of plain steepest descent is bounded: standardised parameters are O(1).
        if !scaled && d.norm() > 1.0 {
            d /= d.norm();
        }
        let Some((yn, ft, gt)) = line_search(criterion, &y, &d, f, g.dot(&d), scaled) else {
            break;
        };
        let Some((fn_, gn)) = (match gt {
            Some(gt) => Some((ft, gt)),
            None => criterion.rough_value_gradient(yn.as_slice()),
        }) else {
            break;
        };
        update_inverse(&mut hinv, &mut scaled, &yn - &y, &gn - &g);
        let gain = f - fn_;
        y = yn;
        f = fn_;
        g = gn;
        let promised = g.dot(&(&hinv * &g)).abs();
        let rounding = 1e-13 * f.abs().max(1.0);
        stalls = if gain <= rounding { stalls + 1 } else { 0 };
        if stalls >= 2 || (scaled && promised < rounding) {
            break;
        }
    }
    Some((y.as_slice().to_vec(), f, g))
}

/// Backtracking from `y` along `d` (`slope` = g'd) until the Armijo condition holds: the point,
/// its criterion and, when evaluated with the first trial, its gradient.
fn line_search(
    criterion: &impl Criterion,
    y: &DVector<f64>,
    d: &DVector<f64>,
    f: f64,
    slope: f64,
    scaled: bool,
) -> Option<(DVector<f64>, f64, Option<DVector<f64>>)> {
    let mut t = 1.0;
    for trial_index in 0..60 {
        let trial = y + d * t;
        // Most steps take t = 1: evaluating the gradient with the first trial saves a
        // second factorization at the accepted point. Not so the first step of steepest
        // descent, whose unit length knows nothing of the curvature and usually overshoots.
        let (ft, gt) = if trial_index == 0 && scaled {
            match criterion.rough_value_gradient(trial.as_slice()) {
                Some((ft, gt)) => (ft, Some(gt)),
                None => (f64::INFINITY, None),
            }
        } else {
            (criterion.value(trial.as_slice()), None)
        };
        if ft.is_finite() && ft <= f + 1e-4 * t * slope {
            return Some((trial, ft, gt));
        }
        // Quadratic interpolation, kept within [0.1 t, 0.5 t].
        let q = if ft.is_finite() {
            -slope * t * t / (2.0 * (ft - f - slope * t))
        } else {
            0.1 * t
        };
        t = q.clamp(0.1 * t, 0.5 * t);
    }
    None
}

/// The BFGS update of the inverse Hessian `hinv` by the step `s` and the gradient's change `v`
/// (skipped without enough curvature); the first update also sets its scale.
fn update_inverse(hinv: &mut DMatrix<f64>, scaled: &mut bool, s: DVector<f64>, v: DVector<f64>) {
    let n = s.len();
    let sy = s.dot(&v);
    if sy > 1e-12 * s.norm() * v.norm() {
        if !*scaled {
            *hinv = DMatrix::identity(n, n) * (sy / v.dot(&v));
            *scaled = true;
        }
        let rho = 1.0 / sy;
        let hy = &*hinv * &v;
        let yhy = v.dot(&hy);
        *hinv += (&s * s.transpose()) * (rho * rho * yhy + rho)
            - (&hy * s.transpose() + &s * hy.transpose()) * rho;
    }
}

/// The verdict at the last point, with the Hessian of the last round (the step from its point
/// was small, so it differs negligibly).
fn verdict(start: Vec<f64>, y: Vec<f64>, f: f64, g: DVector<f64>, h: DMatrix<f64>) -> Run {
    let (newton_decrement, flat_slope, min_eigen) = decrement(&g, &h);
    let max_eigen = if h.iter().all(|v| v.is_finite()) {
        SymmetricEigen::new(h.clone())
            .eigenvalues
            .iter()
            .fold(0.0f64, |a, v| a.max(v.abs()))
    } else {
        f64::NAN
    };
    let negative_curvature = min_eigen < -1e-6 * max_eigen.max(1.0);
    let converged = f.is_finite()
        && newton_decrement.is_finite()
        && newton_decrement * newton_decrement / 2.0 <= REMAINING
        && flat_slope <= FLAT_SLOPE
        && !negative_curvature;
    let unsettled = if converged {
        Vec::new()
    } else {
        let step = shifted_newton_step(&g, &h);
        let mut out: Vec<(usize, f64)> = step
            .iter()
            .enumerate()
            .filter(|(_, s)| s.abs() > UNSETTLED_STEP)
            .map(|(i, s)| (i, *s))
            .collect();
        out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        out
    };
    Run {
        start,
        y,
        f,
        gradient: g,
        hessian: h,
        converged,
        newton_decrement,
        negative_curvature,
        unsettled,
    }
}

/// Whether the quadratic model (g, H) promises less than 1e-9 deviance units, with no slope
/// along flat directions and no negative curvature: a Newton step can gain only rounding.
fn nothing_to_gain(g: &DVector<f64>, h: &DMatrix<f64>) -> bool {
    let (dec, flat, min) = decrement(g, h);
    dec * dec / 2.0 < 1e-9 && flat <= FLAT_SLOPE && min >= 0.0
}

/// (√(g'H⁺g) over the directions of positive curvature, the largest |v'g| along flat
/// directions, the smallest eigenvalue).
fn decrement(g: &DVector<f64>, h: &DMatrix<f64>) -> (f64, f64, f64) {
    if h.iter().any(|v| !v.is_finite()) {
        return (f64::INFINITY, f64::INFINITY, f64::NAN);
    }
    let eigen = SymmetricEigen::new(h.clone());
    let largest = eigen.eigenvalues.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let tolerance = 1e-9 * largest.max(1e-300);
    let mut squared = 0.0;
    let mut flat: f64 = 0.0;
    let mut min = f64::INFINITY;
    for (k, &lambda) in eigen.eigenvalues.iter().enumerate() {
        let along = eigen.eigenvectors.column(k).dot(g);
        min = min.min(lambda);
        if lambda > tolerance {
            squared += along * along / lambda;
        } else {
            flat = flat.max(along.abs());
        }
    }
    (squared.sqrt(), flat, min)
}

/// −(H + μI)⁻¹g with the smallest shift μ ≥ 0 (on a ×10 grid) that makes it positive definite.
fn shifted_newton_step(g: &DVector<f64>, h: &DMatrix<f64>) -> DVector<f64> {
    let n = g.len();
    let scale = h
        .diagonal()
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()))
        .max(1e-8);
    if h.iter().any(|v| !v.is_finite()) {
        return -g / scale;
    }
    let mut shift = 0.0;
    for _ in 0..60 {
        let m = h + DMatrix::identity(n, n) * shift;
        if let Some(c) = m.cholesky() {
            return -c.solve(g);
        }
        shift = if shift == 0.0 {
            1e-10 * scale
        } else {
            shift * 10.0
        };
    }
    -g / scale
}

/// `x` with `d` added to the coordinates named in `moves`.
fn moved(x: &[f64], moves: &[(usize, f64)]) -> Vec<f64> {
    let mut y = x.to_vec();
    for &(i, d) in moves {
        y[i] += d;
    }
    y
}
