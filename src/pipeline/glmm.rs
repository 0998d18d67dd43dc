//! The path of a model with a non-Gaussian family: the refusals of what is not supported for
//! it yet (located where the file asks for it), the design's rows with the family's trials and
//! offset columns, `estimate::fit_glmm`, and Wald z tests (as `summary(glmer)`). Owns choosing
//! that path; must not contain statistics.

use super::session::Session;
use super::{interval_location, FitOptions, TestedFit};
use crate::design::{self, Design, ObservationRows};
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::{self, FamilyColumns};
use crate::infer::{self};
use crate::model::{Family, IntervalChoice, ModelSpec};
use crate::prepare::AnalysisFrame;

/// The family of a model that takes the GLMM path: the first non-Gaussian equation's.
pub(super) fn non_gaussian(spec: &ModelSpec) -> Option<&Family> {
    spec.equations
        .iter()
        .map(|e| &e.family)
        .find(|f| !f.is_gaussian())
}

/// What a non-Gaussian model cannot have yet that depends on the run (its options, its
/// interval, where its data live), each refused with a located error. What the spec alone rules
/// out (several equations, `residual` structures, REML) is `model::unsupported_families`', which
/// the checker and the design have already asked.
pub(super) fn refusals(
    session: &Session,
    family: &Family,
    options: &FitOptions,
) -> Vec<Diagnostic> {
    let spec = &session.checked.spec;
    let at = family.span.map_or(Location::None, Location::Source);
    let not_yet = |what: &str, location: Location| {
        Diagnostic::error(
            format!("{what} is not supported for a non-Gaussian family yet"),
            location,
        )
    };
    let mut errors = Vec::new();
    if matches!(
        spec.interval,
        Some(IntervalChoice::Bootstrap { .. } | IntervalChoice::ParametricBootstrap { .. })
    ) {
        errors.push(
            not_yet("a bootstrap interval", interval_location(session))
                .with_hint("use `interval monte_carlo` or `interval delta`"),
        );
    }
    if options.robust_se {
        errors.push(not_yet(
            "--se cr2 (cluster-robust standard errors)",
            at.clone(),
        ));
    }
    if session.out_of_core.is_some() || options.out_of_core {
        errors.push(not_yet(
            "reading the data out of core (the fit iterates over the rows in memory)",
            at,
        ));
    }
    errors
}

/// Fit the rows of `frame` with the model's family; the fixed effects get Wald z tests and the
/// definitions the covariance of all parameters from the deviance's Hessian.
pub(super) fn estimate_glmm(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    design: &Design,
    family: &Family,
) -> Result<(TestedFit, String), Vec<Diagnostic>> {
    let rows = design::observation_rows(spec, frame)?;
    let columns = family_columns(frame, &rows, family)?;
    let glmm = estimate::fit_glmm(design, &rows, family, spec.agq, columns)?;
    let tests = infer::fixed_effects::z_tests(&glmm.fit);
    Ok((
        TestedFit {
            fit: glmm.fit,
            tests,
            joint_covariance: Some(glmm.covariance),
        },
        glmm.approximation,
    ))
}

/// The family statement's trials and offset at each observation's frame row.
pub(super) fn family_columns(
    frame: &AnalysisFrame,
    rows: &ObservationRows,
    family: &Family,
) -> Result<FamilyColumns, Vec<Diagnostic>> {
    Ok(FamilyColumns {
        trials: column_at_rows(frame, rows, family.trials.as_deref(), family)?,
        offset: column_at_rows(frame, rows, family.offset.as_deref(), family)?,
    })
}

/// The values of a numeric column at each observation's frame row.
fn column_at_rows(
    frame: &AnalysisFrame,
    rows: &ObservationRows,
    name: Option<&str>,
    family: &Family,
) -> Result<Option<Vec<f64>>, Vec<Diagnostic>> {
    let Some(name) = name else { return Ok(None) };
    let at = family.span.map_or(Location::None, Location::Source);
    match frame.column(name) {
        Some(crate::data::Column::Numeric(values)) => {
            Ok(Some(rows.row.iter().map(|&r| values[r]).collect()))
        }
        _ => Err(vec![Diagnostic::error(
            format!("`{name}` of the family statement is not a numeric column"),
            at,
        )]),
    }
}
