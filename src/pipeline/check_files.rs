//! The `check` command: every model file a path names parsed, checked against its data and
//! prepared (for each `vary` value), its warnings said once. Must not fit, or render.

use std::path::{Path, PathBuf};

use super::files::model_files;
use super::rows::{design_out_of_core, prepare_frame};
use super::session::open;
use super::timings::Timings;
use super::vary::vary_values;
use crate::diagnostics::Diagnostic;

/// One model file checked: its warnings and either the rows it reads or the errors that stopped
/// it. Nothing is rendered (`cli` does that).
#[derive(Debug)]
pub struct FileCheck {
    pub path: PathBuf,
    /// The model text, to show located diagnostics in it; `None` when it could not be read.
    pub source: Option<String>,
    /// The warnings as found: the model's, then each `vary` value's new ones (a warning that
    /// every value raises is said once), one group per step.
    pub warnings: Vec<Vec<Diagnostic>>,
    pub result: Result<RowCounts, Vec<Diagnostic>>,
}

/// The rows a checked file reads, and how many each `vary` value keeps after preparation.
#[derive(Debug)]
pub struct RowCounts {
    pub rows_read: usize,
    pub prepared: Vec<(Option<(String, f64)>, usize)>,
}

impl FileCheck {
    fn failed(path: PathBuf, source: Option<String>, errors: Vec<Diagnostic>) -> Self {
        FileCheck {
            path,
            source,
            warnings: Vec::new(),
            result: Err(errors),
        }
    }
}

/// Parse and check each model file (folders: every `*.tandem` inside) against its data,
/// including the data-dependent checks after preparation. A path that names no model file is
/// an entry of its own, failed.
pub fn check_paths(paths: &[PathBuf], data: Option<&Path>, out_of_core: bool) -> Vec<FileCheck> {
    let mut checks = Vec::new();
    for path in paths {
        match model_files(path) {
            Ok(files) => {
                checks.extend(files.iter().map(|file| check_one(file, data, out_of_core)));
            }
            Err(d) => checks.push(FileCheck::failed(path.clone(), None, vec![d])),
        }
    }
    checks
}

fn check_one(path: &Path, data: Option<&Path>, out_of_core: bool) -> FileCheck {
    let session = match open(path, data, out_of_core, &mut Timings::default()) {
        Ok(s) => s,
        Err(e) => return FileCheck::failed(e.path, e.text, e.diagnostics),
    };
    let source = Some(session.model.text.clone());
    let values = match vary_values(&session, &[]) {
        Ok(v) => v,
        Err(e) => return FileCheck::failed(path.into(), source, e),
    };
    let mut warnings = vec![session.checked.warnings.clone()];
    let mut prepared = Vec::new();
    // A warning that every `vary` value raises is said once.
    let mut said: Vec<String> = Vec::new();
    let mut rows_read = session.table.nrows;
    for value in values {
        let rows = match &session.out_of_core {
            // Out of core, checking takes both passes: the design's checks need every row.
            Some(data) => {
                design_out_of_core(&session, data, &value, &mut Timings::default()).map(|o| {
                    rows_read = o.drops.rows_read;
                    (o.warnings, o.rows)
                })
            }
            None => prepare_frame(&session, &value).map(|f| (f.warnings, f.nrows)),
        };
        match rows {
            Ok((found, nrows)) => {
                let new: Vec<Diagnostic> = found
                    .into_iter()
                    .filter(|d| !said.contains(&d.message))
                    .collect();
                said.extend(new.iter().map(|d| d.message.clone()));
                warnings.push(new);
                prepared.push((value, nrows));
            }
            Err(e) => {
                return FileCheck {
                    path: path.into(),
                    source,
                    warnings,
                    result: Err(e),
                }
            }
        }
    }
    FileCheck {
        path: path.into(),
        source,
        warnings,
        result: Ok(RowCounts {
            rows_read,
            prepared,
        }),
    }
}
