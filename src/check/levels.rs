//! Data-dependent checks on the prepared frame: each model variable's level (the grouping
//! factors it is constant within), and what the levels rule out: a random slope of a variable
//! that never varies within its groups, a grouping column of non-whole numbers (measurements,
//! not ids), groups of one row under a random term (a random intercept is then the residual under
//! another name), a grouping with fewer than two groups, a class of `residual by` with a single
//! row, and group-level equations (random coefficients) on variables that vary within the group.
//! Owns only these checks; it must not change the frame or fit anything.
//!
//! Missing values are ignored: a variable is constant within a group when its non-missing values
//! in that group are all equal (rows missing the grouping belong to no group).

use std::collections::HashMap;

use crate::data::{Column, MISSING_CODE};
use crate::diagnostics::{Diagnostic, Location};
use crate::model::{ModelSpec, OutcomeKind, RandomTermSpec, TermKind};
use crate::prepare::AnalysisFrame;
use crate::syntax::ast::Span;

/// A model variable and the groupings it is constant within (by lme4 name, e.g. `Subject`,
/// `cask:batch`, or a `correlated within` column).
#[derive(Debug, Clone, PartialEq)]
pub struct VariableLevel {
    pub variable: String,
    pub constant_within: Vec<String>,
}

/// Row id of a missing combination in `row_ids`.
const NO_ID: u32 = u32::MAX;
/// Value key of a missing value in `value_keys` (a NaN bit pattern: never a present value's key).
const NO_VALUE: u64 = u64::MAX;

/// A present value's key: -0.0 and 0.0 are the same value.
fn cell_key(column: &Column, row: usize) -> Option<u64> {
    match column {
        Column::Numeric(values) => {
            let v = values[row];
            (!v.is_nan()).then(|| if v == 0.0 { 0 } else { v.to_bits() })
        }
        Column::Text { codes, .. } => {
            let code = codes[row];
            (code != MISSING_CODE).then_some(u64::from(code))
        }
    }
}

/// Per row: the id of its combination of `columns` (numbered by first appearance), `NO_ID` when
/// any is missing; and the number of combinations. Built one column at a time from (previous
/// id, value) pairs, so no row allocates; consecutive equal rows (sorted data) skip the hash.
fn row_ids(frame: &AnalysisFrame, columns: &[String]) -> Option<(Vec<u32>, usize)> {
    let columns: Vec<&Column> = columns
        .iter()
        .map(|name| frame.column(name))
        .collect::<Option<_>>()?;
    let mut ids = vec![0u32; frame.nrows];
    let mut count = usize::from(frame.nrows > 0);
    for column in columns {
        let mut index: HashMap<(u32, u64), u32> = HashMap::new();
        let mut last: Option<((u32, u64), u32)> = None;
        for (row, id) in ids.iter_mut().enumerate() {
            if *id == NO_ID {
                continue;
            }
            let Some(value) = cell_key(column, row) else {
                *id = NO_ID;
                continue;
            };
            let key = (*id, value);
            *id = match last {
                Some((k, i)) if k == key => i,
                _ => {
                    let next = index.len() as u32;
                    let i = *index.entry(key).or_insert(next);
                    last = Some((key, i));
                    i
                }
            };
        }
        count = index.len();
    }
    Some((ids, count))
}

/// Per row: a key equal exactly when the values of `columns` are equal, `NO_VALUE` when missing.
fn value_keys(frame: &AnalysisFrame, columns: &[String]) -> Option<Vec<u64>> {
    if let [name] = columns {
        let column = frame.column(name)?;
        return Some(
            (0..frame.nrows)
                .map(|row| cell_key(column, row).unwrap_or(NO_VALUE))
                .collect(),
        );
    }
    let (ids, _) = row_ids(frame, columns)?;
    Some(
        ids.into_iter()
            .map(|id| if id == NO_ID { NO_VALUE } else { u64::from(id) })
            .collect(),
    )
}

/// How a variable behaves within groups.
struct WithinGroups {
    /// Every group's non-missing values are equal.
    constant: bool,
    /// No group has more than one row with a value.
    single_rows: bool,
}

fn within_groups(values: &[u64], groups: &[u32], count: usize) -> WithinGroups {
    let mut first: Vec<u64> = vec![NO_VALUE; count];
    let mut rows = vec![0usize; count];
    let mut constant = true;
    for (&value, &group) in values.iter().zip(groups) {
        if value == NO_VALUE || group == NO_ID {
            continue;
        }
        let g = group as usize;
        rows[g] += 1;
        if first[g] == NO_VALUE {
            first[g] = value;
        } else if first[g] != value {
            constant = false;
        }
    }
    WithinGroups {
        constant,
        single_rows: rows.iter().all(|&r| r <= 1),
    }
}

/// Groupings of the model: random terms' (name, columns) and `correlated within` units.
fn groupings(spec: &ModelSpec) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let residual_units = spec
        .residual
        .iter()
        .filter_map(|r| r.correlated_within.clone())
        .map(|c| (c.clone(), vec![c]));
    let terms = spec
        .random
        .iter()
        .map(|t| (t.name.clone(), t.grouping.clone()));
    for grouping in terms.chain(residual_units) {
        if !out.iter().any(|(name, _)| *name == grouping.0) {
            out.push(grouping);
        }
    }
    out
}

/// The model's frame variables in order of appearance: outcomes, fixed terms, random slopes.
pub(crate) fn model_variables(spec: &ModelSpec) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &String| {
        if !out.contains(name) {
            out.push(name.clone());
        }
    };
    for equation in &spec.equations {
        if equation.outcome_kind == OutcomeKind::Variable {
            add(&equation.outcome);
        }
        // A binomial outcome's trials and an offset are read with the outcome.
        equation.family.trials.iter().for_each(&mut add);
        equation.family.offset.iter().for_each(&mut add);
        for term in &equation.terms {
            if term.kind == TermKind::Variables {
                term.variables.iter().for_each(&mut add);
            }
        }
    }
    for term in &spec.random {
        for effect in &term.effects {
            effect.variables.iter().for_each(&mut add);
        }
    }
    out
}

/// Each model variable's level: the groupings it is constant within. Variables or groupings
/// missing from the frame are left out (`check_frame` reports them).
pub fn variable_levels(spec: &ModelSpec, frame: &AnalysisFrame) -> Vec<VariableLevel> {
    let groups: Vec<(String, Vec<u32>, usize)> = groupings(spec)
        .into_iter()
        .filter_map(|(name, columns)| {
            row_ids(frame, &columns).map(|(ids, count)| (name, ids, count))
        })
        .collect();
    model_variables(spec)
        .into_iter()
        .filter_map(|variable| {
            let values = value_keys(frame, std::slice::from_ref(&variable))?;
            let constant_within = groups
                .iter()
                .filter(|(_, ids, count)| within_groups(&values, ids, *count).constant)
                .map(|(name, _, _)| name.clone())
                .collect();
            Some(VariableLevel {
                variable,
                constant_within,
            })
        })
        .collect()
}

/// Checks the model against the prepared frame; every problem found, errors only.
pub fn check_frame(spec: &ModelSpec, frame: &AnalysisFrame) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for term in &spec.random {
        // glmer allows a level per observation (an observation-level random effect for
        // overdispersion): a non-Gaussian outcome has no residual to confuse it with.
        let residual = term.effects.iter().any(|e| {
            spec.equations
                .get(e.equation)
                .is_some_and(|q| q.family.is_gaussian())
        });
        check_random_term(term, frame, residual, &mut diagnostics);
    }
    check_residual_classes(spec, frame, &mut diagnostics);
    check_group_level_equations(spec, frame, &mut diagnostics);
    diagnostics.extend(super::outcomes::check_outcomes(spec, frame));
    diagnostics
}

fn at(message: String, span: Span) -> Diagnostic {
    Diagnostic::error(message, Location::Source(span))
}

/// One random term's grouping (ids, at least 2 groups, not one row each) and slopes.
fn check_random_term(
    term: &RandomTermSpec,
    frame: &AnalysisFrame,
    residual: bool,
    out: &mut Vec<Diagnostic>,
) {
    if let Some((name, value)) = measured_grouping(term, frame) {
        out.push(
            at(
                format!(
                    "the grouping column `{name}` holds measurements (e.g. {value}), not unit \
                     identifiers"
                ),
                term.span,
            )
            .with_expected("a grouping column of text or whole-number ids")
            .with_hint(format!("is `{name}` the grouping you meant?")),
        );
        return;
    }
    let Some((ids, count)) = row_ids(frame, &term.grouping) else {
        out.push(at(
            format!("the grouping `{}` is not in the analysis frame", term.name),
            term.span,
        ));
        return;
    };
    if count < 2 {
        out.push(
            at(
                format!(
                    "`{}` has {count} group{} in the analysed rows; a random term needs at \
                     least 2",
                    term.name,
                    if count == 1 { "" } else { "s" }
                ),
                term.span,
            )
            .with_hint("drop the random term, or check the `keep` statements"),
        );
        return;
    }
    // lme4 refuses this too ("number of levels of each grouping factor must be < number of
    // observations"): the fit would split one variance between two names arbitrarily.
    let grouped = ids.iter().filter(|&&id| id != NO_ID).count();
    // With a random slope the slope's own check below says more.
    if residual && grouped == count && term.effects.iter().all(|e| e.variables.is_empty()) {
        out.push(
            at(
                format!(
                    "every group of `{}` has a single row ({count} groups for {grouped} \
                     rows), so its random intercept cannot be told apart from the residual",
                    term.name
                ),
                term.span,
            )
            .with_hint(format!(
                "a grouping names units observed several times; is `{}` the grouping you \
                 meant?",
                term.name
            )),
        );
        return;
    }
    check_random_slopes(term, frame, &ids, count, out);
}

/// A grouping column names units; one of measurements (non-whole numbers) is a slip of the pen
/// that would also make tens of thousands of crossed levels (hours of fitting).
fn measured_grouping<'t>(
    term: &'t RandomTermSpec,
    frame: &AnalysisFrame,
) -> Option<(&'t String, f64)> {
    term.grouping
        .iter()
        .find_map(|name| match frame.column(name) {
            Some(Column::Numeric(values)) => values
                .iter()
                .find(|v| v.is_finite() && v.fract() != 0.0)
                .map(|v| (name, *v)),
            _ => None,
        })
}

/// Each random slope must vary within the term's groups, which need several rows.
fn check_random_slopes(
    term: &RandomTermSpec,
    frame: &AnalysisFrame,
    ids: &[u32],
    count: usize,
    out: &mut Vec<Diagnostic>,
) {
    for effect in term.effects.iter().filter(|e| !e.variables.is_empty()) {
        let Some(values) = value_keys(frame, &effect.variables) else {
            out.push(at(
                format!(
                    "the random slope `{}` is not in the analysis frame",
                    effect.name
                ),
                term.span,
            ));
            continue;
        };
        let within = within_groups(&values, ids, count);
        if within.single_rows {
            out.push(
                at(
                    format!(
                        "every group of `{}` has at most one row, so the random slope of \
                         `{}` cannot be estimated",
                        term.name, effect.name
                    ),
                    term.span,
                )
                .with_hint("a random slope needs several rows per group"),
            );
        } else if within.constant {
            out.push(
                at(
                    format!(
                        "`{}` cannot vary within `{}`: it is constant within every group",
                        effect.name, term.name
                    ),
                    term.span,
                )
                .with_hint(format!(
                    "`{}` is a `{}`-level variable; its effect cannot differ between groups \
                     of `{}`, so drop it from this random term",
                    effect.name, term.name, term.name
                )),
            );
        }
    }
}

/// Each class of `residual by` gets its own variance, which one row cannot estimate (the
/// likelihood grows without bound as that row's residual variance shrinks). A continuous column
/// written as `by` is the usual cause, and fitting it would mean hundreds of variances.
fn check_residual_classes(spec: &ModelSpec, frame: &AnalysisFrame, out: &mut Vec<Diagnostic>) {
    for residual in &spec.residual {
        let Some(by) = &residual.by else {
            continue;
        };
        let Some(equation) = spec.equations.get(residual.equation) else {
            continue;
        };
        let Some((ids, count)) = row_ids(frame, std::slice::from_ref(by)) else {
            continue;
        };
        let mut rows = vec![0usize; count];
        for &id in ids.iter().filter(|&&id| id != NO_ID) {
            rows[id as usize] += 1;
        }
        let single = rows.iter().filter(|&&r| r == 1).count();
        if single > 0 {
            out.push(
                Diagnostic::error(
                    format!(
                        "`residual by {by}`: {single} of its {count} classes have a single row, \
                         and a class's own residual variance needs several"
                    ),
                    Location::Source(equation.span),
                )
                .with_hint(format!(
                    "`by` takes a grouping column, such as a factor (nlme's varIdent); is `{by}` \
                     continuous?"
                )),
            );
        }
    }
}

/// Equations about random coefficients live at the coefficient's grouping level: their other
/// variables must be constant within that grouping.
fn check_group_level_equations(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let grouping_of = |label: &str| {
        spec.random
            .iter()
            .find(|t| t.effects.iter().any(|e| e.label.as_deref() == Some(label)))
    };
    let about_coefficients = spec.equations.iter().any(|e| {
        e.outcome_kind == OutcomeKind::RandomCoefficient
            || e.terms
                .iter()
                .any(|t| t.kind == TermKind::RandomCoefficient)
    });
    if !about_coefficients {
        // Every variable's level costs a pass over the rows: only worth it when used.
        return;
    }
    let levels = variable_levels(spec, frame);
    let constant_within = |variable: &str, grouping: &str| {
        levels
            .iter()
            .find(|l| l.variable == variable)
            .is_none_or(|l| l.constant_within.iter().any(|g| g == grouping))
    };
    for equation in &spec.equations {
        let coefficient = if equation.outcome_kind == OutcomeKind::RandomCoefficient {
            Some(equation.outcome.as_str())
        } else {
            equation
                .terms
                .iter()
                .find(|t| t.kind == TermKind::RandomCoefficient)
                .map(|t| t.variables[0].as_str())
        };
        let Some(term) = coefficient.and_then(grouping_of) else {
            continue;
        };
        let label = coefficient.unwrap_or_default();
        let mut variables: Vec<(&str, Span)> = Vec::new();
        if equation.outcome_kind == OutcomeKind::Variable {
            variables.push((&equation.outcome, equation.span));
        }
        for fixed in equation
            .terms
            .iter()
            .filter(|t| t.kind == TermKind::Variables)
        {
            variables.extend(fixed.variables.iter().map(|v| (v.as_str(), fixed.span)));
        }
        for (variable, span) in variables {
            if !constant_within(variable, &term.name) {
                let mut d = Diagnostic::error(
                    format!(
                        "`{variable}` varies within `{}`, but this equation is about the \
                         random coefficient `{label}`, which has one value per `{}`",
                        term.name, term.name
                    ),
                    Location::Source(span),
                );
                if let [group] = term.grouping.as_slice() {
                    d = d.with_hint(format!(
                        "use a `{group}`-level variable, e.g. `let m = between({variable}, {group})`"
                    ));
                }
                diagnostics.push(d);
            }
        }
    }
}
