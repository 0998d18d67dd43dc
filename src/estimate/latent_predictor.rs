//! Full maximum likelihood of a level-1 mixed model jointly with a group-level outcome regressed
//! on a group's latent random coefficient (`reduction ~ 1 + b*sync + cp*w`, `sync` the random
//! slope of `dp`), and the resulting fit with the asymptotic covariance of all its parameters.
//!
//! The model, per group j with level-1 rows y_j and group outcome Y_j:
//! y_j = X_jβ + Z_ju_j + e_j, Y_j = x2_j'γ + b·(s_j'β + u_sj) + ζ_j, u_j ~ N(0, Σ),
//! e ~ N(0, σ²I), ζ ~ N(0, ψ), where s_j'β is the latent coefficient's mean (g10 + a·w_j) and
//! u_sj its random part. Why it is evaluated this way:
//! - Y_j is one more observation of the group with "random-effect row" b·e_s' and residual
//!   variance ψ. So (y_j, Y_j) is an ordinary LMM block with Z̃_j = [Z_j; b·e_s'] and
//!   W = diag(σ⁻²…, ψ⁻¹), and the marginal likelihood follows from Woodbury per group:
//!   log|V_j| = log|W⁻¹| + log det(I + ΣA_j), A_j = Z̃'WZ̃, and
//!   V_j⁻¹ = W − WZ̃(I + ΣA_j)⁻¹ΣZ̃'W. Only the level-1 cross-products Z'Z, Z'[X y] per group and
//!   [X y]'[X y] in total are needed (the design's sufficient statistics): the cost of an
//!   evaluation is per group, never per row. Σ is never inverted, so the same code evaluates
//!   the likelihood at any symmetric Σ with V positive definite (the raw-scale Hessian needs
//!   that near boundaries).
//! - Given b, the mean of every observation is linear in (β, γ): Y_j's design row is
//!   (b·s_j, x2_j). So for the optimization β and γ are profiled out by generalised least
//!   squares and only (Cholesky factor of Σ, log σ², b, log ψ) are searched, with the BFGS and
//!   Newton strategy of `optimize`. No reparametrisation (b0' = b0 + b·g10) is needed.
//! - Standard errors: the inverse of half the numerical Hessian of −2ℓ on the raw scale of the
//!   parameter table's rows (fixed effects with b, Σ's entries, σ², ψ), so defined quantities
//!   (`a*b`) get delta-method and Monte Carlo intervals from the same matrix.
//!
//! Supported: random terms on one grouping factor (Σ block-diagonal by term), one level-1 equation, one residual variance per equation (the
//! design refuses the rest). This module must not touch rows.

use nalgebra::{DMatrix, DVector};

use crate::design::{Design, LatentOutcome};
use crate::diagnostics::{Diagnostic, Location};
use crate::model::Method;
use crate::numeric_derivatives::hessian;

use super::fit::{Fit, FixedEstimate, ResidualEstimate, VarianceComponent, SINGULAR_TOLERANCE};
use super::optimize::minimize_smooth;

/// A joint fit: the usual `Fit` (its fixed effects include the group-level equation's, its
/// residuals both equations') and the asymptotic covariance of all parameters, ordered like
/// `ParameterTable::from_fit`'s rows.
#[derive(Debug, Clone)]
pub struct LatentFit {
    pub fit: Fit,
    pub covariance: DMatrix<f64>,
}

/// One group's statistics.
struct Group {
    /// Z_j'Z_j, q×q (zero without level-1 rows).
    zz: DMatrix<f64>,
    /// Z_j'[X y] with y moved after the group-level columns: q×(p+1), zero in those columns.
    zxy: DMatrix<f64>,
    level2: Option<Level2>,
}

struct Level2 {
    y: f64,
    /// Covariates of the non-latent group-level columns.
    x: Vec<f64>,
    /// Coefficients of the level-1 parameters in the latent coefficient's mean.
    s: Vec<f64>,
}

/// The variance parameters and b.
struct Covariance {
    sigma: DMatrix<f64>,
    sigma2: f64,
    b: f64,
    psi: f64,
}

/// The joint likelihood from per-group statistics.
struct Joint {
    p1: usize,
    p2: usize,
    q: usize,
    /// Position of the latent coefficient among the term's effects.
    s: usize,
    n1: usize,
    n2: usize,
    /// Level-1 [X y]'[X y] laid out like `zxy`: (p+1)×(p+1).
    xy: DMatrix<f64>,
    groups: Vec<Group>,
    /// Σ's free entries (i ≥ j): per term, the lower triangle by columns, or the diagonal.
    entries: Vec<(usize, usize)>,
    /// Per random term: its first row in Σ and its number of effects.
    terms: Vec<(usize, usize)>,
}

/// Per random term of the design: its first row in the joint Σ and its size.
fn term_offsets(design: &Design) -> Vec<(usize, usize)> {
    let mut offset = 0;
    design
        .random
        .iter()
        .map(|t| {
            let at = offset;
            offset += t.q();
            (at, t.q())
        })
        .collect()
}

const LN_2PI: f64 = 1.837_877_066_409_345_5;

impl Joint {
    fn new(design: &Design, latent: &LatentOutcome) -> Self {
        let p1 = design.stats.p;
        let m = p1 + 1;
        let p = p1 + latent.columns.len() - 1;
        // Several terms on the one grouping (`(1 + x || g)` is one term per effect) are one
        // block per group whose Σ is block-diagonal by term.
        let terms = term_offsets(design);
        let q: usize = terms.iter().map(|(_, q)| q).sum();
        let mut groups: Vec<Group> = (0..latent.groups.len())
            .map(|j| Group {
                zz: DMatrix::zeros(q, q),
                zxy: DMatrix::zeros(q, p + 1),
                level2: latent.groups[j].as_ref().map(|g| Level2 {
                    y: g.outcome,
                    x: g.covariates.clone(),
                    s: g.slope_mean.clone(),
                }),
            })
            .collect();
        // y moves from column p1 to column p (after the group-level columns).
        let to = |k: usize| if k < p1 { k } else { p };
        for (k, stats) in design.stats.factors.iter().enumerate() {
            let (offset, qk) = terms[k];
            // Groups past the design's levels have no level-1 rows.
            for (j, group) in groups.iter_mut().enumerate().take(stats.nlevels) {
                for block in &stats.blocks[stats.level_start[j]..stats.level_start[j + 1]] {
                    let mut zz = group.zz.view_mut((offset, offset), (qk, qk));
                    zz += DMatrix::from_column_slice(qk, qk, &block.zz);
                    let level1 = DMatrix::from_column_slice(qk, m, &block.zxy);
                    for c in 0..m {
                        let mut column = group.zxy.view_mut((offset, to(c)), (qk, 1));
                        column += level1.column(c);
                    }
                }
            }
        }
        for cross in &design.stats.cross {
            let ((oa, qa), (ob, qb)) = (terms[cross.a], terms[cross.b]);
            for block in cross.blocks.iter().filter(|b| b.level_a == b.level_b) {
                let zz = DMatrix::from_column_slice(qa, qb, &block.zz);
                let group = &mut groups[block.level_a];
                let mut ab = group.zz.view_mut((oa, ob), (qa, qb));
                ab += &zz;
                let mut ba = group.zz.view_mut((ob, oa), (qb, qa));
                ba += zz.transpose();
            }
        }
        let mut xy = DMatrix::zeros(p + 1, p + 1);
        for class in &design.stats.xy {
            let level1 = DMatrix::from_column_slice(m, m, class);
            for k in 0..m {
                for l in 0..m {
                    xy[(to(k), to(l))] += level1[(k, l)];
                }
            }
        }
        let entries = design
            .random
            .iter()
            .zip(&terms)
            .flat_map(|(term, &(offset, qk))| {
                let correlated = term.correlated;
                (0..qk)
                    .flat_map(move |j| (j..qk).map(move |i| (offset + i, offset + j)))
                    .filter(move |(i, j)| correlated || i == j)
            })
            .collect();
        Joint {
            p1,
            p2: latent.columns.len() - 1,
            q,
            s: terms[latent.term].0 + latent.effect,
            n1: design.nobs(),
            n2: latent.nobs(),
            xy,
            groups,
            entries,
            terms,
        }
    }

    fn p(&self) -> usize {
        self.p1 + self.p2
    }

    /// Into `a`, `g` and `row`: a group's A = Z̃'WZ̃ (q×q), G = Z̃'W[X̃ ỹ] (q×(p+1)) and, when it
    /// has an outcome (the return value), its row (b·s_j, x2_j, Y_j). Buffers, because this runs
    /// per group per evaluation.
    fn group_terms(
        &self,
        group: &Group,
        c: &Covariance,
        a: &mut DMatrix<f64>,
        g: &mut DMatrix<f64>,
        row: &mut DVector<f64>,
    ) -> bool {
        let (p1, p) = (self.p1, self.p());
        a.copy_from(&group.zz);
        *a /= c.sigma2;
        g.copy_from(&group.zxy);
        *g /= c.sigma2;
        let Some(l2) = &group.level2 else {
            return false;
        };
        for k in 0..p1 {
            row[k] = c.b * l2.s[k];
        }
        for (k, x) in l2.x.iter().enumerate() {
            row[p1 + k] = *x;
        }
        row[p] = l2.y;
        a[(self.s, self.s)] += c.b * c.b / c.psi;
        for k in 0..=p {
            g[(self.s, k)] += c.b / c.psi * row[k];
        }
        true
    }

    /// [X̃ ỹ]'V⁻¹[X̃ ỹ] ((p+1)×(p+1), y last) and log|V|; `None` when V is not positive
    /// definite or a parameter is out of range.
    fn crossproducts(&self, c: &Covariance) -> Option<(DMatrix<f64>, f64)> {
        if !(c.sigma2 > 0.0 && c.psi > 0.0 && c.b.is_finite()) {
            return None;
        }
        let (p, q) = (self.p(), self.q);
        let mut cross = &self.xy / c.sigma2;
        let mut logdet = self.n1 as f64 * c.sigma2.ln() + self.n2 as f64 * c.psi.ln();
        let identity = DMatrix::<f64>::identity(q, q);
        let mut a = DMatrix::zeros(q, q);
        let mut g = DMatrix::zeros(q, p + 1);
        let mut row = DVector::zeros(p + 1);
        let mut m = DMatrix::zeros(q, q);
        let mut h = DMatrix::zeros(q, p + 1);
        for group in &self.groups {
            if self.group_terms(group, c, &mut a, &mut g, &mut row) {
                cross.ger(1.0 / c.psi, &row, &row, 1.0);
            }
            m.copy_from(&identity);
            m.gemm(1.0, &c.sigma, &a, 1.0);
            let lu = m.clone().lu();
            let det = lu.determinant();
            if !(det > 0.0 && det.is_finite()) {
                return None;
            }
            logdet += det.ln();
            h.gemm(1.0, &c.sigma, &g, 0.0);
            if !lu.solve_mut(&mut h) {
                return None;
            }
            cross.gemm_tr(-1.0, &g, &h, 1.0);
        }
        Some((cross, logdet))
    }

    /// E[u_j | y_j, Y_j] = (I + ΣA_j)⁻¹ΣZ̃'W(ỹ − X̃β̃) per group (a row each), at the GLS
    /// coefficients `coefficients` = (β, γ), and Var(u_j | y_j, Y_j) = (I + ΣA_j)⁻¹Σ with the
    /// coefficients held fixed (lme4's `condVar`), a q×q matrix per group.
    fn conditional_modes(
        &self,
        c: &Covariance,
        coefficients: &DVector<f64>,
    ) -> (DMatrix<f64>, Vec<DMatrix<f64>>) {
        let (p, q) = (self.p(), self.q);
        let mut v = DVector::zeros(p + 1);
        for k in 0..p {
            v[k] = -coefficients[k];
        }
        v[p] = 1.0;
        let identity = DMatrix::<f64>::identity(q, q);
        let mut modes = DMatrix::from_element(self.groups.len(), q, f64::NAN);
        let mut covariances = Vec::with_capacity(self.groups.len());
        let mut a = DMatrix::zeros(q, q);
        let mut g = DMatrix::zeros(q, p + 1);
        let mut row = DVector::zeros(p + 1);
        for (j, group) in self.groups.iter().enumerate() {
            self.group_terms(group, c, &mut a, &mut g, &mut row);
            let lu = (&identity + &c.sigma * &a).lu();
            if let Some(u) = lu.solve(&(&c.sigma * (&g * &v))) {
                modes.set_row(j, &u.transpose());
            }
            covariances.push(
                lu.solve(&c.sigma)
                    .unwrap_or_else(|| DMatrix::from_element(q, q, f64::NAN)),
            );
        }
        (modes, covariances)
    }

    fn nobs_total(&self) -> f64 {
        (self.n1 + self.n2) as f64
    }

    /// −2ℓ with β and γ profiled out; also the GLS coefficients (β, γ).
    fn profiled(&self, c: &Covariance) -> Option<(f64, DVector<f64>)> {
        let p = self.p();
        let (cross, logdet) = self.crossproducts(c)?;
        let xx = cross.view((0, 0), (p, p)).into_owned();
        let xy = cross.view((0, p), (p, 1)).into_owned();
        let chol = xx.cholesky()?;
        let beta = chol.solve(&xy);
        let rss = cross[(p, p)] - (xy.transpose() * &beta)[(0, 0)];
        let beta = beta.column(0).into_owned();
        let d = logdet + rss + self.nobs_total() * LN_2PI;
        d.is_finite().then_some((d, beta))
    }

    /// The optimizer's parameters: Σ's Cholesky factor entries, log σ², b, log ψ.
    fn covariance(&self, x: &[f64]) -> Covariance {
        let q = self.q;
        let mut l = DMatrix::zeros(q, q);
        for (k, &(i, j)) in self.entries.iter().enumerate() {
            l[(i, j)] = x[k];
        }
        let k = self.entries.len();
        Covariance {
            sigma: &l * l.transpose(),
            sigma2: x[k].exp(),
            b: x[k + 1],
            psi: x[k + 2].exp(),
        }
    }

    /// −2ℓ at raw parameters in the table's order: level-1 β, group-level coefficients (b at
    /// `latent`), Σ's entries, σ², ψ.
    fn raw_deviance(&self, raw: &[f64], latent: usize) -> f64 {
        let (p1, p2) = (self.p1, self.p2);
        let nfixed = p1 + p2 + 1;
        let mut coefficients = DVector::zeros(p1 + p2 + 1);
        let mut b = 0.0;
        let mut k = 0;
        for (i, &v) in raw[..nfixed].iter().enumerate() {
            if i == p1 + latent {
                b = v;
            } else {
                coefficients[k] = -v;
                k += 1;
            }
        }
        coefficients[p1 + p2] = 1.0;
        let mut sigma = DMatrix::zeros(self.q, self.q);
        for (e, &(i, j)) in self.entries.iter().enumerate() {
            sigma[(i, j)] = raw[nfixed + e];
            sigma[(j, i)] = raw[nfixed + e];
        }
        let at = nfixed + self.entries.len();
        let c = Covariance {
            sigma,
            sigma2: raw[at],
            b,
            psi: raw[at + 1],
        };
        match self.crossproducts(&c) {
            Some((cross, logdet)) => {
                let quadratic = (coefficients.transpose() * cross * &coefficients)[(0, 0)];
                logdet + quadratic + self.nobs_total() * LN_2PI
            }
            None => f64::NAN,
        }
    }
}

/// Fit a design with a latent-predictor equation by full ML.
pub fn fit_latent(design: &Design, method: Method) -> Result<LatentFit, Vec<Diagnostic>> {
    fit_joint(design, method, true)
}

/// The estimates only (standard errors NaN): for refits (bootstrap replicates), which would
/// otherwise spend most of their time on the Hessian.
pub fn fit_latent_estimates(design: &Design, method: Method) -> Result<Fit, Vec<Diagnostic>> {
    fit_joint(design, method, false).map(|j| j.fit)
}

fn fit_joint(
    design: &Design,
    method: Method,
    with_covariance: bool,
) -> Result<LatentFit, Vec<Diagnostic>> {
    let latent = fitted_outcome(design, method)?;
    let joint = Joint::new(design, latent);
    let start = joint_start(design, &joint, latent)?;

    let objective = |x: &[f64]| {
        joint
            .profiled(&joint.covariance(x))
            .map_or(f64::INFINITY, |(d, _)| d)
    };
    let opt = minimize_smooth(&objective, &start);
    let c = joint.covariance(&opt.optimum);
    let Some((deviance, coefficients)) = joint.profiled(&c) else {
        return Err(vec![Diagnostic::error(
            "the joint likelihood could not be evaluated at the optimum",
            Location::None,
        )]);
    };

    let raw = raw_parameters(&joint, latent, &c, &coefficients);
    let mut warnings = opt.warnings.clone();
    let n = raw.len();
    let covariance = raw_covariance(&joint, latent.latent, &raw, with_covariance, &mut warnings);

    let nfixed = joint.p1 + joint.p2 + 1;
    let beta = DVector::from_column_slice(&raw[..nfixed]);
    let beta_covariance = covariance.view((0, 0), (nfixed, nfixed)).into_owned();
    let fixed = joint_fixed_estimates(design, latent, &raw, &beta_covariance);
    let random = joint_variance_components(design, &joint, &c);
    let (random_effects, random_effects_covariance) =
        joint_random_effects(&joint, &c, &coefficients);
    let sigma = c.sigma2.sqrt();
    let (theta, singular) = relative_factor(&joint, &c, sigma);
    if singular {
        warnings.push(super::fit::singular_fit_warning());
    }
    let residual = joint_residuals(design, latent, &c, sigma);
    let k = n as f64;
    // BIC's n is the number of level-1 observations (as Mplus counts for two-level models);
    // the groups' outcomes are not extra units of sample size.
    let nobs = joint.n1;
    let fit = Fit {
        method: Method::Ml,
        fixed,
        beta,
        beta_covariance,
        theta,
        sigma,
        residual,
        residual_correlation: None,
        random_effects,
        random_effects_covariance,
        random,
        loglik: -deviance / 2.0,
        deviance,
        aic: deviance + 2.0 * k,
        bic: deviance + k * (nobs as f64).ln(),
        nobs,
        ngroups: vec![(design.random[latent.term].name.clone(), joint.groups.len())],
        converged: opt.converged,
        singular,
        iterations: opt.evaluations,
        gradient_evaluations: opt.gradient_evaluations,
        flat_directions: Vec::new(),
        warnings,
        varpar: opt.optimum.clone(),
        optimization: opt,
    };
    Ok(LatentFit { fit, covariance })
}

/// The design's group-level outcome on a latent coefficient, or why it cannot be fitted (no
/// such equation, REML, too few groups).
fn fitted_outcome(design: &Design, method: Method) -> Result<&LatentOutcome, Vec<Diagnostic>> {
    let Some(latent) = &design.latent else {
        return Err(vec![Diagnostic::error(
            "internal: the design has no equation with a random coefficient as a predictor",
            Location::None,
        )]);
    };
    if method == Method::Reml {
        return Err(vec![Diagnostic::error(
            "a random coefficient as a predictor is fitted by full maximum likelihood only",
            Location::None,
        )
        .with_hint("write `estimate ml`")]);
    }
    if latent.nobs() < latent.columns.len() + 1 {
        return Err(vec![Diagnostic::error(
            format!(
                "`{}` is observed in {} groups: too few for its {} coefficients and residual \
                 variance",
                latent.outcome,
                latent.nobs(),
                latent.columns.len()
            ),
            Location::None,
        )]);
    }
    Ok(latent)
}

/// The optimizer's start: the level-1 model alone (b = 0 makes the outcome independent of it)
/// and the outcome's sample variance.
fn joint_start(
    design: &Design,
    joint: &Joint,
    latent: &LatentOutcome,
) -> Result<Vec<f64>, Vec<Diagnostic>> {
    let level1 = super::fit::fit(design, Method::Ml)?;
    let sigma2 = level1.sigma * level1.sigma;
    let mut start_sigma = DMatrix::identity(joint.q, joint.q) * (1e-2 * sigma2);
    for (component, &(offset, qk)) in level1.random.iter().zip(&joint.terms) {
        let mut block = start_sigma.view_mut((offset, offset), (qk, qk));
        block += &component.covariance;
    }
    let l = start_sigma
        .cholesky()
        .map(|c| c.l())
        .unwrap_or_else(|| DMatrix::identity(joint.q, joint.q) * sigma2.sqrt());
    let ys: Vec<f64> = latent.groups.iter().flatten().map(|g| g.outcome).collect();
    let mean = ys.iter().sum::<f64>() / ys.len() as f64;
    let var_y = ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / ys.len() as f64;
    let mut start: Vec<f64> = joint.entries.iter().map(|&(i, j)| l[(i, j)]).collect();
    start.extend([sigma2.ln(), 0.0, var_y.max(1e-8).ln()]);
    Ok(start)
}

/// Raw parameters in the table's order: level-1 β, group-level coefficients (b among them),
/// Σ's entries, σ², ψ.
fn raw_parameters(
    joint: &Joint,
    latent: &LatentOutcome,
    c: &Covariance,
    coefficients: &DVector<f64>,
) -> Vec<f64> {
    let p1 = joint.p1;
    let mut raw = Vec::new();
    raw.extend(coefficients.iter().take(p1));
    let mut gamma = coefficients.iter().skip(p1);
    for col in 0..latent.columns.len() {
        if col == latent.latent {
            raw.push(c.b);
        } else {
            raw.push(*gamma.next().unwrap_or(&f64::NAN));
        }
    }
    raw.extend(joint.entries.iter().map(|&(i, j)| c.sigma[(i, j)]));
    raw.extend([c.sigma2, c.psi]);
    raw
}

/// The covariance of the raw parameters: the inverse of half the Hessian of −2ℓ (NaN without
/// `with_covariance`), a warning added where it is not positive definite or not computed.
fn raw_covariance(
    joint: &Joint,
    latent: usize,
    raw: &[f64],
    with_covariance: bool,
    warnings: &mut Vec<Diagnostic>,
) -> DMatrix<f64> {
    let n = raw.len();
    let h = if with_covariance {
        let mut f = |x: &[f64]| joint.raw_deviance(x, latent);
        Some(hessian(&mut f, raw))
    } else {
        None
    };
    let information = h
        .filter(|h| h.iter().all(|v| v.is_finite()))
        .map(|h| h / 2.0);
    match information.as_ref().map(|i| (i, i.clone().cholesky())) {
        Some((_, Some(ch))) => ch.inverse(),
        // As for every model class (`information::parameter_covariance_generalized`): at a
        // boundary the information is inverted over its positive eigenvalues, and said so.
        Some((information, None)) => {
            warnings.push(Diagnostic::warning(
                "the information matrix of the joint likelihood is not positive definite (a \
                 boundary fit): the covariance of the parameters is its generalized inverse over \
                 the positive eigenvalues",
                Location::None,
            ));
            super::information::generalized_inverse(&(information * 2.0))
        }
        None if !with_covariance => DMatrix::from_element(n, n, f64::NAN),
        None => {
            warnings.push(Diagnostic::warning(
                "the Hessian of the joint likelihood could not be computed: no standard errors",
                Location::None,
            ));
            DMatrix::from_element(n, n, f64::NAN)
        }
    }
}

/// The level-1 fixed effects, then the group-level equation's coefficients (b among them).
fn joint_fixed_estimates(
    design: &Design,
    latent: &LatentOutcome,
    raw: &[f64],
    beta_covariance: &DMatrix<f64>,
) -> Vec<FixedEstimate> {
    let p1 = design.stats.p;
    let mut fixed: Vec<FixedEstimate> = design
        .fixed
        .iter()
        .enumerate()
        .map(|(i, f)| FixedEstimate {
            equation: f.equation(),
            term: f.term().to_string(),
            label: f.label.clone(),
            estimate: raw[i],
            se: beta_covariance[(i, i)].sqrt(),
        })
        .collect();
    for (k, col) in latent.columns.iter().enumerate() {
        fixed.push(FixedEstimate {
            equation: latent.equation,
            term: col.name.clone(),
            label: col.label.clone(),
            estimate: raw[p1 + k],
            se: beta_covariance[(p1 + k, p1 + k)].sqrt(),
        });
    }
    fixed
}

/// Each random term's block of Σ, with its SDs and correlations.
fn joint_variance_components(
    design: &Design,
    joint: &Joint,
    c: &Covariance,
) -> Vec<VarianceComponent> {
    design
        .random
        .iter()
        .zip(&joint.terms)
        .map(|(term, &(offset, qk))| {
            VarianceComponent::of(term, c.sigma.view((offset, offset), (qk, qk)).into_owned())
        })
        .collect()
}

/// Per term, the groups' conditional modes and conditional covariances.
type RandomEffects = (Vec<DMatrix<f64>>, Vec<Vec<DMatrix<f64>>>);

/// The conditional modes and covariances per group, split by term.
fn joint_random_effects(
    joint: &Joint,
    c: &Covariance,
    coefficients: &DVector<f64>,
) -> RandomEffects {
    let (modes, covariances) = joint.conditional_modes(c, coefficients);
    let random_effects = joint
        .terms
        .iter()
        .map(|&(offset, qk)| modes.columns(offset, qk).into_owned())
        .collect();
    // Σ is block-diagonal by term, so each term's block of a group's covariance is its own.
    let random_effects_covariance = joint
        .terms
        .iter()
        .map(|&(offset, qk)| {
            covariances
                .iter()
                .map(|v| v.view((offset, offset), (qk, qk)).into_owned())
                .collect()
        })
        .collect();
    (random_effects, random_effects_covariance)
}

/// θ, the entries of Σ's Cholesky factor relative to σ, and whether a diagonal is at zero.
fn relative_factor(joint: &Joint, c: &Covariance, sigma: f64) -> (Vec<f64>, bool) {
    let q = joint.q;
    let relative = c
        .sigma
        .clone()
        .cholesky()
        .map(|ch| ch.l() / sigma)
        .unwrap_or_else(|| DMatrix::zeros(q, q));
    let theta: Vec<f64> = joint
        .entries
        .iter()
        .map(|&(i, j)| relative[(i, j)])
        .collect();
    let singular = (0..q).any(|i| relative[(i, i)].abs() < SINGULAR_TOLERANCE);
    (theta, singular)
}

/// The level-1 residual and the group-level outcome's.
fn joint_residuals(
    design: &Design,
    latent: &LatentOutcome,
    c: &Covariance,
    sigma: f64,
) -> Vec<ResidualEstimate> {
    let level1_equation = design.classes.first().map_or(0, |c| c.equation);
    vec![
        ResidualEstimate {
            equation: level1_equation,
            level: None,
            delta: 1.0,
            sd: sigma,
            variance: c.sigma2,
        },
        ResidualEstimate {
            equation: latent.equation,
            level: None,
            delta: c.psi.sqrt() / sigma,
            sd: c.psi.sqrt(),
            variance: c.psi,
        },
    ]
}
