//! The `FitReport` of one fit, assembled from the fit, its tests and the rows read: fixed
//! effects in formula order (a shared coefficient once per term), variance components,
//! residual classes, the data accounting, provenance; flat directions located at their random
//! terms. Owns the report's arrangement; must not compute statistics (they come from
//! `estimate` and `infer`) or render.

use super::files::LoadedModel;
use super::rows::RowsRead;
use super::session::Session;
use super::TestedFit;
use crate::design::Design;
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::Fit;
use crate::infer::{self};
use crate::model::ModelSpec;
use crate::report::{self, FitReport};
use crate::syntax::{
    self,
    ast::{Method, Statement},
};

/// Fixed-effect rows grouped by equation in file order, and within an equation in the order of
/// its formula (the intercept first): a term that shares an earlier equation's coefficient then
/// sits where it was written. A row whose term the formula does not name as such (a factor's
/// level, `SexFemale`) keeps its place after the row before it.
fn in_formula_order(spec: &ModelSpec, rows: Vec<report::FixedRow>) -> Vec<report::FixedRow> {
    let mut keyed: Vec<(usize, usize, report::FixedRow)> = Vec::with_capacity(rows.len());
    for (e, equation) in spec.equations.iter().enumerate() {
        let mut last = 0;
        for row in rows.iter().filter(|r| r.equation == equation.outcome) {
            let position = if row.term == "(Intercept)" {
                Some(0)
            } else {
                equation
                    .terms
                    .iter()
                    .position(|t| t.name == row.term)
                    .map(|k| k + 1)
            };
            last = position.unwrap_or(last);
            keyed.push((e, last, row.clone()));
        }
    }
    if keyed.len() != rows.len() {
        // An equation named twice cannot be told apart by its outcome: keep the rows as they are.
        return rows;
    }
    keyed.sort_by_key(|(e, position, _)| (*e, *position));
    keyed.into_iter().map(|(_, _, row)| row).collect()
}

/// The flat-direction warnings name the random terms they involve where the model file writes
/// them (`(1 | h)` at file:line:column), in every output format, and are located at the first.
pub(super) fn locate_flat_directions(fit: &mut Fit, spec: &ModelSpec, model: &LoadedModel) {
    for flat in &fit.flat_directions {
        let terms: Vec<_> = (flat.terms.iter())
            .filter_map(|&k| spec.random.get(k))
            .collect();
        let places: Vec<String> = terms
            .iter()
            .map(|term| {
                let (line, column) = crate::syntax::line_col(&model.text, term.span.start);
                let text = model.text.get(term.span.start..term.span.end).unwrap_or("");
                format!("`{text}` at {}:{line}:{column}", model.path.display())
            })
            .collect();
        if places.is_empty() {
            continue;
        }
        let located = format!(
            "{} (random term{} {})",
            flat.message,
            if places.len() == 1 { "" } else { "s" },
            places.join(", ")
        );
        let first = terms.first().map(|term| term.span);
        for warning in (fit.warnings.iter_mut()).filter(|w| w.message == flat.message) {
            warning.message = located.clone();
            warning.location = first.map_or(Location::None, Location::Source);
        }
    }
}

pub(super) fn assemble(
    session: &Session,
    rows: &RowsRead,
    design: &Design,
    tested: &TestedFit,
    title: String,
    mut warnings: Vec<Diagnostic>,
) -> FitReport {
    let spec = &session.checked.spec;
    let fit = &tested.fit;
    warnings.extend(fit.warnings.iter().cloned());
    let formulas = (session.model.ast.statements.iter())
        .filter(|s| matches!(s, Statement::Equation(_)))
        .map(syntax::format::format_statement)
        .collect();
    FitReport {
        model_file: title,
        formulas,
        fit: fit_summary(spec, fit, warnings),
        fixed: in_formula_order(spec, fixed_rows(spec, design, fit, &tested.tests)),
        random: random_rows(spec, fit),
        residual: residual_rows(spec, fit),
        defined: Vec::new(),
        mediation: Vec::new(),
        bootstrap: None,
        ranef: None,
        residual_figure: None,
        data: data_summary(session, rows, design),
        tandem: report::Provenance {
            version: env!("CARGO_PKG_VERSION").to_string(),
            model_sha256: Some(session.model.sha256.clone()),
            data_sha256: rows.sha256.clone(),
            seed: None,
        },
    }
}

/// The outcome of equation `e`, as the report names equations.
fn equation_name(spec: &ModelSpec, e: usize) -> String {
    spec.equations
        .get(e)
        .map(|q| q.outcome.clone())
        .unwrap_or_default()
}

fn fit_summary(spec: &ModelSpec, fit: &Fit, warnings: Vec<Diagnostic>) -> report::FitSummary {
    let family = super::glmm::non_gaussian(spec).cloned().unwrap_or_default();
    report::FitSummary {
        method: match fit.method {
            Method::Ml => "ML".into(),
            Method::Reml => "REML".into(),
        },
        family: family.kind.name().into(),
        link: family.link.name().into(),
        approximation: None,
        loglik: fit.loglik,
        deviance: fit.deviance,
        aic: fit.aic,
        bic: fit.bic,
        nobs: fit.nobs,
        ngroups: report::GroupCounts(fit.ngroups.clone()),
        converged: fit.converged,
        singular: fit.singular,
        iterations: fit.iterations,
        gradient_evaluations: fit.gradient_evaluations,
        optimizer: fit.optimization.optimizer.clone(),
        standard_errors: None,
        warnings,
    }
}

/// A coefficient shared by several terms (a repeated label) gets a row per term, each naming
/// the others, so that no term of the file disappears from the report. (The group-level
/// equation of a random coefficient as a predictor has parameters of its own after the
/// design's: one term each.)
fn fixed_rows(
    spec: &ModelSpec,
    design: &Design,
    fit: &Fit,
    tests: &[infer::CoefficientTest],
) -> Vec<report::FixedRow> {
    let place = |(e, term): &(usize, String)| format!("{} ~ {term}", equation_name(spec, *e));
    let mut rows = Vec::new();
    for (i, (f, t)) in fit.fixed.iter().zip(tests).enumerate() {
        let columns = design
            .fixed
            .get(i)
            .map_or_else(|| vec![(f.equation, f.term.clone())], |p| p.columns.clone());
        rows.extend(columns.iter().map(|column| report::FixedRow {
            equation: equation_name(spec, column.0),
            term: column.1.clone(),
            label: f.label.clone(),
            estimate: t.estimate,
            se: t.se,
            df: t.df,
            t: t.t,
            p: t.p,
            equal_to: columns.iter().filter(|c| *c != column).map(place).collect(),
        }));
    }
    rows
}

/// Per grouping factor, a variance row per effect, then a covariance row per correlated pair.
fn random_rows(spec: &ModelSpec, fit: &Fit) -> Vec<report::RandomRow> {
    let mut random = Vec::new();
    for component in &fit.random {
        let effect = |i: usize| {
            let (eq, term) = &component.effects[i];
            (equation_name(spec, *eq), term.clone())
        };
        for i in 0..component.effects.len() {
            let (equation1, term1) = effect(i);
            random.push(report::RandomRow {
                group: component.group.clone(),
                equation1,
                term1,
                equation2: None,
                term2: None,
                variance: Some(component.covariance[(i, i)]),
                sd: Some(component.sd[i]),
                covariance: None,
                cor: None,
            });
        }
        for i in 0..component.effects.len() {
            for j in (i + 1)..component.effects.len() {
                let cov = component.covariance[(i, j)];
                // Uncorrelated terms have no covariance to report.
                if cov == 0.0 && component.correlation[(i, j)] == 0.0 {
                    continue;
                }
                let ((equation1, term1), (equation2, term2)) = (effect(i), effect(j));
                random.push(report::RandomRow {
                    group: component.group.clone(),
                    equation1,
                    term1,
                    equation2: Some(equation2),
                    term2: Some(term2),
                    variance: None,
                    sd: None,
                    covariance: Some(cov),
                    cor: Some(component.correlation[(i, j)]),
                });
            }
        }
    }
    random
}

fn residual_rows(spec: &ModelSpec, fit: &Fit) -> Vec<report::ResidualRow> {
    let within = fit.residual_correlation.as_ref();
    (fit.residual.iter())
        .map(|r| report::ResidualRow {
            equation: equation_name(spec, r.equation),
            class: r.level.clone(),
            variance: r.variance,
            sd: r.sd,
            correlated_within: within.filter(|c| !c.ar1).map(|c| c.unit.clone()),
            ar1_within: within.filter(|c| c.ar1).map(|c| c.unit.clone()),
            correlation: within.map(|c| c.rho),
        })
        .collect()
}

/// Rows read, used and dropped, and why: each preparation step, the rows no equation can use,
/// and each equation's missing values.
fn data_summary(session: &Session, rows: &RowsRead, design: &Design) -> report::DataSummary {
    let several = design.equations.len() > 1;
    let mut drops: Vec<report::DropRow> = (rows.drops.steps.iter())
        .filter(|s| s.rows > 0)
        .map(|s| report::DropRow {
            reason: s.reason.clone(),
            rows: s.rows,
            equation: None,
        })
        .collect();
    if several && design.rows_unused > 0 {
        drops.push(report::DropRow {
            reason: "each misses a model variable of every equation".into(),
            rows: design.rows_unused,
            equation: None,
        });
    }
    for eq in design.equations.iter().filter(|eq| eq.dropped > 0) {
        let missing: Vec<String> = (eq.missing.iter())
            .filter(|(_, n)| *n > 0)
            .map(|(v, n)| format!("{v} ({n})"))
            .collect();
        drops.push(report::DropRow {
            reason: format!(
                "missing values in the model variables of `{}`: {}",
                eq.outcome,
                missing.join(", ")
            ),
            rows: eq.dropped,
            // With one equation, its rows are the model's.
            equation: several.then(|| eq.outcome.clone()),
        });
    }
    let rows_by_equation = report::GroupCounts(
        (design.equations.iter())
            .map(|e| (e.outcome.clone(), e.used))
            .collect(),
    );
    let prepared = design.equations.first().map_or(0, |e| e.used + e.dropped);
    let rows_used = prepared.saturating_sub(design.rows_unused);
    let rows_read = rows.drops.rows_read;
    report::DataSummary {
        rows_read,
        rows_used,
        rows_dropped: rows_read.saturating_sub(rows_used),
        file: session.table.path.display().to_string(),
        drops,
        rows_by_equation,
        notes: rows.notes.clone(),
    }
}

/// lme4's `ranef` as report rows: per term, level and effect.
pub(super) fn ranef_rows(spec: &ModelSpec, design: &Design, fit: &Fit) -> Vec<report::RanefRow> {
    let mut rows = Vec::new();
    for (k, (term, modes)) in design.random.iter().zip(&fit.random_effects).enumerate() {
        let covariances = fit.random_effects_covariance.get(k);
        for (i, level) in term.levels.iter().enumerate() {
            for (j, (equation, effect)) in term.effects.iter().enumerate() {
                if i < modes.nrows() && j < modes.ncols() {
                    rows.push(report::RanefRow {
                        group: term.name.clone(),
                        level: level.clone(),
                        equation: spec
                            .equations
                            .get(*equation)
                            .map(|q| q.outcome.clone())
                            .unwrap_or_default(),
                        term: effect.clone(),
                        value: modes[(i, j)],
                        sd: covariances
                            .and_then(|c| c.get(i))
                            .filter(|v| j < v.nrows())
                            .map(|v| v[(j, j)].max(0.0).sqrt()),
                    });
                }
            }
        }
    }
    rows
}
