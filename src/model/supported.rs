//! The model classes the engines cannot fit (yet), decided from the `ModelSpec` alone: the
//! residual structures, and of a model with random coefficients the designs the substitution
//! into the level-1 equations (`level_one`) does not cover. The checker reports them, located,
//! once the model is otherwise sound; `design` asks again to refuse a spec built by hand. Owns
//! those rules and their wording; it must not look at data or at the syntax tree.

use crate::diagnostics::{Diagnostic, Span};

use super::{Coefficient, EquationSpec, ModelSpec, OutcomeKind, RandomEffectSpec, TermKind};

/// Every model class `design` cannot build, for `design::build` to refuse a spec that did not
/// come through the checker (which says so first, located): the residual structures, then
/// (when there are none) the rest, as the checker finds them.
pub fn unsupported(spec: &ModelSpec) -> Vec<Diagnostic> {
    let mut out = unsupported_residuals(spec);
    out.extend(unsupported_families(spec));
    if !out.is_empty() {
        return out;
    }
    unsupported_designs(spec)
}

/// Residual structures the estimator does not fit yet. Compound symmetry is fitted from per-unit sums of [X y]
/// (nlme's gls); with random terms the residual correlation couples the levels of every term
/// through the units, which the blocked Cholesky does not handle yet, and several equations
/// would need a joint one.
pub fn unsupported_residuals(spec: &ModelSpec) -> Vec<Diagnostic> {
    let mut out = unsupported_ar1(spec);
    for r in &spec.residual {
        let Some(unit) = &r.correlated_within else {
            continue;
        };
        let Some(equation) = spec.equations.get(r.equation) else {
            continue;
        };
        if !spec.random.is_empty() {
            out.push(
                Diagnostic::at(
                    format!(
                        "`correlated within {unit}` together with random terms is not supported \
                         yet"
                    ),
                    equation.span,
                )
                .with_hint("drop the random terms (a gls model), or the residual correlation"),
            );
        } else if spec.equations.len() > 1 {
            out.push(Diagnostic::at(
                format!(
                    "`correlated within {unit}` in a model with several equations is not \
                     supported yet"
                ),
                equation.span,
            ));
        }
    }
    out
}

/// AR(1) residuals are fitted for one equation, random terms or not, with or without residual
/// classes (`residual by`), from the end-row and lag-1 sums; several equations and random
/// coefficients (their level-1 rewrite and `fit_latent`) are not built yet.
fn unsupported_ar1(spec: &ModelSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for r in &spec.residual {
        let (Some(series), Some(equation)) = (&r.ar1_within, spec.equations.get(r.equation)) else {
            continue;
        };
        let refuse =
            |what: &str| not_supported(&format!("`ar1 within {series}` {what}"), equation.span);
        if spec.equations.len() > 1 {
            out.push(refuse("in a model with several equations"));
        } else if spec.has_random_coefficients() {
            out.push(refuse(
                "in a model with random coefficients as outcomes or predictors",
            ));
        }
    }
    out
}

/// Non-Gaussian families beyond one equation with independent residuals (glmer's models): with
/// several equations (a joint likelihood mixing families, or random-coefficient equations
/// substituted into it) and with any `residual` structure. And REML, which a `--method reml`
/// override can still ask for after the checker set ML: glmer fits by maximum likelihood.
pub fn unsupported_families(spec: &ModelSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (index, eq) in spec.equations.iter().enumerate() {
        if eq.family.is_gaussian() {
            continue;
        }
        let span = eq.family.span.unwrap_or(eq.span);
        let family = eq.family.kind.name();
        if spec.equations.len() > 1 {
            let what = if spec.has_random_coefficients() {
                "random-coefficient equations"
            } else {
                "several equations"
            };
            out.push(
                not_supported(
                    &format!(
                        "a {family} outcome (`{}`) in a model with {what}",
                        eq.outcome
                    ),
                    span,
                )
                .with_hint("fit the non-Gaussian equation on its own"),
            );
        }
        let residual = spec.residual.iter().find(|r| {
            r.equation == index
                && (r.by.is_some() || r.correlated_within.is_some() || r.ar1_within.is_some())
        });
        if residual.is_some() {
            out.push(
                not_supported(
                    &format!(
                        "a `residual` structure for the {family} outcome `{}`",
                        eq.outcome
                    ),
                    span,
                )
                .with_hint(format!(
                    "a {family} outcome's variance follows from its mean; remove the `residual` \
                     statement"
                )),
            );
        }
        if spec.method == super::Method::Reml {
            out.push(
                Diagnostic::at(
                    format!("the {family} family is fitted by maximum likelihood, not REML"),
                    span,
                )
                .with_hint("use `--method ml` (glmer's only method), or leave the method out"),
            );
        }
    }
    out
}

fn not_supported(what: &str, span: Span) -> Diagnostic {
    Diagnostic::at(format!("{what} is not supported yet"), span)
}

/// The designs `design` cannot build: of a model with random coefficients, those the
/// substitution into the level-1 equations does not cover; of any other, a term that takes a
/// random coefficient for a variable (only a hand-built spec has one: the checker resolves such
/// a name to the coefficient).
pub fn unsupported_designs(spec: &ModelSpec) -> Vec<Diagnostic> {
    if !spec.has_random_coefficients() {
        return coefficients_as_variables(spec);
    }
    // In stages, as the design met them: a later stage presumes the earlier ones sound.
    let out = unsubstitutable(spec);
    if !out.is_empty() {
        return out;
    }
    let out = unsupported_latent_models(spec);
    if !out.is_empty() {
        return out;
    }
    unsupported_latent_equation(spec)
}

/// The random effect that carries `label`.
fn labelled_effect<'s>(spec: &'s ModelSpec, label: &str) -> Option<&'s RandomEffectSpec> {
    let (k, s) = spec.labelled_effect(label)?;
    Some(&spec.random[k].effects[s])
}

fn coefficients_as_variables(spec: &ModelSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for term in spec.equations.iter().flat_map(|eq| &eq.terms) {
        for v in &term.variables {
            if labelled_effect(spec, v).is_some() {
                out.push(Diagnostic::at(
                    format!("a random coefficient (`{v}`) as a predictor is not supported yet"),
                    term.span,
                ));
            }
        }
    }
    out
}

/// Random-coefficient equations that cannot be substituted into a level-1 equation as
/// cross-level interactions, and random effects of group-level equations.
fn unsubstitutable(spec: &ModelSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for eq in &spec.equations {
        if eq.outcome_kind != OutcomeKind::RandomCoefficient {
            continue;
        }
        match unsubstitutable_equation(spec, eq) {
            Some(d) => out.push(d),
            None => out.extend(
                eq.terms
                    .iter()
                    .filter(|t| t.kind == TermKind::RandomCoefficient)
                    .map(|t| {
                        not_supported(
                            "a random coefficient as a predictor of another random coefficient",
                            t.span,
                        )
                    }),
            ),
        }
    }
    for term in &spec.random {
        if term.effects.iter().any(|e| !spec.is_level_one(e.equation)) {
            out.push(not_supported(
                "a random effect in a group-level equation",
                term.span,
            ));
        }
    }
    out
}

/// Why the random-coefficient equation `eq` cannot be substituted, if it cannot.
fn unsubstitutable_equation(spec: &ModelSpec, eq: &EquationSpec) -> Option<Diagnostic> {
    let Some(effect) = labelled_effect(spec, &eq.outcome) else {
        return Some(Diagnostic::at(
            format!("`{}` labels no random effect", eq.outcome),
            eq.span,
        ));
    };
    if !spec.is_level_one(effect.equation) {
        return Some(not_supported(
            "a random coefficient of a group-level equation",
            eq.span,
        ));
    }
    if effect.variables.is_empty() {
        return Some(not_supported(
            &format!(
                "a regression of the random intercept `{}` (write its predictors into the \
                 level-1 equation)",
                eq.outcome
            ),
            eq.span,
        ));
    }
    if eq.intercept.is_none() {
        return Some(not_supported(
            &format!(
                "`{}` without an intercept (its intercept is the fixed slope of `{}`)",
                eq.outcome, effect.name
            ),
            eq.span,
        ));
    }
    None
}

/// A random coefficient as a predictor is fitted jointly with one level-1 equation on one
/// grouping factor with one residual variance (`estimate::latent_predictor`).
fn unsupported_latent_models(spec: &ModelSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let latent: Vec<&EquationSpec> = spec
        .equations
        .iter()
        .filter(|eq| eq.has_latent_predictor())
        .collect();
    if latent.len() > 1 {
        out.push(not_supported(
            "more than one equation with a random coefficient as a predictor",
            latent[1].span,
        ));
    }
    if let Some(eq) = latent.first() {
        if spec.random.iter().any(|t| t.name != spec.random[0].name) {
            out.push(not_supported(
                "a random coefficient as a predictor in a model with several grouping factors",
                eq.span,
            ));
        }
        if spec.residual.iter().any(|r| r.by.is_some()) {
            out.push(not_supported(
                "a random coefficient as a predictor with `residual by`",
                eq.span,
            ));
        }
        let level_one = (0..spec.equations.len())
            .filter(|&e| spec.is_level_one(e))
            .count();
        if level_one != 1 {
            out.push(not_supported(
                "a random coefficient as a predictor with several level-1 equations",
                eq.span,
            ));
        }
    }
    out
}

/// The group-level equation on a latent coefficient: one latent predictor, free coefficients
/// only, and none fixed in the regression of that coefficient either (a fixed one there is an
/// offset of the level-1 rows, which the outcome's mean would need too: refused rather than
/// silently left out).
fn unsupported_latent_equation(spec: &ModelSpec) -> Vec<Diagnostic> {
    let Some(eq) = spec.equations.iter().find(|eq| eq.has_latent_predictor()) else {
        return Vec::new();
    };
    let latent: Vec<_> = eq
        .terms
        .iter()
        .filter(|t| t.kind == TermKind::RandomCoefficient)
        .collect();
    if latent.len() != 1 {
        return vec![not_supported(
            "several random coefficients as predictors of one outcome",
            eq.span,
        )];
    }
    let label = &latent[0].variables[0];
    if labelled_effect(spec, label).is_none() {
        return vec![Diagnostic::at(
            format!("`{label}` labels no random effect"),
            latent[0].span,
        )];
    }
    let fixed = "a fixed coefficient in an equation with a random coefficient as a predictor";
    let mut out = Vec::new();
    if let Some(Coefficient::Fixed(_)) = &eq.intercept {
        out.push(not_supported(fixed, eq.span));
    }
    for t in &eq.terms {
        if matches!(t.coefficient, Coefficient::Fixed(_)) {
            out.push(not_supported(fixed, t.span));
        }
    }
    let regression = spec
        .equations
        .iter()
        .find(|q| q.outcome_kind == OutcomeKind::RandomCoefficient && q.outcome == *label);
    for t in regression.iter().flat_map(|q| &q.terms) {
        if matches!(t.coefficient, Coefficient::Fixed(_)) {
            out.push(not_supported(
                "a fixed coefficient in the regression of a random coefficient used as a \
                 predictor",
                t.span,
            ));
        }
    }
    out
}
