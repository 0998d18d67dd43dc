//! Random coefficients as outcomes and as predictors, reduced to what the engines fit.
//!
//! A random-coefficient equation (`sync ~ 1 + a*w`, where `sync` labels the random slope of `dp`)
//! is a level-2 regression of a slope, substituted into the level-1 equation as the cross-level
//! interaction `dp:w` by the model (`ModelSpec::level_one`). So the design of such a model is the
//! design of that rewritten model; the interaction's parameter is reported under the
//! random-coefficient equation again (`sync ~ w`, label `a`), which takes the design's column
//! names (a text predictor's levels are data).
//!
//! A group-level equation with the latent coefficient as a predictor (`reduction ~ 1 + b*sync
//! + cp*w`) has one observation per group: the group's value of its outcome (constant within
//! the group, which `check::check_frame` verifies). Its data are gathered here per group
//! ([`LatentOutcome`]) for `estimate::latent_predictor`, which fits it jointly with the level-1
//! rows. Per group we keep, besides the outcome and covariates, the coefficients with which the
//! level-1 fixed parameters enter the latent coefficient's mean (1 for its intercept, `w_j` for
//! `a`), because the outcome's mean is `b0 + b·(g10 + a·w_j) + cp·w_j`.
//!
//! This module owns the design of the rewritten model under the original equations' numbering
//! and names, and the per-group gathering; it must not estimate anything. Which of these models
//! can be rewritten is `model::unsupported`'s to say (from the spec alone, before any row is
//! read); `design::build` refuses the others before coming here. Only what
//! needs the prepared frame is refused here: a text column in an equation about a random
//! coefficient (a `let` is text or numbers once evaluated).

use crate::data::Column;
use crate::diagnostics::Span;
use crate::diagnostics::{Diagnostic, Location};
use crate::model::{Coefficient, EquationSpec, FixedTermSpec, ModelSpec, OutcomeKind, TermKind};
use crate::prepare::AnalysisFrame;

use super::grouping::{Grouping, NO_LEVEL};
use super::Design;

/// The group-level equation whose predictor is a latent random coefficient, with its data per
/// group.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentOutcome {
    /// Index of the equation in `ModelSpec::equations`.
    pub equation: usize,
    pub outcome: String,
    /// The random term (index into `Design::random`) and the position of the latent
    /// coefficient among its effects.
    pub term: usize,
    pub effect: usize,
    /// The equation's free coefficients in formula order (intercept first); the one at
    /// `latent` multiplies the latent coefficient (`b`).
    pub columns: Vec<GroupColumn>,
    pub latent: usize,
    /// Per group: first the levels of the random term in the order of `RandomTerm::levels`
    /// (the group's observation, `None` when its outcome or a covariate is missing), then the
    /// groups without level-1 observations that have a group-level one.
    pub groups: Vec<Option<GroupObservation>>,
}

impl LatentOutcome {
    /// Groups with an observation of the outcome.
    pub fn nobs(&self) -> usize {
        self.groups.iter().flatten().count()
    }
}

/// A free coefficient of the group-level equation.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupColumn {
    /// R's name: `(Intercept)`, `w`, `w:z`, or the latent coefficient's label.
    pub name: String,
    pub label: Option<String>,
}

/// One group's observation of the group-level equation.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupObservation {
    pub outcome: f64,
    /// Values of the columns other than the latent one, in column order.
    pub covariates: Vec<f64>,
    /// Per level-1 fixed parameter (`Design::fixed`): its coefficient in the mean of the latent
    /// random coefficient for this group (1 for the slope's intercept, `w_j` for `a`, else 0).
    pub slope_mean: Vec<f64>,
}

fn not_supported(what: &str, span: Span) -> Diagnostic {
    Diagnostic::at(format!("{what} is not supported yet"), span)
}

/// The design of a model with random-coefficient equations: the level-1 design (the
/// substituted interactions named after the random-coefficient equation's predictors), and the
/// group-level equation on the latent coefficient, if any.
pub(super) fn build(spec: &ModelSpec, frame: &AnalysisFrame) -> Result<Design, Vec<Diagnostic>> {
    let reduced = spec.level_one();
    let latent_equation = spec
        .equations
        .iter()
        .position(EquationSpec::has_latent_predictor);
    let mut design = super::build(&reduced.spec, frame)?;
    // Back to the original equations' numbering and names.
    for parameter in &mut design.fixed {
        for (equation, name) in &mut parameter.columns {
            let substitution = reduced
                .substituted
                .iter()
                .find(|s| s.equation == *equation && is_substituted(name, &s.slope));
            match substitution {
                Some(s) => {
                    *name = name
                        .split(':')
                        .filter(|piece| !s.slope.iter().any(|v| v == piece))
                        .collect::<Vec<_>>()
                        .join(":");
                    *equation = s.regression;
                }
                None => *equation = reduced.original[*equation],
            }
        }
    }
    for term in &mut design.random {
        for (equation, _) in &mut term.effects {
            *equation = reduced.original[*equation];
        }
    }
    for class in &mut design.classes {
        class.equation = reduced.original[class.equation];
    }
    if let Some(e) = latent_equation {
        design.latent = Some(latent_outcome(spec, e, &design, frame)?);
    }
    Ok(design)
}

/// A design column `dp:w` produced by substituting a random-coefficient equation's term: every
/// slope variable is one of its pieces, and something else is too.
fn is_substituted(name: &str, variables: &[String]) -> bool {
    let pieces: Vec<&str> = name.split(':').collect();
    pieces.len() > variables.len() && variables.iter().all(|v| pieces.contains(&v.as_str()))
}

fn numeric<'a>(frame: &'a AnalysisFrame, name: &str, span: Span) -> Result<&'a [f64], Diagnostic> {
    match frame.column(name) {
        Some(Column::Numeric(v)) => Ok(v),
        Some(Column::Text { .. }) => Err(not_supported(
            &format!("the text column `{name}` in an equation about a random coefficient"),
            span,
        )),
        None => Err(Diagnostic::at(
            format!("no column `{name}` in the analysis frame"),
            span,
        )),
    }
}

fn product(columns: &[&[f64]], row: usize) -> f64 {
    columns.iter().map(|c| c[row]).product()
}

/// Gather the group-level equation `e` per group of the latent coefficient's random term.
fn latent_outcome(
    spec: &ModelSpec,
    e: usize,
    design: &Design,
    frame: &AnalysisFrame,
) -> Result<LatentOutcome, Vec<Diagnostic>> {
    let eq = &spec.equations[e];
    let (label, term, effect) = latent_coefficient(spec, eq)?;
    let outcome = numeric(frame, &eq.outcome, eq.span).map_err(|d| vec![d])?;
    let mut errors = Vec::new();
    let (columns, covariates, latent) = group_columns(eq, frame, &mut errors);
    let slope_terms = slope_mean_terms(spec, design, frame, label, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    let grouping = Grouping::new(&spec.random[term], frame).map_err(|d| vec![*d])?;
    let by_level = observations_by_level(&grouping, outcome, &covariates, &slope_terms);
    let groups = groups_in_design_order(&design.random[term].levels, &grouping, by_level)?;
    Ok(LatentOutcome {
        equation: e,
        outcome: eq.outcome.clone(),
        term,
        effect,
        columns,
        latent,
        groups,
    })
}

/// The latent coefficient among `eq`'s predictors (one: `model::unsupported` has refused
/// more): its label, and the random term and effect position that carry it.
fn latent_coefficient<'e>(
    spec: &ModelSpec,
    eq: &'e EquationSpec,
) -> Result<(&'e String, usize, usize), Vec<Diagnostic>> {
    let found = eq
        .terms
        .iter()
        .find(|t| t.kind == TermKind::RandomCoefficient)
        .map(|t| &t.variables[0])
        .and_then(|label| spec.labelled_effect(label).map(|(k, s)| (label, k, s)));
    found.ok_or_else(|| {
        vec![Diagnostic::error(
            format!(
                "internal: the equation for `{}` has no random coefficient as a predictor",
                eq.outcome
            ),
            Location::None,
        )]
    })
}

/// The group-level equation's free coefficients in formula order, per coefficient other than
/// the latent one the columns whose product is its covariate, and the latent one's position.
fn group_columns<'f>(
    eq: &EquationSpec,
    frame: &'f AnalysisFrame,
    errors: &mut Vec<Diagnostic>,
) -> (Vec<GroupColumn>, Vec<Vec<&'f [f64]>>, usize) {
    let mut columns = Vec::new();
    let mut covariates: Vec<Vec<&[f64]>> = Vec::new();
    let mut latent = 0;
    // Every coefficient is free (`model::unsupported` has refused fixed ones).
    let free_label = |c: &Coefficient| match c {
        Coefficient::Free { label } => label.clone(),
        Coefficient::Fixed(_) => None,
    };
    if let Some(c) = &eq.intercept {
        columns.push(GroupColumn {
            name: "(Intercept)".into(),
            label: free_label(c),
        });
        covariates.push(Vec::new());
    }
    for t in &eq.terms {
        let label = free_label(&t.coefficient);
        if t.kind == TermKind::RandomCoefficient {
            latent = columns.len();
            columns.push(GroupColumn {
                name: t.name.clone(),
                label,
            });
            continue;
        }
        covariates.push(numeric_columns(frame, t, errors));
        columns.push(GroupColumn {
            name: t.name.clone(),
            label,
        });
    }
    (columns, covariates, latent)
}

/// The numeric columns of a term's variables; the problems go to `errors`.
fn numeric_columns<'f>(
    frame: &'f AnalysisFrame,
    t: &FixedTermSpec,
    errors: &mut Vec<Diagnostic>,
) -> Vec<&'f [f64]> {
    let mut values = Vec::new();
    for v in &t.variables {
        match numeric(frame, v, t.span) {
            Ok(c) => values.push(c),
            Err(d) => errors.push(d),
        }
    }
    values
}

/// How each level-1 parameter enters the mean of the latent coefficient `label`: per
/// parameter, the products whose sum is its coefficient in the mean (a parameter can carry
/// several columns through a shared label).
fn slope_mean_terms<'f>(
    spec: &ModelSpec,
    design: &Design,
    frame: &'f AnalysisFrame,
    label: &str,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Vec<Vec<&'f [f64]>>> {
    let rc_equation = spec
        .equations
        .iter()
        .position(|q| q.outcome_kind == OutcomeKind::RandomCoefficient && q.outcome == *label);
    // Its coefficients are free (`model::unsupported` has refused fixed ones, offsets the
    // outcome's mean would need too).
    let mut slope_terms: Vec<Vec<Vec<&[f64]>>> = Vec::new();
    for parameter in &design.fixed {
        let mut products = Vec::new();
        if parameter.label.as_deref() == Some(label) {
            products.push(Vec::new());
        }
        for (equation, name) in &parameter.columns {
            let Some(r) = rc_equation.filter(|r| r == equation) else {
                continue;
            };
            let Some(t) = spec.equations[r].terms.iter().find(|t| t.name == *name) else {
                continue;
            };
            products.push(numeric_columns(frame, t, errors));
        }
        slope_terms.push(products);
    }
    slope_terms
}

/// Per level of the grouping, the first row with a complete observation of the group-level
/// equation.
fn observations_by_level(
    grouping: &Grouping,
    outcome: &[f64],
    covariates: &[Vec<&[f64]>],
    slope_terms: &[Vec<Vec<&[f64]>>],
) -> Vec<Option<GroupObservation>> {
    let mut by_level: Vec<Option<GroupObservation>> = vec![None; grouping.nlevels()];
    for (row, &level) in grouping.codes.iter().enumerate() {
        if level == NO_LEVEL || by_level[level as usize].is_some() {
            continue;
        }
        let y = outcome[row];
        let x: Vec<f64> = covariates.iter().map(|c| product(c, row)).collect();
        let s: Vec<f64> = slope_terms
            .iter()
            .map(|products| products.iter().map(|c| product(c, row)).sum())
            .collect();
        if y.is_nan() || x.iter().chain(&s).any(|v| v.is_nan()) {
            continue;
        }
        by_level[level as usize] = Some(GroupObservation {
            outcome: y,
            covariates: x,
            slope_mean: s,
        });
    }
    by_level
}

/// The design's levels (those with level-1 rows) first, in its order; then groups observed
/// only at level 2, which still inform b and ψ through the outcome's marginal distribution.
fn groups_in_design_order(
    levels: &[String],
    grouping: &Grouping,
    mut by_level: Vec<Option<GroupObservation>>,
) -> Result<Vec<Option<GroupObservation>>, Vec<Diagnostic>> {
    let names = grouping.level_names();
    let mut groups = Vec::new();
    let mut taken = vec![false; names.len()];
    for level in levels {
        match names.iter().position(|n| n == level) {
            Some(i) => {
                taken[i] = true;
                groups.push(by_level[i].take());
            }
            None => {
                return Err(vec![Diagnostic::error(
                    format!("internal: the level-1 group `{level}` has no group-level row"),
                    Location::None,
                )])
            }
        }
    }
    groups.extend(
        by_level
            .into_iter()
            .zip(taken)
            .filter(|(_, taken)| !taken)
            .filter_map(|(g, _)| g.map(Some)),
    );
    Ok(groups)
}
