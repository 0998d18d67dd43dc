//! The `check` command: every model file a path names parsed, checked against its data and
//! prepared (for each `vary` value), its warnings said once. Must not fit.

use std::path::{Path, PathBuf};

use super::files::{model_files, render_plain};
use super::rows::{design_out_of_core, prepare_frame};
use super::session::open;
use super::timings::Timings;
use super::vary::{vary_label, vary_values};
use super::Outcome;
use crate::diagnostics::Diagnostic;

/// Parse and check each model file (folders: every `*.tandem` inside) against its data,
/// including the data-dependent checks after preparation.
pub fn check_paths(paths: &[PathBuf], data: Option<&Path>, out_of_core: bool) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for path in paths {
        let files = match model_files(path) {
            Ok(files) => files,
            Err(d) => {
                outcomes.push(Outcome::failure(render_plain(&[d])));
                continue;
            }
        };
        for file in files {
            outcomes.push(check_one(&file, data, out_of_core));
        }
    }
    outcomes
}

fn check_one(path: &Path, data: Option<&Path>, out_of_core: bool) -> Outcome {
    let session = match open(path, data, out_of_core, &mut Timings::default()) {
        Ok(s) => s,
        Err(e) => return Outcome::failure(e.render()),
    };
    let values = match vary_values(&session, &[]) {
        Ok(v) => v,
        Err(e) => return Outcome::failure(session.model.render(&e)),
    };
    let mut stderr = session.model.render(&session.checked.warnings);
    let mut rows = Vec::new();
    // A warning that every `vary` value raises is said once.
    let mut said: Vec<String> = Vec::new();
    let mut rows_read = session.table.nrows;
    for value in &values {
        let prepared = match &session.out_of_core {
            // Out of core, checking takes both passes: the design's checks need every row.
            Some(data) => {
                design_out_of_core(&session, data, value, &mut Timings::default()).map(|o| {
                    rows_read = o.drops.rows_read;
                    (o.warnings, o.rows)
                })
            }
            None => prepare_frame(&session, value).map(|f| (f.warnings, f.nrows)),
        };
        match prepared {
            Ok((warnings, nrows)) => {
                let new: Vec<Diagnostic> = warnings
                    .into_iter()
                    .filter(|d| !said.contains(&d.message))
                    .collect();
                said.extend(new.iter().map(|d| d.message.clone()));
                stderr.push_str(&session.model.render(&new));
                rows.push(format!("{}{}", nrows, vary_label(value)));
            }
            Err(e) => {
                stderr.push_str(&session.model.render(&e));
                return Outcome {
                    success: false,
                    stdout: String::new(),
                    stderr,
                };
            }
        }
    }
    Outcome {
        success: true,
        stdout: format!(
            "ok: {} ({} rows read; {} rows after preparation)\n",
            path.display(),
            rows_read,
            rows.join(", ")
        ),
        stderr,
    }
}
