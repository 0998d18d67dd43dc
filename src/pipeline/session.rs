//! A model file opened for fitting (`Session`): parsed, its data read (whole, or only the first
//! piece when out of core) and checked against them. Must not prepare or fit.

use std::path::{Path, PathBuf};

use super::files::{data_path, load, missing_data_file, LoadedModel, NotOpened};
use super::timings::Timings;

use crate::check::{self, CheckOptions, CheckedModel, Schema};
use crate::data::{self, DataTable};
use crate::diagnostics::{Diagnostic, Location};
use crate::model::{IntervalChoice, ModelSpec};
use crate::out_of_core;

/// A model that parsed, whose data were read and whose names resolved.
pub(super) struct Session {
    pub(super) model: LoadedModel,
    /// The data; out of core, only the file's first piece, which the model was checked against.
    pub(super) table: DataTable,
    pub(super) checked: CheckedModel,
    /// SHA-256 of the data file's bytes (hashed while parsed); `None` for data built in memory
    /// (and out of core, until the passes have read the file).
    pub(super) data_sha256: Option<String>,
    /// The file is read out of core, in pieces (`out_of_core`), each time it is fitted.
    pub(super) out_of_core: Option<OutOfCoreData>,
}

/// A data file read out of core.
pub(super) struct OutOfCoreData {
    pub(super) path: PathBuf,
    pub(super) missing: Vec<String>,
    pub(super) check: CheckOptions,
    /// Why, when the file is too large for memory (for the report's notes).
    pub(super) why: Option<String>,
}

/// The seed behind the report's random draws: the Monte Carlo interval's or the bootstrap's,
/// (`--seed` already in the model); `None` when nothing was drawn.
pub(super) fn seed_used(spec: &ModelSpec) -> Option<u64> {
    match &spec.interval {
        Some(IntervalChoice::MonteCarlo { seed, .. }) if !spec.definitions.is_empty() => {
            Some(*seed)
        }
        Some(IntervalChoice::Bootstrap { seed, .. })
        | Some(IntervalChoice::ParametricBootstrap { seed, .. }) => Some(*seed),
        _ => None,
    }
}

/// Parse, read the data, check.
pub(super) fn open(
    path: &Path,
    data_override: Option<&Path>,
    force_out_of_core: bool,
    timings: &mut Timings,
) -> Result<Session, NotOpened> {
    let model = load(path)?;
    timings.lap("parse model file");
    // Check the file's own statements first so that a model without a `data` statement is told
    // so, located, rather than failing on a missing path.
    let Some(csv) = data_path(&model, data_override) else {
        let schema = Schema::new("the data", Vec::new());
        return Err(match check::check(&model.ast, &schema) {
            Err(diags) => model.not_opened(diags),
            Ok(_) => model.not_opened(vec![Diagnostic::error(
                "the model file has no `data` statement",
                Location::File(model.path.clone()),
            )
            .with_hint("add `data \"file.csv\"` or pass `--data FILE`")]),
        });
    };
    if data_override.is_none() && !csv.exists() {
        return Err(model.not_opened(vec![missing_data_file(&model, &csv)]));
    }
    // The `data` statement's missing codes apply to whichever file is read (`--data` included).
    let missing: Vec<String> = model
        .data_statement()
        .map(|(_, codes, _)| codes.iter().map(|c| c.value.clone()).collect())
        .unwrap_or_default();
    let options = CheckOptions {
        data_override: data_override.is_some(),
    };
    let too_big = data::memory_shortfall(&csv);
    let out_of_core = (force_out_of_core || too_big.is_some()).then(|| OutOfCoreData {
        path: csv.clone(),
        missing: missing.clone(),
        check: options,
        why: too_big.map(|why| format!("{why}: it is read out of core")),
    });
    let (table, data_sha256) = if out_of_core.is_some() {
        if data::ColumnarFormat::of(&csv).is_some() {
            return Err(NotOpened::plain(
                path,
                vec![Diagnostic::error(
                    "out of core, only CSV files (plain or gzip-compressed) are read; Parquet \
                     and Arrow files are read whole",
                    Location::File(csv.clone()),
                )],
            ));
        }
        let first = out_of_core::first_piece(&csv, &missing)
            .map_err(|d| NotOpened::plain(path, vec![d]))?;
        timings.lap("read the data file's first piece (out of core)");
        (first, None)
    } else {
        let (table, digest) = data::read_data_with_sha256(&csv, &missing)
            .map_err(|d| NotOpened::plain(path, vec![d]))?;
        timings.lap("read data");
        (table, Some(digest))
    };
    let schema = Schema::from_table(&table);
    let checked =
        check::check_with(&model.ast, &schema, options).map_err(|d| model.not_opened(d))?;
    timings.lap("check");
    Ok(Session {
        model,
        table,
        checked,
        data_sha256,
        out_of_core,
    })
}
