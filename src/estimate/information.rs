//! The asymptotic covariance of every parameter of a fit, in the rows of its `ParameterTable`:
//! fixed effects β, random-effect covariance entries (σ²TT', raw variances and covariances),
//! residual variances per class and AR(1)'s φ.
//!
//! Owns the marginal log-likelihood as a function of those raw parameters and its numerical
//! Hessian. It must not optimize or touch rows: it evaluates from the design's sufficient
//! statistics.
//!
//! # The likelihood on the raw scale
//!
//! With V = ZΣZ' + R (R diagonal, σ²_c on the rows of residual class c; with AR(1) residuals
//! within series, Λ^½C(φ)Λ^½ per series, Λ those variances) and r = y − Xβ,
//!
//! ```text
//!   −2ℓ(β, Σ, σ²) = log|V| + n log 2π + r'V⁻¹r
//!                 = log|V| + n log 2π + r̂² + ‖L'(β − β̂)‖²,   LL' = X'V⁻¹X
//! ```
//!
//! where β̂ is the GLS estimate at (Σ, σ²) and r̂² its quadratic form. Two evaluations give
//! log|V|, L, β̂ and r̂²:
//!
//! - **direct** (no random term, or one; R diagonal): V is block-diagonal by level, and per level, with
//!   A = Z'R⁻¹Z and H = A^½, log|V_j| = log|R_j| + log|I + HΣH| and
//!   [X y]'V_j⁻¹[X y] = [X y]'R⁻¹[X y] − B'(Σ − ΣH(I + HΣH)⁻¹HΣ)B with B = Z'R⁻¹[X y]. Σ is
//!   never factored, so the likelihood stays defined wherever V is positive definite, also at
//!   and around a singular optimum (a Σ with a zero eigenvalue, perturbed to an indefinite one).
//! - **factored** (several random terms, or AR(1)): T_k = chol(Σ_k/σ²_1),
//!   log δ_c = ½ log(σ²_c/σ²_1), atanh φ and one evaluation of the `ProfiledDeviance`:
//!   log|V| = log|L_Z|² + n log σ²_1 − Σ n_c log w_c (+ (N − series) log(1 − φ²)),
//!   X'V⁻¹X = L_X L_X'/σ²_1, r̂² = r²/σ²_1. It needs every Σ_k positive definite.
//!
//! # What is returned
//!
//! # How the Hessian is taken
//!
//! From central differences (two Richardson rounds) of the exact gradient: the profiled
//! deviance's `explicit_gradient` over ψ = (β, T_k, σ₁, log δ_c, atanh φ), carried to the raw
//! rows (or to the factors', `covariance_through_factors`) by J'g = g_ψ with J = ∂ϑ/∂ψ. Four
//! gradients per coordinate, where second differences of values cost dozens of evaluations per
//! pair of coordinates — the difference between a tenth of a second and seconds at millions of
//! rows or thousands of crossed levels. Only where that route cannot be evaluated around the point, with
//! one random term whose Σ is not positive definite there (a boundary fit), the direct path's
//! values are differenced twice (numDeriv's rule, `numeric_derivatives`).
//!
//! # What is returned
//!
//! **ML fits**: the inverse observed information, (−∂²ℓ/∂ϑ∂ϑ')⁻¹ over all rows ϑ at the
//! optimum.
//! The β block differs from lme4's `vcov` (the conditional σ²(X'V⁻¹X)⁻¹) by the β–variance
//! cross terms of the observed information, as in lavaan's or nlme's observed-information SEs.
//! At a boundary optimum (a singular Σ, as the 1-1-1 mediation fit) the gradient in the
//! covariance entries is not zero (the likelihood rises into indefinite Σ); the result is still
//! the curvature there, which is what R's numDeriv on the written-out likelihood gives.
//!
//! **REML fits**: the REML criterion does not contain β, so the ML computation at REML estimates
//! would mix two criteria. Instead: Cov(β) is lme4's `vcov`, σ²(X'V⁻¹X)⁻¹ at the REML estimates;
//! the variance block is the inverse of the Hessian of the REML log-likelihood
//! ℓ_R = −½[log|V| + log|X'V⁻¹X| + (n − p) log 2π + r̂²] in the raw variance parameters (the
//! information lmerTest uses for Satterthwaite's df, on the raw scale); β and the variance
//! parameters are uncorrelated (their expected information is block-diagonal, and the REML
//! criterion has no β to correlate with).
//!
//! The inverse goes through a symmetric eigen decomposition; an information that is not positive
//! definite (an optimum at a boundary where the likelihood still rises outside the parameter
//! space, or a parameter the data do not identify) is an error naming the worst direction.
//! `parameter_covariance_generalized` instead inverts over the positive eigenvalues only (a
//! Moore–Penrose inverse, as lmerTest does for its variance parameters) and says which
//! directions it dropped: at a singular fit the dropped directions point out of the parameter
//! space, so Monte Carlo draws do not move along them.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::design::Design;
use crate::model::Method;
use crate::numeric_derivatives::{hessian, try_jacobian_parallel};
use crate::parameters::{ParameterKind, ParameterTable};

use super::dense::semidefinite_cholesky;
use super::deviance::ProfiledDeviance;
use super::fit::Fit;

/// Where one row of the parameter table sits in the likelihood's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Beta(usize),
    /// (term, row, column) of Σ_k; off-diagonal entries fill both triangles.
    Covariance(usize, usize, usize),
    Residual(usize),
    /// AR(1)'s φ.
    Autocorrelation,
}

/// The parameters unpacked from a vector in table order.
struct Unpacked {
    beta: DVector<f64>,
    sigma: Vec<DMatrix<f64>>,
    residual: Vec<f64>,
    /// AR(1)'s φ (0 without AR(1)).
    phi: f64,
    /// Σ_k's lower-triangular factors L_k (Σ_k = L_k L_k') when the parameters were given
    /// through them (`unpack_factors`): the factored path then needs no Cholesky of Σ_k, which
    /// a semi-definite Σ_k (a boundary fit) does not have.
    factors: Option<Vec<DMatrix<f64>>>,
}

/// log|V|, the Cholesky factor of X'V⁻¹X, β̂ and the GLS quadratic form r̂² at one (Σ, σ²).
#[derive(Debug, Clone)]
struct Marginal {
    log_det_v: f64,
    lx: DMatrix<f64>,
    beta_hat: DVector<f64>,
    r2: f64,
}

/// The per-level statistics of the one random term, for the direct path.
struct Level {
    /// (class, Z'Z q×q, Z'[X y] q×m), column-major.
    blocks: Vec<(usize, Vec<f64>, Vec<f64>)>,
}

/// The direct path's statistics (no random term, or one): q of the term (0 without one) and
/// its levels.
struct Direct {
    q: usize,
    levels: Vec<Level>,
}

/// The coordinates a Hessian of the likelihood is taken in: the table's raw rows, or
/// `unpack_factors`' rows (each covariance row an entry of Σ_k's factor L_k).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Coordinates {
    Raw,
    Factors,
}

/// The marginal (ML) and restricted (REML) log-likelihoods of a design as functions of the raw
/// parameters, ordered as the rows of a `ParameterTable`.
pub struct RawLikelihood {
    slots: Vec<Slot>,
    /// The table's names of the rows, for messages.
    names: Vec<String>,
    p: usize,
    q: Vec<usize>,
    n_class: Vec<usize>,
    xy: Vec<Vec<f64>>,
    /// The table rows of the profiled deviance's varpar = (θ in its order, σ, log δ…, φ).
    varpar_rows: Vec<usize>,
    /// The table rows of β, in order.
    beta_rows: Vec<usize>,
    /// Evaluates the likelihood with several random terms (Σ_k positive definite), and gives
    /// its exact gradient with any number.
    deviance: Box<ProfiledDeviance>,
    /// With at most one random term, the likelihood without factoring Σ (defined at and around
    /// a singular Σ).
    direct: Option<Direct>,
}

/// Why the raw-scale likelihood does not cover `design`, if it does not.
fn supported(design: &Design) -> Result<(), String> {
    if design.latent.is_some() {
        return Err(
            "a random coefficient as a predictor: the joint likelihood is \
                    `estimate::fit_latent`'s, whose `LatentFit::covariance` is this matrix"
                .to_string(),
        );
    }
    if let Some(w) = &design.stats.within {
        // The table has no row for ρ and the direct path assumes a diagonal R.
        return Err(format!(
            "the joint covariance of the parameters with residuals correlated within `{}` \
             is not supported yet",
            w.unit
        ));
    }
    Ok(())
}

/// Each table row's place in the likelihood's parameters; fails unless the table has the
/// design's `p` fixed effects, `nclass` residual variances and `nphi` AR(1) correlations.
fn table_slots(
    table: &ParameterTable,
    p: usize,
    nclass: usize,
    nphi: usize,
) -> Result<Vec<Slot>, String> {
    let mut slots = Vec::with_capacity(table.len());
    let (mut nbeta, mut nresidual, mut nautocorrelation) = (0, 0, 0);
    for (index, row) in table.rows.iter().enumerate() {
        let slot = match (&row.kind, row.term) {
            (ParameterKind::Fixed { .. }, _) => {
                nbeta += 1;
                Slot::Beta(nbeta - 1)
            }
            (ParameterKind::Residual { .. }, _) => {
                nresidual += 1;
                Slot::Residual(nresidual - 1)
            }
            (ParameterKind::Autocorrelation { .. }, _) => {
                nautocorrelation += 1;
                Slot::Autocorrelation
            }
            (ParameterKind::Variance { .. } | ParameterKind::Covariance { .. }, Some(t)) => {
                Slot::Covariance(t.0, t.1, t.2)
            }
            _ => {
                return Err(format!(
                    "internal: parameter `{}` names no random term",
                    table.name(index)
                ))
            }
        };
        slots.push(slot);
    }
    if nbeta != p || nresidual != nclass || nautocorrelation != nphi {
        return Err(format!(
            "internal: the parameter table has {nbeta} fixed effects, {nresidual} residual \
             variances and {nautocorrelation} AR(1) correlations, the design {p}, {nclass} and \
             {nphi}"
        ));
    }
    Ok(slots)
}

/// Every free entry of every Σ_k exactly once: the lower triangle of a correlated term, the
/// diagonal of an uncorrelated one; and no row outside its term.
fn check_covariance_slots(design: &Design, q: &[usize], slots: &[Slot]) -> Result<(), String> {
    for (k, term) in design.random.iter().enumerate() {
        for j in 0..q[k] {
            for i in j..q[k] {
                let wanted = i == j || term.correlated;
                let found = slots
                    .iter()
                    .filter(|s| **s == Slot::Covariance(k, i, j))
                    .count();
                if found != usize::from(wanted) {
                    return Err(format!(
                        "internal: the parameter table has entry ({i}, {j}) of random term \
                         `{}` {found} times",
                        term.name
                    ));
                }
            }
        }
    }
    if slots
        .iter()
        .any(|s| matches!(*s, Slot::Covariance(k, i, j) if k >= q.len() || i >= q[k] || j > i))
    {
        return Err("internal: a parameter-table row is outside its random term".into());
    }
    Ok(())
}

impl Direct {
    /// The direct path's statistics of a design with at most one random term.
    fn new(design: &Design, q: &[usize]) -> Direct {
        let levels = design
            .stats
            .factors
            .first()
            .map(|f| {
                (0..f.nlevels)
                    .map(|j| Level {
                        blocks: f.blocks[f.level_start[j]..f.level_start[j + 1]]
                            .iter()
                            .map(|b| (b.class, b.zz.clone(), b.zxy.clone()))
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Direct {
            q: q.first().copied().unwrap_or(0),
            levels,
        }
    }
}

impl RawLikelihood {
    /// Lay the table's rows onto the design. Fails when the table does not describe this design.
    pub fn new(design: &Design, table: &ParameterTable) -> Result<Self, String> {
        supported(design)?;
        let stats = &design.stats;
        let p = stats.p;
        let q: Vec<usize> = stats.factors.iter().map(|f| f.q).collect();
        let nclass = stats.n.len();
        let nphi = usize::from(stats.ar1.is_some());
        let slots = table_slots(table, p, nclass, nphi)?;
        check_covariance_slots(design, &q, &slots)?;
        // The direct path assumes a diagonal R: with AR(1) the factored one serves every design.
        let direct = (stats.factors.len() <= 1 && nphi == 0).then(|| Direct::new(design, &q));
        let deviance = ProfiledDeviance::new(design, Method::Ml);
        let row_of = |slot: Slot| {
            slots
                .iter()
                .position(|s| *s == slot)
                .ok_or_else(|| format!("internal: no parameter-table row for {slot:?}"))
        };
        let varpar_rows = deviance
            .theta_entries()
            .into_iter()
            .map(|(k, r, c)| Slot::Covariance(k, r, c))
            .chain((0..nclass).map(Slot::Residual))
            .chain((nphi > 0).then_some(Slot::Autocorrelation))
            .map(row_of)
            .collect::<Result<Vec<usize>, String>>()?;
        let beta_rows = (0..p)
            .map(|b| row_of(Slot::Beta(b)))
            .collect::<Result<Vec<usize>, String>>()?;
        Ok(RawLikelihood {
            names: (0..table.len()).map(|i| table.name(i)).collect(),
            p,
            q,
            n_class: stats.n.clone(),
            xy: stats.xy.clone(),
            varpar_rows,
            beta_rows,
            slots,
            deviance: Box::new(deviance),
            direct,
        })
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether row `i` of the table is a fixed effect.
    pub fn is_fixed(&self, i: usize) -> bool {
        matches!(self.slots[i], Slot::Beta(_))
    }

    fn nobs(&self) -> f64 {
        self.n_class.iter().sum::<usize>() as f64
    }

    fn unpack(&self, params: &[f64]) -> Result<Unpacked, String> {
        if params.len() != self.slots.len() {
            return Err(format!(
                "internal: {} parameters given, {} expected",
                params.len(),
                self.slots.len()
            ));
        }
        let mut u = Unpacked {
            beta: DVector::zeros(self.p),
            sigma: self.q.iter().map(|&q| DMatrix::zeros(q, q)).collect(),
            residual: vec![0.0; self.n_class.len()],
            phi: 0.0,
            factors: None,
        };
        for (slot, &v) in self.slots.iter().zip(params) {
            match *slot {
                Slot::Beta(i) => u.beta[i] = v,
                Slot::Covariance(k, i, j) => {
                    u.sigma[k][(i, j)] = v;
                    u.sigma[k][(j, i)] = v;
                }
                Slot::Residual(c) => u.residual[c] = v,
                Slot::Autocorrelation => u.phi = v,
            }
        }
        if params.iter().any(|v| !v.is_finite()) {
            return Err("a parameter is not finite".into());
        }
        if u.phi.abs() >= 1.0 {
            return Err("the AR(1) correlation is not inside (−1, 1)".into());
        }
        if u.residual.iter().any(|&s| s <= 0.0) {
            return Err("a residual variance is not positive".into());
        }
        Ok(u)
    }

    fn marginal(&self, u: &Unpacked) -> Result<Marginal, String> {
        match &self.direct {
            Some(direct) => self.direct(direct.q, &direct.levels, u),
            None => self.factored(&self.deviance, u),
        }
    }

    fn direct(&self, q: usize, levels: &[Level], u: &Unpacked) -> Result<Marginal, String> {
        let m = self.p + 1;
        let inv: Vec<f64> = u.residual.iter().map(|s| 1.0 / s).collect();
        let mut s = DMatrix::zeros(m, m);
        for (c, xy) in self.xy.iter().enumerate() {
            s += DMatrix::from_column_slice(m, m, xy) * inv[c];
        }
        let mut log_det_v: f64 = self
            .n_class
            .iter()
            .zip(&u.residual)
            .map(|(n, s2)| *n as f64 * s2.ln())
            .sum();
        if let Some(sigma) = u.sigma.first() {
            for level in levels {
                let mut a = DMatrix::zeros(q, q);
                let mut b = DMatrix::zeros(q, m);
                for (c, zz, zxy) in &level.blocks {
                    a += DMatrix::from_column_slice(q, q, zz) * inv[*c];
                    b += DMatrix::from_column_slice(q, m, zxy) * inv[*c];
                }
                let eigen = SymmetricEigen::new(a);
                let root = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
                let h = &eigen.eigenvectors
                    * DMatrix::from_diagonal(&root)
                    * eigen.eigenvectors.transpose();
                let hs = &h * sigma;
                let mut n = &hs * &h;
                for i in 0..q {
                    n[(i, i)] += 1.0;
                }
                let n = symmetrise(n);
                let chol = n.cholesky().ok_or_else(|| {
                    "the marginal covariance V = ZΣZ' + R is not positive definite".to_string()
                })?;
                log_det_v += 2.0 * chol.l().diagonal().iter().map(|d| d.ln()).sum::<f64>();
                let sb = sigma * &b;
                let g = chol
                    .l()
                    .solve_lower_triangular(&(&h * &sb))
                    .ok_or("internal: a singular triangular factor")?;
                s -= b.transpose() * &sb - g.transpose() * g;
            }
        }
        let s = symmetrise(s);
        let chol = s
            .cholesky()
            .ok_or("[X y]'V⁻¹[X y] is not positive definite: X is rank deficient")?;
        let l = chol.l();
        let p = self.p;
        let lx = l.view((0, 0), (p, p)).into_owned();
        let c = DVector::from_iterator(p, (0..p).map(|j| l[(p, j)]));
        let beta_hat = lx
            .transpose()
            .solve_upper_triangular(&c)
            .ok_or("X'V⁻¹X is singular")?;
        Ok(Marginal {
            log_det_v,
            lx,
            beta_hat,
            r2: l[(p, p)] * l[(p, p)],
        })
    }

    fn factored(&self, deviance: &ProfiledDeviance, u: &Unpacked) -> Result<Marginal, String> {
        let s2 = u.residual[0];
        // x = varpar without σ: (θ, log δ…).
        let psi = self.psi_of(u)?;
        let sigma_at = deviance.ntheta();
        let x: Vec<f64> = self
            .varpar_rows
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != sigma_at)
            .map(|(_, &row)| psi[row])
            .collect();
        let e = deviance
            .evaluate(&x)
            .map_err(|e| format!("the likelihood cannot be evaluated: {e:?}"))?;
        Ok(Marginal {
            log_det_v: e.ld_l2 + self.nobs() * s2.ln() + e.weight_term,
            lx: e.lx / s2.sqrt(),
            beta_hat: e.beta,
            r2: e.pwrss / s2,
        })
    }

    /// The parameters given through the random terms' factors: `phi` is laid out as the
    /// table's rows, with each covariance row (k, i, j) holding L_k[i, j] instead of Σ_k[i, j]
    /// (for an uncorrelated term, the diagonal's square roots). Every such `phi` is a valid Σ.
    fn unpack_factors(&self, phi: &[f64]) -> Result<Unpacked, String> {
        let mut factors: Vec<DMatrix<f64>> = self.q.iter().map(|&q| DMatrix::zeros(q, q)).collect();
        let mut raw = phi.to_vec();
        for (slot, &v) in self.slots.iter().zip(phi) {
            if let Slot::Covariance(k, i, j) = *slot {
                factors[k][(i, j)] = v;
            }
        }
        for (index, slot) in self.slots.iter().enumerate() {
            if let Slot::Covariance(k, i, j) = *slot {
                raw[index] = factors[k].row(i).dot(&factors[k].row(j));
            }
        }
        let mut u = self.unpack(&raw)?;
        u.factors = Some(factors);
        Ok(u)
    }

    /// ∂ϑ/∂φ: the raw parameters (table rows) against the factor parameters of
    /// `unpack_factors` at `phi`; the identity on fixed effects and residual variances.
    fn factor_jacobian(&self, phi: &[f64]) -> DMatrix<f64> {
        let n = self.slots.len();
        let mut factors: Vec<DMatrix<f64>> = self.q.iter().map(|&q| DMatrix::zeros(q, q)).collect();
        for (slot, &v) in self.slots.iter().zip(phi) {
            if let Slot::Covariance(k, i, j) = *slot {
                factors[k][(i, j)] = v;
            }
        }
        DMatrix::from_fn(n, n, |row, col| match (self.slots[row], self.slots[col]) {
            // Σ_ij = Σ_m L_im L_jm, so ∂Σ_ij/∂L_ab = [i = a] L_jb + [j = a] L_ib.
            (Slot::Covariance(k, i, j), Slot::Covariance(kk, a, b)) if k == kk => {
                let l = &factors[k];
                f64::from(u8::from(i == a)) * l[(j, b)] + f64::from(u8::from(j == a)) * l[(i, b)]
            }
            (Slot::Covariance(..), _) | (_, Slot::Covariance(..)) => 0.0,
            _ => f64::from(u8::from(row == col)),
        })
    }

    /// −2 log-likelihood (ML) at `params`, a vector over the table's rows.
    pub fn ml_deviance(&self, params: &[f64]) -> Result<f64, String> {
        self.ml_of(&self.unpack(params)?)
    }

    fn ml_of(&self, u: &Unpacked) -> Result<f64, String> {
        let m = self.marginal(u)?;
        let d = m.lx.transpose() * (&u.beta - &m.beta_hat);
        Ok(m.log_det_v + self.nobs() * (2.0 * std::f64::consts::PI).ln() + m.r2 + d.norm_squared())
    }

    /// The REML criterion (−2 restricted log-likelihood, lme4's scale) at `params`; the rows of
    /// fixed effects are ignored.
    pub fn reml_criterion(&self, params: &[f64]) -> Result<f64, String> {
        self.reml_of(&self.unpack(params)?)
    }

    fn reml_of(&self, u: &Unpacked) -> Result<f64, String> {
        let m = self.marginal(u)?;
        let ld_x = 2.0 * m.lx.diagonal().iter().map(|d| d.ln()).sum::<f64>();
        Ok(m.log_det_v
            + ld_x
            + (self.nobs() - self.p as f64) * (2.0 * std::f64::consts::PI).ln()
            + m.r2)
    }
}

impl RawLikelihood {
    /// The parameters at `point`, given in `coordinates`.
    fn unpack_in(&self, point: &[f64], coordinates: Coordinates) -> Result<Unpacked, String> {
        match coordinates {
            Coordinates::Raw => self.unpack(point),
            Coordinates::Factors => self.unpack_factors(point),
        }
    }

    /// ψ, the profiled deviance's own parameters, laid out as the table's rows: β;
    /// T_k[i, j] = L_k[i, j]/σ₁ for a covariance row (k, i, j) (L_k Σ_k's Cholesky factor, or
    /// the factor `u` was given through); σ₁ for the first residual class and
    /// log δ_c = ½ log(σ²_c/σ²₁) for the others; atanh φ for AR(1)'s φ. Err when a Σ_k given raw is not positive
    /// definite (a correlated term) or has a negative variance.
    fn psi_of(&self, u: &Unpacked) -> Result<Vec<f64>, String> {
        let sigma = u.residual[0].sqrt();
        let factors: Vec<DMatrix<f64>> = match &u.factors {
            Some(f) => f.clone(),
            None => u
                .sigma
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let correlated = self
                        .slots
                        .iter()
                        .any(|x| matches!(*x, Slot::Covariance(kk, i, j) if kk == k && i != j));
                    if correlated {
                        s.clone().cholesky().map(|c| c.l()).ok_or_else(|| {
                            format!(
                                "random term {}'s covariance matrix is not positive definite",
                                k + 1
                            )
                        })
                    } else if s.diagonal().iter().any(|v| *v < 0.0) {
                        Err(format!("random term {}'s variance is negative", k + 1))
                    } else {
                        Ok(DMatrix::from_diagonal(&s.diagonal().map(f64::sqrt)))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(self
            .slots
            .iter()
            .map(|slot| match *slot {
                Slot::Beta(i) => u.beta[i],
                Slot::Covariance(k, i, j) => factors[k][(i, j)] / sigma,
                Slot::Residual(0) => sigma,
                Slot::Residual(c) => 0.5 * (u.residual[c] / u.residual[0]).ln(),
                Slot::Autocorrelation => u.phi.atanh(),
            })
            .collect())
    }

    /// ∂(coordinates)/∂ψ at ψ (`psi_of`), both laid out as the table's rows. Raw:
    /// Σ_k = σ²T_kT_k', σ²_c = σ²e^{2 log δ_c}, φ = tanh(atanh φ); factors: L_k = σT_k.
    fn psi_jacobian(&self, psi: &[f64], coordinates: Coordinates) -> DMatrix<f64> {
        let n = self.slots.len();
        let sigma_at = self.varpar_rows[self.deviance.ntheta()];
        let sigma = psi[sigma_at];
        let mut t: Vec<DMatrix<f64>> = self.q.iter().map(|&q| DMatrix::zeros(q, q)).collect();
        for (slot, &v) in self.slots.iter().zip(psi) {
            if let Slot::Covariance(k, i, j) = *slot {
                t[k][(i, j)] = v;
            }
        }
        let mut jac = DMatrix::zeros(n, n);
        for (row, slot) in self.slots.iter().enumerate() {
            match *slot {
                Slot::Beta(_) => jac[(row, row)] = 1.0,
                Slot::Autocorrelation => jac[(row, row)] = 1.0 - psi[row].tanh().powi(2),
                Slot::Residual(c) => {
                    let ratio = if c == 0 { 1.0 } else { (2.0 * psi[row]).exp() };
                    jac[(row, sigma_at)] = 2.0 * sigma * ratio;
                    if c > 0 {
                        jac[(row, row)] = 2.0 * sigma * sigma * ratio;
                    }
                }
                Slot::Covariance(k, i, j) => match coordinates {
                    Coordinates::Factors => {
                        jac[(row, row)] = sigma;
                        jac[(row, sigma_at)] = t[k][(i, j)];
                    }
                    Coordinates::Raw => {
                        let tk = &t[k];
                        jac[(row, sigma_at)] = 2.0 * sigma * tk.row(i).dot(&tk.row(j));
                        for (col, other) in self.slots.iter().enumerate() {
                            // Σ_ij = σ² Σ_m T_im T_jm.
                            if let Slot::Covariance(kk, a, b) = *other {
                                if kk == k {
                                    let d = f64::from(u8::from(i == a)) * tk[(j, b)]
                                        + f64::from(u8::from(j == a)) * tk[(i, b)];
                                    jac[(row, col)] = sigma * sigma * d;
                                }
                            }
                        }
                    }
                },
            }
        }
        jac
    }

    /// The exact gradient of −2ℓ (ML) or of the REML criterion (zero in β) at `point`, in
    /// `coordinates`: the profiled deviance's `explicit_gradient` in ψ, carried over by
    /// solving J'g = g_ψ with J = ∂(coordinates)/∂ψ (singular only where a raw Σ_k is, which
    /// `psi_of` already refuses).
    fn gradient(
        &self,
        point: &[f64],
        method: Method,
        coordinates: Coordinates,
    ) -> Result<Vec<f64>, String> {
        let u = self.unpack_in(point, coordinates)?;
        let psi = self.psi_of(&u)?;
        let varpar: Vec<f64> = self.varpar_rows.iter().map(|&i| psi[i]).collect();
        let beta: Vec<f64> = u.beta.iter().copied().collect();
        let restricted = method == Method::Reml;
        let (_, g) = self
            .deviance
            .explicit_gradient((!restricted).then_some(&beta[..]), &varpar)
            .map_err(|e| format!("the likelihood cannot be evaluated: {e:?}"))?;
        let mut g_psi = DVector::zeros(psi.len());
        let (g_beta, g_varpar) = g.split_at(if restricted { 0 } else { self.p });
        for (&i, v) in self.beta_rows.iter().zip(g_beta) {
            g_psi[i] = *v;
        }
        for (&i, v) in self.varpar_rows.iter().zip(g_varpar) {
            g_psi[i] = *v;
        }
        let jac = self.psi_jacobian(&psi, coordinates);
        let g = jac
            .transpose()
            .lu()
            .solve(&g_psi)
            .ok_or("the likelihood's parametrisation is singular here")?;
        if g.iter().any(|v| !v.is_finite()) {
            return Err("the gradient of the log-likelihood is not finite".into());
        }
        Ok(g.iter().copied().collect())
    }

    /// The Hessian of −2ℓ (ML) or of the REML criterion at `at` over its coordinates `free`
    /// (the others held), in `coordinates`. Central differences of the exact gradient (two
    /// Richardson rounds: 4 gradients per coordinate, where second differences of values cost
    /// dozens of evaluations per pair of coordinates); with one random term whose Σ is not
    /// positive definite around `at` (a boundary fit), second differences of the direct
    /// path's values, which stay defined there.
    fn criterion_hessian_in(
        &self,
        at: &[f64],
        free: &[usize],
        method: Method,
        coordinates: Coordinates,
    ) -> Result<DMatrix<f64>, String> {
        let by_gradient = self.gradient_hessian(at, free, method, coordinates);
        if by_gradient.is_ok() || self.direct.is_none() {
            return by_gradient;
        }
        let value = |x: &[f64]| -> Result<f64, String> {
            let u = self.unpack_in(x, coordinates)?;
            match method {
                Method::Ml => self.ml_of(&u),
                Method::Reml => self.reml_of(&u),
            }
        };
        criterion_hessian(at, free, &mut |x| value(x))
    }

    fn gradient_hessian(
        &self,
        at: &[f64],
        free: &[usize],
        method: Method,
        coordinates: Coordinates,
    ) -> Result<DMatrix<f64>, String> {
        self.gradient(at, method, coordinates)
            .map_err(|e| format!("at the estimates: {e}"))?;
        let x0: Vec<f64> = free.iter().map(|&i| at[i]).collect();
        let jac = try_jacobian_parallel(
            &|x: &[f64]| {
                let mut point = at.to_vec();
                for (&i, &v) in free.iter().zip(x) {
                    point[i] = v;
                }
                let g = self.gradient(&point, method, coordinates)?;
                Ok(DVector::from_iterator(
                    free.len(),
                    free.iter().map(|&i| g[i]),
                ))
            },
            &x0,
            GRADIENT_ROUNDS,
        )
        .map_err(|e: String| format!("near the estimates: {e}"))?;
        if jac.iter().any(|v| !v.is_finite()) {
            return Err("the Hessian of the log-likelihood is not finite".into());
        }
        Ok(symmetrise(jac))
    }
}

/// Richardson rounds for the Hessian from gradient differences: two give an O(h⁴) error at
/// numDeriv's relative step 1e-4, far below what the covariance is reported to.
const GRADIENT_ROUNDS: usize = 2;

fn symmetrise(m: DMatrix<f64>) -> DMatrix<f64> {
    (&m + m.transpose()) * 0.5
}

/// The asymptotic covariance of all parameters, indexed by `table`'s rows (see the module doc
/// for what ML and REML fits give). Err when the likelihood cannot be evaluated around the
/// estimates or the information is not positive definite.
pub fn parameter_covariance(
    design: &Design,
    fit: &Fit,
    table: &ParameterTable,
) -> Result<DMatrix<f64>, String> {
    RawLikelihood::new(design, table)?.covariance_at(&table.estimates(), fit.method)
}

/// As `parameter_covariance`, but where the information is not positive definite (typically a
/// singular fit), the generalized inverse over its positive eigenvalues, with a warning naming
/// the dropped directions.
pub fn parameter_covariance_generalized(
    design: &Design,
    fit: &Fit,
    table: &ParameterTable,
) -> Result<(DMatrix<f64>, Option<String>), String> {
    let likelihood = RawLikelihood::new(design, table)?;
    let at = table.estimates();
    match likelihood.covariance_at(&at, fit.method) {
        Ok(cov) => Ok((cov, None)),
        Err(_) => {
            let note = std::cell::RefCell::new(None);
            match likelihood.covariance_with(&at, fit.method, Some(&note)) {
                Ok(cov) => Ok((cov, note.into_inner())),
                Err(why) => {
                    let cov = likelihood.covariance_through_factors(&at, fit.method)?;
                    Ok((
                        cov,
                        Some(format!(
                            "the information matrix of the raw variance parameters cannot be formed at \
                             this boundary fit ({why}); the covariance of all parameters comes \
                             from the information in the random terms' Cholesky factors \
                             (Σ = LL'), inverted over its positive eigenvalues and carried to Σ \
                             by the delta method: a variance at zero gets no spread"
                        )),
                    ))
                }
            }
        }
    }
}

impl RawLikelihood {
    /// The observed information −∂²ℓ/∂ϑ∂ϑ' of the ML log-likelihood at `at`, over all rows
    /// (half the numerical Hessian of −2ℓ).
    pub fn ml_information(&self, at: &[f64]) -> Result<DMatrix<f64>, String> {
        let all: Vec<usize> = (0..at.len()).collect();
        Ok(self.criterion_hessian_in(at, &all, Method::Ml, Coordinates::Raw)? * 0.5)
    }

    /// The asymptotic covariance of all parameters at `at` (a vector over the table's rows) for
    /// estimates by `method`: at the estimates, `parameter_covariance`; elsewhere, the same
    /// recipe (for comparing with a reference's numbers at the reference's estimates).
    pub fn covariance_at(&self, at: &[f64], method: Method) -> Result<DMatrix<f64>, String> {
        self.covariance_with(at, method, None)
    }

    /// `covariance_at`; with `generalized`, a non-positive-definite information is inverted over
    /// its positive eigenvalues and the note says so.
    fn covariance_with(
        &self,
        at: &[f64],
        method: Method,
        generalized: Option<&std::cell::RefCell<Option<String>>>,
    ) -> Result<DMatrix<f64>, String> {
        let invert = |h: &DMatrix<f64>, rows: &[usize]| match generalized {
            None => inverse_information(h, &self.names, rows),
            Some(note) => inverse_information(h, &self.names, rows).or_else(|why| {
                *note.borrow_mut() = Some(format!(
                    "{why}; the covariance of the parameters is the generalized inverse over the \
                     positive eigenvalues"
                ));
                Ok(generalized_inverse(h))
            }),
        };
        let n = at.len();
        let all: Vec<usize> = (0..n).collect();
        match method {
            Method::Ml => {
                let h = self.ml_information(at)? * 2.0;
                invert(&h, &all)
            }
            Method::Reml => {
                let variance: Vec<usize> = (0..n).filter(|&i| !self.is_fixed(i)).collect();
                let h = self.criterion_hessian_in(at, &variance, method, Coordinates::Raw)?;
                let cov_v = invert(&h, &variance)?;
                self.reml_covariance(&self.unpack(at)?, &cov_v)
            }
        }
    }

    /// A REML fit's covariance of all rows: lme4's `vcov`, (X'V⁻¹X)⁻¹ = (LL')⁻¹ at the variance
    /// parameters of `u`, for β, and `cov_v` for the variance rows (in table order); β and the
    /// variance parameters uncorrelated.
    fn reml_covariance(&self, u: &Unpacked, cov_v: &DMatrix<f64>) -> Result<DMatrix<f64>, String> {
        let n = self.slots.len();
        let m = self.marginal(u)?;
        let p = self.p;
        let li =
            m.lx.solve_lower_triangular(&DMatrix::identity(p, p))
                .ok_or("X'V⁻¹X is singular")?;
        let cov_beta = li.tr_mul(&li);
        let mut cov = DMatrix::zeros(n, n);
        let (fixed, variance): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| self.is_fixed(i));
        // Fixed rows are β in order (`new` checks one per column of X).
        for (a, &i) in fixed.iter().enumerate() {
            for (b, &j) in fixed.iter().enumerate() {
                cov[(i, j)] = cov_beta[(a, b)];
            }
        }
        for (a, &i) in variance.iter().enumerate() {
            for (b, &j) in variance.iter().enumerate() {
                cov[(i, j)] = cov_v[(a, b)];
            }
        }
        Ok(cov)
    }
}

impl RawLikelihood {
    /// The asymptotic covariance at `at` (raw, table rows) through the random terms' factors:
    /// the Hessian over φ = (β, L_k, σ²_c), where every point is a valid Σ, so it exists also
    /// at a boundary fit whose semi-definite Σ_k the raw parametrisation cannot leave; inverted
    /// over its positive eigenvalues (2H⁺) and carried to the raw rows by ϑ = ϑ(φ):
    /// Cov(ϑ) = J Cov(φ) J'. At an interior optimum this is the raw-scale result (the gradient
    /// vanishes, so H_φ = J'H_ϑJ); at a boundary, J has no component along a factor column at
    /// zero, so a variance at zero gets no spread. REML: β's block is lme4's `vcov`, as in
    /// `covariance_at`.
    pub fn covariance_through_factors(
        &self,
        at: &[f64],
        method: Method,
    ) -> Result<DMatrix<f64>, String> {
        let u = self.unpack(at)?;
        let mut phi = at.to_vec();
        let factors: Vec<DMatrix<f64>> = u
            .sigma
            .iter()
            .map(|sigma| {
                // A pivot zero up to rounding is a rank-deficient Σ at a boundary fit.
                let scale = sigma.diagonal().iter().fold(0.0f64, |a, v| a.max(v.abs()));
                semidefinite_cholesky(sigma, |_, pivot| pivot <= 1e-12 * scale)
            })
            .collect();
        for (index, slot) in self.slots.iter().enumerate() {
            if let Slot::Covariance(k, i, j) = *slot {
                phi[index] = factors[k][(i, j)];
            }
        }
        let n = at.len();
        let jacobian = self.factor_jacobian(&phi);
        match method {
            Method::Ml => {
                let all: Vec<usize> = (0..n).collect();
                let h = self.criterion_hessian_in(&phi, &all, method, Coordinates::Factors)?;
                let cov = generalized_inverse(&h);
                Ok(symmetrise(&jacobian * cov * jacobian.transpose()))
            }
            Method::Reml => {
                let variance: Vec<usize> = (0..n).filter(|&i| !self.is_fixed(i)).collect();
                let h = self.criterion_hessian_in(&phi, &variance, method, Coordinates::Factors)?;
                let cov_phi = generalized_inverse(&h);
                let j = DMatrix::from_fn(variance.len(), variance.len(), |a, b| {
                    jacobian[(variance[a], variance[b])]
                });
                let cov_v = symmetrise(&j * cov_phi * j.transpose());
                self.reml_covariance(&self.unpack_factors(&phi)?, &cov_v)
            }
        }
    }
}

/// The Hessian of a −2 log-likelihood in the coordinates `free` of `at` (the others held).
fn criterion_hessian(
    at: &[f64],
    free: &[usize],
    criterion: &mut dyn FnMut(&[f64]) -> Result<f64, String>,
) -> Result<DMatrix<f64>, String> {
    let mut point = at.to_vec();
    criterion(&point).map_err(|e| format!("at the estimates: {e}"))?;
    let mut failure: Option<String> = None;
    let x0: Vec<f64> = free.iter().map(|&i| at[i]).collect();
    let h = hessian(
        &mut |x: &[f64]| {
            for (&i, &v) in free.iter().zip(x) {
                point[i] = v;
            }
            match criterion(&point) {
                Ok(v) => v,
                Err(e) => {
                    failure.get_or_insert(e);
                    f64::NAN
                }
            }
        },
        &x0,
    );
    if let Some(e) = failure {
        return Err(format!("near the estimates: {e}"));
    }
    if h.iter().any(|v| !v.is_finite()) {
        return Err("the Hessian of the log-likelihood is not finite".into());
    }
    Ok(h)
}

/// 2H⁻¹ for the Hessian H of −2ℓ in the coordinates `rows` of the table (the inverse of the
/// information H/2), through a symmetric eigen decomposition; Err when H is not positive
/// definite, naming the rows along its least-curved direction.
fn inverse_information(
    h: &DMatrix<f64>,
    names: &[String],
    rows: &[usize],
) -> Result<DMatrix<f64>, String> {
    let eigen = SymmetricEigen::new(symmetrise(h.clone()));
    let largest = eigen
        .eigenvalues
        .iter()
        .fold(0.0f64, |a, &b| a.max(b.abs()));
    let threshold = largest * f64::EPSILON * h.nrows() as f64;
    if let Some((k, &value)) = eigen
        .eigenvalues
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .filter(|(_, &v)| v <= threshold)
    {
        let v = eigen.eigenvectors.column(k);
        let mut involved: Vec<(f64, usize)> = (0..rows.len())
            .map(|a| (v[a].abs(), a))
            .filter(|(w, _)| *w > 0.1)
            .collect();
        involved.sort_by(|a, b| b.0.total_cmp(&a.0));
        let names: Vec<String> = involved
            .iter()
            .map(|&(_, a)| format!("`{}`", names[rows[a]]))
            .collect();
        return Err(format!(
            "the information matrix is not positive definite (eigenvalue {value:.3e}): the \
             log-likelihood is not curved downwards along {}; the estimates may sit on a \
             boundary or not be identified",
            names.join(", ")
        ));
    }
    let inv = eigen.eigenvalues.map(|l| 2.0 / l);
    Ok(&eigen.eigenvectors * DMatrix::from_diagonal(&inv) * eigen.eigenvectors.transpose())
}

/// 2H⁺ over the eigenvalues of H above a relative tolerance.
pub(crate) fn generalized_inverse(h: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new(symmetrise(h.clone()));
    let largest = eigen
        .eigenvalues
        .iter()
        .fold(0.0f64, |a, &b| a.max(b.abs()));
    let threshold = largest * 1e-10;
    let inv = eigen
        .eigenvalues
        .map(|l| if l > threshold { 2.0 / l } else { 0.0 });
    &eigen.eigenvectors * DMatrix::from_diagonal(&inv) * eigen.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p{i}")).collect()
    }

    #[test]
    fn generalized_inverse_drops_the_negative_direction() {
        // H = diag(4, -2): the covariance keeps 2/4 along the first axis and nothing along the
        // second.
        let h = DMatrix::from_row_slice(2, 2, &[4.0, 0.0, 0.0, -2.0]);
        assert!(inverse_information(&h, &names(2), &[0, 1]).is_err());
        let cov = generalized_inverse(&h);
        let want = DMatrix::from_row_slice(2, 2, &[0.5, 0.0, 0.0, 0.0]);
        assert!((cov - want).abs().max() < 1e-14);
    }

    #[test]
    fn inverse_of_a_positive_definite_hessian() {
        // H of −2ℓ = 2·information; the covariance is information⁻¹ = 2H⁻¹.
        let h = DMatrix::from_row_slice(2, 2, &[4.0, 1.0, 1.0, 3.0]);
        let cov = inverse_information(&h, &names(2), &[0, 1]).unwrap();
        let want = h.clone().try_inverse().unwrap() * 2.0;
        assert!((cov - want).abs().max() < 1e-14);
    }

    #[test]
    fn indefinite_hessian_names_the_direction() {
        // Curved upwards along p1 and p2 together, downwards along their difference.
        let h = DMatrix::from_row_slice(3, 3, &[5.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 2.0, 1.0]);
        let err = inverse_information(&h, &names(4), &[0, 2, 3]).unwrap_err();
        assert!(err.contains("not positive definite"), "{err}");
        assert!(err.contains("`p2`") && err.contains("`p3`"), "{err}");
        assert!(!err.contains("`p0`"), "{err}");
        let singular = DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, 1.0]);
        assert!(inverse_information(&singular, &names(2), &[0, 1]).is_err());
    }
}
