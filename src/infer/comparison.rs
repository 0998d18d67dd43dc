//! Likelihood-ratio comparison of fitted models, as lme4's `anova(m1, m2, ...)`: the models
//! ordered by their number of parameters, and per row after the first χ² = 2·(ℓ₁ − ℓ₀) (never
//! below 0), Df = the difference of npar, p = P(χ²_Df > χ²) (none when Df = 0); and, where the
//! larger model only adds random-effect variances on the boundary, the χ̄² mixture p-value
//! (`boundary_case`).
//!
//! Owns those statistics and the decision of which pairs get a mixture p-value. It must not fit
//! (the pipeline hands it fits, refitted by ML where lme4 would) and must not decide whether the
//! models may be compared (same rows, outcomes, families: the pipeline's refusals).

use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::model::{EquationSpec, Family, ModelSpec, RandomTermSpec};

/// What a comparison reads of one fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Likelihood {
    pub loglik: f64,
    /// Free parameters (lme4's `attr(logLik, "df")`).
    pub npar: usize,
    pub aic: f64,
    pub bic: f64,
}

/// The number of parameters behind an AIC: AIC = −2ℓ + 2k, so k = (AIC + 2ℓ)/2, which every fit
/// computes exactly that way (`None` when that is not close to a whole number).
pub fn parameters_of(aic: f64, loglik: f64) -> Option<usize> {
    let k = (aic + 2.0 * loglik) / 2.0;
    let rounded = k.round();
    let tolerance = 1e-6 * (1.0 + aic.abs());
    (k.is_finite() && rounded >= 0.0 && (k - rounded).abs() < tolerance).then_some(rounded as usize)
}

/// One row of the comparison, in lme4's order (by npar, ties in the order given).
#[derive(Debug, Clone, PartialEq)]
pub struct ComparedRow {
    /// Index of the model in the order given.
    pub model: usize,
    pub npar: usize,
    pub aic: f64,
    pub bic: f64,
    pub loglik: f64,
    /// −2ℓ.
    pub deviance: f64,
    /// Against the row before; `None` on the first row.
    pub chisq: Option<f64>,
    pub df: Option<i64>,
    /// `None` on the first row and where Df = 0 (R's NA).
    pub p: Option<f64>,
    /// The χ̄² mixture p-value, only where `boundary_case` applies to this row and the one
    /// before it.
    pub p_mixture: Option<f64>,
    /// The mixture's components (q, q + 1), with `p_mixture`.
    pub mixture: Option<(usize, usize)>,
}

/// The table of `anova(m1, m2, ...)`. `specs` are the models as fitted (for the boundary cases),
/// in the same order as `fits`.
pub fn likelihood_ratio_table(fits: &[Likelihood], specs: &[&ModelSpec]) -> Vec<ComparedRow> {
    let mut order: Vec<usize> = (0..fits.len()).collect();
    // A stable sort, as R's order(): models with the same npar keep the order given.
    order.sort_by_key(|&i| fits[i].npar);
    let mut rows: Vec<ComparedRow> = Vec::with_capacity(fits.len());
    for (k, &i) in order.iter().enumerate() {
        let fit = &fits[i];
        let mut row = ComparedRow {
            model: i,
            npar: fit.npar,
            aic: fit.aic,
            bic: fit.bic,
            loglik: fit.loglik,
            deviance: -2.0 * fit.loglik,
            chisq: None,
            df: None,
            p: None,
            p_mixture: None,
            mixture: None,
        };
        if k > 0 {
            let before = order[k - 1];
            let chisq = (2.0 * (fit.loglik - fits[before].loglik)).max(0.0);
            let df = fit.npar as i64 - fits[before].npar as i64;
            row.chisq = Some(chisq);
            row.df = Some(df);
            row.p = (df > 0).then(|| chi_square_upper(chisq, df as usize));
            if let (Some(small), Some(large)) = (specs.get(before), specs.get(i)) {
                if let Some(q) = boundary_case(small, large).filter(|&q| (q + 1) as i64 == df) {
                    row.p_mixture = Some(mixture_p(chisq, q));
                    row.mixture = Some((q, q + 1));
                }
            }
        }
        rows.push(row);
    }
    rows
}

/// P(χ²_df > x); χ²₀ is a point mass at 0.
pub fn chi_square_upper(x: f64, df: usize) -> f64 {
    if df == 0 {
        return if x > 0.0 { 0.0 } else { 1.0 };
    }
    match ChiSquared::new(df as f64) {
        Ok(d) => d.sf(x),
        Err(_) => f64::NAN,
    }
}

/// The 50:50 mixture 0.5·P(χ²_q > x) + 0.5·P(χ²_{q+1} > x) (Self & Liang 1987; Stram & Lee
/// 1994).
pub fn mixture_p(x: f64, q: usize) -> f64 {
    0.5 * chi_square_upper(x, q) + 0.5 * chi_square_upper(x, q + 1)
}

/// The boundary cases a mixture p-value is given for, with their q: the larger model is the
/// smaller one (same equations, outcomes, families, fixed parts and residual structures) with
/// exactly one random effect added, either
/// - to a correlated term of q effects (same grouping), with its variance and its q covariances
///   (q + 1 parameters): under H₀ the added variance is on the boundary and the statistic is
///   0.5·χ²_q + 0.5·χ²_{q+1} (Stram & Lee 1994; a random slope added to a random intercept is
///   q = 1); or
/// - as a new term of one effect (a new grouping factor, or an uncorrelated `||` effect): one
///   variance, q = 0, 0.5·χ²₀ + 0.5·χ²₁ (Self & Liang 1987).
///
/// Anything else (several effects added, fixed parts that differ, a covariance alone) is `None`:
/// the naive p-value stands alone. The caller also checks that the npar difference is q + 1.
pub fn boundary_case(small: &ModelSpec, large: &ModelSpec) -> Option<usize> {
    let same_equations = small.equations.len() == large.equations.len()
        && (small.equations.iter().zip(&large.equations)).all(|(a, b)| same_equation(a, b));
    let residual = |m: &ModelSpec| -> Vec<_> {
        (m.residual.iter())
            .map(|r| {
                let within = (&r.correlated_within, &r.ar1_within);
                (r.equation, r.by.clone(), within.0.clone(), within.1.clone())
            })
            .collect()
    };
    if !same_equations || residual(small) != residual(large) {
        return None;
    }
    let mut rest: Vec<Block> = large.random.iter().map(Block::of).collect();
    let mut changed: Vec<Block> = Vec::new();
    for term in small.random.iter().map(Block::of) {
        match rest.iter().position(|b| *b == term) {
            Some(k) => {
                rest.remove(k);
            }
            None => changed.push(term),
        }
    }
    match (changed.as_slice(), rest.as_slice()) {
        // A new term of one effect.
        ([], [added]) if added.effects.len() == 1 => Some(0),
        // One term grown by one effect, correlated with the others.
        ([before], [after]) => {
            let grown = after.name == before.name
                && after.effects.len() == before.effects.len() + 1
                && before.effects.iter().all(|e| after.effects.contains(e))
                && after.correlated
                && (before.correlated || before.effects.len() == 1);
            grown.then_some(before.effects.len())
        }
        _ => None,
    }
}

/// A random term as a comparison sees it: its grouping, its effects (equation and R's name) and
/// whether they are correlated.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    name: String,
    effects: Vec<(usize, String)>,
    correlated: bool,
}

impl Block {
    fn of(term: &RandomTermSpec) -> Block {
        let mut effects: Vec<(usize, String)> = (term.effects.iter())
            .map(|e| (e.equation, e.name.clone()))
            .collect();
        effects.sort();
        Block {
            name: term.name.clone(),
            correlated: term.correlated && effects.len() > 1,
            effects,
        }
    }
}

/// Two equations with the same outcome, family and fixed part (terms and how each coefficient
/// is estimated), wherever they are written.
fn same_equation(a: &EquationSpec, b: &EquationSpec) -> bool {
    let terms = |e: &EquationSpec| -> Vec<_> {
        (e.terms.iter())
            .map(|t| (t.name.clone(), t.coefficient.clone()))
            .collect()
    };
    a.outcome == b.outcome
        && same_family(&a.family, &b.family)
        && a.intercept == b.intercept
        && terms(a) == terms(b)
}

/// The same family, link, trials and offset columns, wherever the `family` statements are.
pub fn same_family(a: &Family, b: &Family) -> bool {
    (a.kind, a.link, &a.trials, &a.offset) == (b.kind, b.link, &b.trials, &b.offset)
}

/// Whether two models have the same fixed part (every equation's terms, in order): with REML
/// fits kept (`refit = false`), only then are their criteria comparable.
pub fn same_fixed_parts(a: &ModelSpec, b: &ModelSpec) -> bool {
    a.equations.len() == b.equations.len()
        && (a.equations.iter().zip(&b.equations)).all(|(x, y)| same_equation(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixture_of_one_and_two_df() {
        // R: 0.5*pchisq(42.1392985420164,1,lower=FALSE)+0.5*pchisq(42.1392985420164,2,lower=FALSE)
        let p = mixture_p(42.1392985420164, 1);
        assert!((p / 3.96119530795352e-10 - 1.0).abs() < 1e-8, "{p}");
        // q = 0: half the χ²₁ tail.
        assert!((mixture_p(2.0, 0) - 0.5 * chi_square_upper(2.0, 1)).abs() < 1e-15);
    }

    #[test]
    fn parameters_from_aic() {
        assert_eq!(parameters_of(1802.07864300523, -897.039321502613), Some(4));
        assert_eq!(parameters_of(1802.5, -897.0), None);
    }
}
