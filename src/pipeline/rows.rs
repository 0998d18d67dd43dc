//! The rows a fit reads, for one `vary` value: prepared in memory (with the data-dependent
//! checks) or read out of core in two passes, summed into the `Design`, with what the report
//! says of them (`RowsRead`). Must not fit.

use super::bootstrap_run::bootstrap_choice;
use super::session::{OutOfCoreData, Session};
use super::timings::Timings;
use super::vary::vary_label;

use crate::check::{self, Schema};
use crate::design::{self, Design};
use crate::diagnostics::{Diagnostic, Location};
use crate::out_of_core;
use crate::prepare::{self, AnalysisFrame};

/// The two passes over a data file read out of core, for one `vary` value: the design and
/// what the report says of the rows.
pub(super) fn design_out_of_core(
    session: &Session,
    data: &OutOfCoreData,
    value: &Option<(String, f64)>,
    timings: &mut Timings,
) -> Result<out_of_core::OutOfCore, Vec<Diagnostic>> {
    let label = vary_label(value);
    let vary: Vec<(String, f64)> = value.iter().cloned().collect();
    let spec = &session.checked.spec;
    let ast = &session.model.ast;
    let schema = Schema::from_table(&session.table);
    let plan = out_of_core::plan(ast, spec, &schema)?;
    let source = out_of_core::Source {
        path: &data.path,
        missing: &data.missing,
        schema: &schema,
        check: data.check,
        piece_bytes: out_of_core::piece_bytes(),
    };
    let collected = out_of_core::collect(ast, &source, &plan, &vary)?;
    timings.lap(format!("read and prepare, out of core{label}"));
    let mut result = out_of_core::design(spec, &data.path, &plan, collected, &vary)?;
    timings.lap(format!("design pass, out of core{label}"));
    result
        .warnings
        .extend(check::conditional_main_effects_in(spec, &|name| {
            result.ranges.get(name).copied()
        }));
    if let Some(why) = &data.why {
        result.notes.insert(0, why.clone());
    }
    Ok(result)
}

/// Run `prepare` and the data-dependent checks for one `vary` value.
pub(super) fn prepare_frame(
    session: &Session,
    value: &Option<(String, f64)>,
) -> Result<AnalysisFrame, Vec<Diagnostic>> {
    let vary: Vec<(String, f64)> = value.iter().cloned().collect();
    let mut frame = prepare::prepare(&session.checked.preparation, &session.table, &vary)?;
    if let Some(series) = session
        .checked
        .spec
        .residual
        .iter()
        .find_map(|r| r.ar1_within.as_ref())
    {
        // AR(1)'s positions are consecutive rows of each series, in the file's `order`.
        let order = session
            .checked
            .preparation
            .steps
            .iter()
            .rev()
            .find_map(|s| match s {
                crate::model::preparation::Step::Order(v) => Some(v.name.text()),
                _ => None,
            });
        frame = prepare::order_series(frame, series, order);
    }
    let problems = check::check_frame(&session.checked.spec, &frame);
    if problems.iter().any(Diagnostic::is_error) {
        return Err(problems);
    }
    // The outcome warnings (`check::check_outcomes`: a Gaussian 0/1 or count outcome).
    frame.warnings.extend(problems);
    let readings = check::conditional_main_effects(&session.checked.spec, &frame);
    frame.warnings.extend(readings);
    Ok(frame)
}

/// The design for one `vary` value, with the prepared frame when the rows are in memory (the
/// methods that need rows after the fit use it) and what the report says of the rows.
pub(super) fn design_for(
    session: &Session,
    value: &Option<(String, f64)>,
    timings: &mut Timings,
) -> Result<(Option<AnalysisFrame>, Design, RowsRead), Vec<Diagnostic>> {
    let label = vary_label(value);
    let spec = &session.checked.spec;
    Ok(match &session.out_of_core {
        None => {
            let frame = prepare_frame(session, value)?;
            timings.lap(format!("prepare{label}"));
            let design = design::build(spec, &frame)?;
            timings.lap(format!("design pass{label}"));
            let rows = RowsRead {
                drops: frame.drops.clone(),
                warnings: frame.warnings.clone(),
                notes: session.table.notes.clone(),
                sha256: session.data_sha256.clone(),
            };
            (Some(frame), design, rows)
        }
        Some(data) => {
            if bootstrap_choice(spec).is_some() {
                return Err(vec![Diagnostic::error(
                    "out of core, a bootstrap is not available: it refits resampled rows, and \
                     the rows are not kept in memory",
                    Location::File(data.path.clone()),
                )
                .with_hint(
                    "use `interval monte_carlo` (or `delta`), or fit a file that fits in memory",
                )]);
            }
            let read = design_out_of_core(session, data, value, timings)?;
            let rows = RowsRead {
                drops: read.drops,
                warnings: read.warnings,
                notes: read.notes,
                sha256: Some(read.sha256),
            };
            (None, read.design, rows)
        }
    })
}

/// What the report says about the rows of the data file, however it was read.
pub(super) struct RowsRead {
    pub(super) drops: prepare::DropReport,
    pub(super) warnings: Vec<Diagnostic>,
    pub(super) notes: Vec<String>,
    pub(super) sha256: Option<String>,
}
