//! The `:=` definitions of one fit: compiled against the `ParameterTable`, given the
//! covariance `infer::definition_covariance` chooses, estimated with the interval the model
//! asks for (Monte Carlo or delta), the mediation summary, and (with `--plot`) the binned
//! Monte Carlo draws. Owns turning `infer`'s results into report rows; must not compute
//! intervals itself.

use nalgebra::DMatrix;

use super::session::Session;
use super::{interval_location, unlocated, FitOptions};
use crate::data::Column;
use crate::design::{self, Design};
use crate::diagnostics::{Diagnostic, Location, Severity};
use crate::estimate::Fit;
use crate::functions::Builtin;
use crate::infer::defined::DefinedQuantities;
use crate::infer::defined_estimates::{DefinedEstimate, IntervalMethod};
use crate::infer::marginal_effect::AverageMarginalEffect;
use crate::infer::mediation::MediationPlan;
use crate::infer::monte_carlo::MonteCarloSettings;
use crate::infer::{self};
use crate::model::expression::calls_in;
use crate::model::{ExpressionKind, IntervalChoice, Link, ModelSpec};
use crate::parameters::{ParameterKind, ParameterTable};
use crate::prepare::AnalysisFrame;
use crate::report::{self};

/// Definitions' rows, the mediation summary's rows and (with `--plot` and Monte Carlo
/// intervals) the binned draws of each definition and of the mediation summary's direct effect
/// and proportion mediated.
#[derive(Default)]
pub(super) struct DefinedOutput {
    pub(super) rows: Vec<report::DefinedRow>,
    pub(super) mediation: Vec<report::DefinedRow>,
    pub(super) figures: Vec<report::figures::DrawFigure>,
}

/// Estimates, delta-method SEs and intervals of the file's `:=` definitions (Monte Carlo or
/// delta by the `interval` statement, with `--draws`/`--seed` applied; delta at 95% when the
/// file has no `interval`), and the mediation summary when an indirect and a total effect are
/// defined. Bootstrap intervals of definitions come with the bootstrap run instead.
pub(super) fn defined_quantities(
    session: &Session,
    value: &Option<(String, f64)>,
    (frame, design): (Option<&AnalysisFrame>, &Design),
    fit: &Fit,
    joint_covariance: Option<DMatrix<f64>>,
    options: &FitOptions,
    warnings: &mut Vec<Diagnostic>,
) -> Result<DefinedOutput, Vec<Diagnostic>> {
    let spec = &session.checked.spec;
    let table = ParameterTable::from_fit(spec, design, fit);
    let constants: Vec<(String, f64)> = value.iter().cloned().collect();
    let effects = marginal_effects(spec, frame, &table)?;
    let quantities =
        infer::defined::compile_with_effects(&spec.definitions, &table, &constants, effects)?;
    let mut notes = Vec::new();
    let covariance = infer::definition_covariance::covariance_for_definitions(
        spec,
        design,
        fit,
        &table,
        &quantities,
        joint_covariance,
        &mut notes,
    )
    .map_err(|d| vec![d])?;
    warnings.extend(unlocated(notes));
    let method = interval_method(session, options, warnings);
    let estimates = table.estimates();
    let (rows, summary, notes) =
        infer::mediation::estimate_with_mediation(&quantities, &estimates, &covariance, &method)?;
    warnings.extend(notes);
    not_finite_warnings(session, &rows, warnings);
    let mut figures = Vec::new();
    if let (Some(_), IntervalMethod::MonteCarlo(settings)) = (&options.plot, &method) {
        let results: Vec<&DefinedEstimate> = (rows.iter())
            .chain(
                summary
                    .iter()
                    .flat_map(|s| s.rows.iter().map(|r| &r.result)),
            )
            .collect();
        let drawn = Drawn {
            quantities: &quantities,
            estimates: &estimates,
            covariance: &covariance,
        };
        figures = monte_carlo_figures(&drawn, &results, settings, warnings);
    }
    let mediation = summary
        .map(|s| {
            (s.rows.iter())
                .map(|r| defined_row(r.effect.label().to_string(), &r.result))
                .collect()
        })
        .unwrap_or_default();
    Ok(DefinedOutput {
        rows: rows
            .iter()
            .map(|d| defined_row(d.name.clone(), d))
            .collect(),
        mediation,
        figures,
    })
}

/// One average marginal effect per predictor the definitions' `ame(x)` calls name, over the
/// analysis rows with the first equation's link (the checker admits `ame` in one-equation
/// models only).
pub(super) fn marginal_effects(
    spec: &ModelSpec,
    frame: Option<&AnalysisFrame>,
    table: &ParameterTable,
) -> Result<Vec<AverageMarginalEffect>, Vec<Diagnostic>> {
    let mut calls = Vec::new();
    for definition in &spec.definitions {
        calls_in(&definition.value, |f| f == Builtin::Ame, &mut calls);
    }
    let mut effects: Vec<AverageMarginalEffect> = Vec::new();
    for call in calls {
        let ExpressionKind::Call { args, .. } = &call.kind else {
            continue;
        };
        let Some(ExpressionKind::Name(name)) = args.first().map(|a| &a.value.kind) else {
            continue;
        };
        let variable = name.text();
        if effects.iter().any(|e| e.variable == variable) {
            continue;
        }
        let Some(frame) = frame else {
            return Err(vec![Diagnostic::at(
                format!(
                    "`ame({variable})` averages over the analysis rows, which out of core are \
                     not kept in memory"
                ),
                call.span,
            )
            .with_hint("fit without --out-of-core")]);
        };
        let mut slopes = design::fixed_slopes(spec, frame, variable)?;
        add_family_offset(spec, frame, &mut slopes);
        let beta_rows: Vec<usize> = (table.rows.iter().enumerate())
            .filter(|(_, r)| matches!(r.kind, ParameterKind::Fixed { .. }))
            .map(|(i, _)| i)
            .collect();
        if beta_rows.len() != slopes.x.ncols() {
            return Err(vec![Diagnostic::at(
                format!(
                    "internal: `ame({variable})` found {} fixed effects in the design and {} in \
                     the parameter table",
                    slopes.x.ncols(),
                    beta_rows.len()
                ),
                call.span,
            )]);
        }
        let link = spec
            .equations
            .first()
            .map_or(Link::Identity, |e| e.family.link);
        effects.push(AverageMarginalEffect::new(
            variable, link, &slopes, beta_rows,
        ));
    }
    Ok(effects)
}

/// A family's `offset` column (a log exposure) is part of each row's linear predictor, so the
/// effect is on the expected count at the row's exposure, as R's `predict(type = "response")`.
fn add_family_offset(spec: &ModelSpec, frame: &AnalysisFrame, slopes: &mut design::FixedSlopes) {
    let offset = spec
        .equations
        .first()
        .and_then(|e| e.family.offset.as_deref());
    if let Some(Column::Numeric(values)) = offset.and_then(|name| frame.column(name)) {
        for (o, &r) in slopes.offset.iter_mut().zip(&slopes.row) {
            *o += values[r];
        }
    }
}

/// How the definitions get their intervals: the `interval` statement's Monte Carlo or delta
/// (`--draws`/`--seed` already in the model); delta SEs with a Wald interval under a bootstrap,
/// which reports its own intervals; delta at 95% when the file has no `interval`.
fn interval_method(
    session: &Session,
    options: &FitOptions,
    warnings: &mut Vec<Diagnostic>,
) -> IntervalMethod {
    match &session.checked.spec.interval {
        Some(IntervalChoice::MonteCarlo { draws, level, seed }) => {
            let thin = infer::thin_tails_warning(*draws, *level, "Monte Carlo draws");
            let at = interval_location(session);
            warnings.extend(thin.map(|message| Diagnostic::warning(message, at)));
            IntervalMethod::MonteCarlo(MonteCarloSettings {
                draws: *draws,
                level: *level,
                seed: *seed,
                progress: options.progress,
            })
        }
        Some(IntervalChoice::Delta { level }) => IntervalMethod::Delta { level: *level },
        Some(IntervalChoice::Bootstrap { level, .. })
        | Some(IntervalChoice::ParametricBootstrap { level, .. }) => {
            IntervalMethod::Delta { level: *level }
        }
        None => IntervalMethod::Delta { level: 0.95 },
    }
}

/// A definition that is not a number at the estimates themselves (`1/0`, `log(a)` with a
/// negative `a`) would otherwise show as a bare NA or inf row with nothing to explain it.
fn not_finite_warnings(
    session: &Session,
    rows: &[DefinedEstimate],
    warnings: &mut Vec<Diagnostic>,
) {
    let spec = &session.checked.spec;
    for row in rows.iter().filter(|r| !r.estimate.is_finite()) {
        let definition = spec.definitions.iter().find(|d| d.name == row.name);
        let line = definition
            .and_then(|d| session.model.text.get(..d.span.start))
            .map(|before| format!(" (line {})", before.matches('\n').count() + 1))
            .unwrap_or_default();
        let message = format!(
            "`{}`{line} is not a finite number at the estimates ({}): a division by zero, an \
             overflow, or a log or square root outside its domain; it has no usable estimate",
            row.name, row.estimate
        );
        let at = definition.map_or(Location::None, |d| Location::Source(d.span));
        warnings.push(Diagnostic::warning(message, at));
    }
}

fn defined_row(name: String, d: &DefinedEstimate) -> report::DefinedRow {
    report::DefinedRow {
        name,
        estimate: d.estimate,
        se: Some(d.se),
        ci_lower: d.lower,
        ci_upper: d.upper,
        level: d.level,
        method: d.method.clone(),
        draws: d.draws,
        se_draws: d.mc_sd,
    }
}

/// What the Monte Carlo draws are drawn from.
struct Drawn<'a> {
    quantities: &'a DefinedQuantities,
    estimates: &'a [f64],
    covariance: &'a DMatrix<f64>,
}

/// The binned draws of each definition (`--plot`). With a mediation summary its direct effect
/// and proportion mediated are drawn too, from the plan's programs: the same seed gives the
/// same draws as every interval, and the draws do not depend on how many programs are
/// evaluated on them.
fn monte_carlo_figures(
    drawn: &Drawn,
    results: &[&DefinedEstimate],
    settings: &MonteCarloSettings,
    warnings: &mut Vec<Diagnostic>,
) -> Vec<report::figures::DrawFigure> {
    let plan = MediationPlan::new(drawn.quantities);
    let programs = plan.as_ref().map_or(drawn.quantities, |p| &p.quantities);
    let histograms =
        infer::monte_carlo::draw_histograms(programs, drawn.estimates, drawn.covariance, settings);
    let histograms = match histograms {
        Ok(histograms) => histograms,
        Err(d) => {
            warnings.push(Diagnostic {
                severity: Severity::Warning,
                message: format!("figures of the draws: {}", d.message),
                ..d
            });
            return Vec::new();
        }
    };
    (programs.programs.iter().zip(histograms))
        .map(|(program, histogram)| {
            let result = results.iter().find(|r| r.name == program.name);
            report::figures::DrawFigure {
                name: program.name.clone(),
                source: "Monte Carlo draws".into(),
                unit: "draws".into(),
                requested: None,
                note: String::new(),
                histogram,
                estimate: result.map_or(f64::NAN, |r| r.estimate),
                interval: result.and_then(|r| r.lower.zip(r.upper)),
                level: Some(settings.level),
            }
        })
        .collect()
}
