//! `tandem check`: each file's check (`pipeline::FileCheck`) as the command prints it: an `ok:`
//! line with the rows read and prepared on stdout, its warnings and errors on stderr. Must not
//! check anything itself.

use std::path::{Path, PathBuf};

use super::{render_diagnostics, Outcome};
use crate::pipeline::{self, FileCheck};

/// Parse and check each model file (folders: every `*.tandem` inside) against its data; an
/// outcome per model file (or per path that names none).
pub fn check_paths(paths: &[PathBuf], data: Option<&Path>, out_of_core: bool) -> Vec<Outcome> {
    (pipeline::check_paths(paths, data, out_of_core).iter())
        .map(render_check)
        .collect()
}

fn render_check(file: &FileCheck) -> Outcome {
    let source = file.source.as_deref();
    let mut stderr = String::new();
    for warnings in &file.warnings {
        stderr.push_str(&render_diagnostics(&file.path, source, warnings));
    }
    match &file.result {
        Ok(counts) => {
            let rows: Vec<String> = (counts.prepared.iter())
                .map(|(value, nrows)| format!("{nrows}{}", pipeline::vary_label(value)))
                .collect();
            Outcome {
                success: true,
                stdout: format!(
                    "ok: {} ({} rows read; {} rows after preparation)\n",
                    file.path.display(),
                    counts.rows_read,
                    rows.join(", ")
                ),
                stderr,
            }
        }
        Err(errors) => {
            stderr.push_str(&render_diagnostics(&file.path, source, errors));
            Outcome {
                success: false,
                stdout: String::new(),
                stderr,
            }
        }
    }
}
