//! A model taken through the front end only: parsed, checked against its data, the command
//! line's overrides applied, the rows prepared (with the data-dependent checks), by the same
//! steps `fit` runs, and handed back as the `ModelSpec` and the `AnalysisFrame` the design pass
//! would read. For tests, benchmarks and tools that work on the later stages directly. Owns
//! nothing of its own: it must not check, prepare or design anything itself, only call the
//! pipeline's steps.

use std::path::Path;

use super::rows::prepare_frame;
use super::session::{open, Session};
use super::timings::Timings;
use super::vary::vary_values;
use super::{session_from_source, with_overrides, FitOptions};

use crate::data::DataTable;
use crate::diagnostics::{Diagnostic, Location};
use crate::model::ModelSpec;
use crate::prepare::AnalysisFrame;

/// A checked model and its prepared rows, for one value of its `vary` statement.
#[derive(Debug, Clone)]
pub struct PreparedModel {
    /// The checked model, with `options`' method, draws and seed in place of the file's.
    pub spec: ModelSpec,
    /// The rows after the file's `group`/`order`/`factor`/`let`/`keep` statements.
    pub frame: AnalysisFrame,
    /// The `vary` value the rows were prepared for: the first of the file's (or of
    /// `options.vary`); `None` without a `vary` statement.
    pub value: Option<(String, f64)>,
    /// The model's own warnings, as `check` found them (the rows' are in `frame.warnings`).
    pub warnings: Vec<Diagnostic>,
}

/// Model text with data already in memory, checked and prepared as `fit` would before its design
/// pass. `name` stands for the file name in messages; the text's `data` statement, if any, is
/// ignored in favour of `table`. The errors are every diagnostic of the stage that failed.
pub fn prepare_model(
    name: &str,
    source: &str,
    table: DataTable,
    options: &FitOptions,
) -> Result<PreparedModel, Vec<Diagnostic>> {
    prepared(session_from_source(name, source, table)?, options)
}

/// `prepare_model` for a model file on disk, its data read as its `data` statement (or
/// `options.data`) says. A data file too large for memory is refused: its rows are never held
/// whole.
pub fn prepare_model_file(
    path: &Path,
    options: &FitOptions,
) -> Result<PreparedModel, Vec<Diagnostic>> {
    let mut timings = Timings::default();
    let data = options.data.as_deref();
    let session = open(path, data, false, &mut timings).map_err(|e| e.diagnostics)?;
    if let Some(data) = &session.out_of_core {
        return Err(vec![Diagnostic::error(
            "the data file is read out of core: its rows are not kept in memory",
            Location::File(data.path.clone()),
        )]);
    }
    prepared(session, options)
}

/// The overrides applied and the rows of the first chosen `vary` value prepared.
fn prepared(session: Session, options: &FitOptions) -> Result<PreparedModel, Vec<Diagnostic>> {
    let session = with_overrides(session, options);
    let value = vary_values(&session, &options.vary)?
        .into_iter()
        .next()
        .flatten();
    let frame = prepare_frame(&session, &value)?;
    Ok(PreparedModel {
        spec: session.checked.spec,
        frame,
        value,
        warnings: session.checked.warnings,
    })
}
