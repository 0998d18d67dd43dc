//! lme4's identifiability checks of the random part, before any optimization (lmerControl's
//! `check.nlev.gtr.1 = "stop"` and `check.nobs.vs.nRE = "stop"`, as `checkNlevels` and
//! `checkZdims` apply them): every random term's grouping needs at least 2 sampled levels, and
//! more observations than the term has random effects (levels × effects). Otherwise the
//! random-effect variances and the residual variance cannot be told apart and the "fit" depends
//! on the order of the rows. lme4's `check.nobs.vs.nlev` (levels ≥ observations) is implied by
//! the second rule, and the data-dependent checks on the frame (`check::check_frame`) already
//! word it for intercept-only terms.
//!
//! Several equations fitted together are checked as lme4 would fit each alone (its rows, the
//! levels sampled in them, the term's effects in it), and a term spanning several equations also
//! as the stacked model (all their rows against all the term's levels × effects). It must not read
//! rows or fit anything.

use crate::diagnostics::Diagnostic;
use crate::model::{ModelSpec, RandomTermSpec};

use super::{FactorStatistics, ResidualClass, SufficientStatistics};

/// Every random-part problem (empty when the fit can go ahead).
pub(super) fn problems(
    spec: &ModelSpec,
    stats: &SufficientStatistics,
    classes: &[ResidualClass],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (term, factor) in spec.random.iter().zip(&stats.factors) {
        let mut equations: Vec<usize> = term.effects.iter().map(|e| e.equation).collect();
        equations.sort_unstable();
        equations.dedup();
        let mut failed = false;
        for &e in &equations {
            if let Some(d) = equation_problem(spec, term, factor, classes, e) {
                failed = true;
                out.push(d);
            }
        }
        if failed || equations.len() < 2 {
            continue;
        }
        out.extend(stacked_problem(spec, term, factor, classes, &equations));
    }
    out
}

/// Observations of equation `e`.
fn nobs(classes: &[ResidualClass], e: usize) -> usize {
    classes
        .iter()
        .filter(|c| c.equation == e)
        .map(|c| c.nobs)
        .sum()
}

/// The term as lme4 would fit equation `e` alone: its rows, the levels sampled in them, the
/// term's effects in it.
fn equation_problem(
    spec: &ModelSpec,
    term: &RandomTermSpec,
    factor: &FactorStatistics,
    classes: &[ResidualClass],
    e: usize,
) -> Option<Diagnostic> {
    let equation = spec.equations.get(e)?;
    let effects: Vec<&str> = term
        .effects
        .iter()
        .filter(|f| f.equation == e)
        .map(|f| f.name.as_str())
        .collect();
    let levels = (0..factor.nlevels)
        .filter(|&j| {
            factor.blocks[factor.level_start[j]..factor.level_start[j + 1]]
                .iter()
                .any(|b| classes[b.class].equation == e)
        })
        .count();
    let n = nobs(classes, e);
    let within = if spec.equations.len() > 1 {
        format!(" in the rows of the `{}` equation", equation.outcome)
    } else {
        String::new()
    };
    if levels < 2 {
        Some(
            Diagnostic::at(
                format!(
                    "grouping factors must have > 1 sampled level: `{}` has {levels}{within}",
                    term.name
                ),
                term.span,
            )
            .with_hint(
                "lme4 stops here too (check.nlev.gtr.1); drop the random term, or check \
                 the `keep` statements",
            ),
        )
    } else if n < levels * effects.len() + usize::from(equation.family.is_gaussian()) {
        // glmer's checks allow as many random effects as observations (`allow.n`): a
        // non-Gaussian outcome has no residual variance they could be confused with.
        Some(too_few(
            n,
            levels * effects.len(),
            &label(&effects, &term.name),
            &within,
            term.span,
        ))
    } else {
        None
    }
}

/// The stacked model of a term spanning `equations`: all the term's rows against all its
/// levels × effects.
fn stacked_problem(
    spec: &ModelSpec,
    term: &RandomTermSpec,
    factor: &FactorStatistics,
    classes: &[ResidualClass],
    equations: &[usize],
) -> Option<Diagnostic> {
    let n: usize = equations.iter().map(|&e| nobs(classes, e)).sum();
    let effects: Vec<&str> = term.effects.iter().map(|f| f.name.as_str()).collect();
    let count = factor.nlevels * effects.len();
    if n > count {
        return None;
    }
    let outcomes: Vec<String> = equations
        .iter()
        .filter_map(|&e| spec.equations.get(e))
        .map(|eq| format!("`{}`", eq.outcome))
        .collect();
    Some(too_few(
        n,
        count,
        &label(&effects, &term.name),
        &format!(
            " in the rows of the {} equations together",
            outcomes.join(", ")
        ),
        term.span,
    ))
}

/// lme4's message (`wmsg` in its `modular.R`), with where the rows were counted.
fn too_few(
    n: usize,
    count: usize,
    term: &str,
    within: &str,
    span: crate::diagnostics::Span,
) -> Diagnostic {
    Diagnostic::at(
        format!(
            "number of observations (={n}) <= number of random effects (={count}) for term \
             ({term}){within}; the random-effects parameters and the residual variance (or scale \
             parameter) are probably unidentifiable"
        ),
        span,
    )
    .with_expected("more observations than levels × effects of the term")
    .with_hint(
        "lme4 stops here too (check.nobs.vs.nRE); drop a random slope, or check the `keep` \
         statements and the grouping",
    )
}

/// lme4's name of a term: `1 + Days | Subject`.
fn label(effects: &[&str], grouping: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    for e in effects {
        let e = if *e == "(Intercept)" { "1" } else { e };
        if !names.contains(&e) {
            names.push(e);
        }
    }
    if names.is_empty() {
        names.push("0");
    }
    format!("{} | {grouping}", names.join(" + "))
}
