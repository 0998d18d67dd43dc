//! The command line's edge: the library's typed results (`pipeline::FileFit`, `FileCheck`)
//! rendered as the `tandem` command prints them: reports as text, JSON, Markdown or LaTeX,
//! diagnostics as text with their places in the model file, a folder's files joined in name
//! order with its summary, the stage timings. Owns every string the command prints and whether
//! it succeeded (`Outcome`); must not fit, check or compute anything (it calls `pipeline` for
//! that and only arranges what comes back).

mod check;
mod compare;
mod render;

use std::path::Path;

use crate::data::DataTable;
use crate::diagnostics::{self, Diagnostic, SourceFile};
use crate::pipeline::{self, FileFit, FitOptions, Format};
use crate::report::{self, FitReport};

pub use check::check_paths;
pub use compare::compare_paths;

/// What a command produced: text for stdout and stderr, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn failure(stderr: String) -> Self {
        Outcome {
            success: false,
            stdout: String::new(),
            stderr,
        }
    }
}

/// Diagnostics as text, shown in the model text when there is one.
fn render_diagnostics(path: &Path, source: Option<&str>, found: &[Diagnostic]) -> String {
    let file = source.map(|text| SourceFile { path, text });
    diagnostics::render(found, file.as_ref())
}

/// `tandem fit FILE`: one model file fitted and rendered.
pub fn fit_file(path: &Path, options: &FitOptions) -> Outcome {
    render_file(&pipeline::fit_file(path, options), options)
}

/// Model text with data in memory, fitted and rendered as `tandem fit` prints a file.
pub fn fit_source(name: &str, source: &str, table: DataTable, options: &FitOptions) -> Outcome {
    render_file(&pipeline::fit_source(name, source, table, options), options)
}

/// `tandem fit PATH`: a model file, or every model file of a folder as one document ending
/// with the folder's summary.
pub fn fit_path(path: &Path, options: &FitOptions) -> Outcome {
    let fitted = match pipeline::fit_path(path, options) {
        Ok(fitted) => fitted,
        Err(d) => return Outcome::failure(diagnostics::render(&[d], None)),
    };
    let mut total = Outcome {
        success: true,
        ..Outcome::default()
    };
    let folder_json = fitted.folder && options.format == Format::Json;
    let mut documents = Vec::new();
    for (k, file) in fitted.files.iter().enumerate() {
        let outcome = render_file(file, options);
        if k > 0 && options.format != Format::Json {
            total.stdout.push('\n');
        }
        total.success &= outcome.success;
        if folder_json {
            documents.push(folder_entry(&file.path, &outcome));
        } else {
            total.stdout.push_str(&outcome.stdout);
        }
        total.stderr.push_str(&outcome.stderr);
    }
    if folder_json {
        let document = serde_json::json!({ "models": documents });
        total.stdout = serde_json::to_string_pretty(&document).unwrap_or_default();
        total.stdout.push('\n');
    }
    // A folder ends with its files' headline numbers in one table.
    if fitted.folder {
        let reports: Vec<&FitReport> = (fitted.files.iter())
            .flat_map(|f| f.fits.iter().filter_map(|v| v.result.as_ref().ok()))
            .collect();
        let summary = match options.format {
            Format::Text => report::summary_text(&reports),
            Format::Markdown => report::summary_markdown(&reports),
            Format::Json | Format::Latex => String::new(),
        };
        if !summary.is_empty() {
            total.stdout.push('\n');
            total.stdout.push_str(&summary);
        }
    }
    total
}

/// One model file of a folder in the folder's JSON document: its path, whether it ran through,
/// its report (the single-file document, `null` when there is none) and what it wrote to stderr
/// (errors and warnings, as rendered there).
fn folder_entry(file: &Path, outcome: &Outcome) -> serde_json::Value {
    let report: serde_json::Value = if outcome.stdout.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&outcome.stdout).unwrap_or(serde_json::Value::Null)
    };
    serde_json::json!({
        "file": file.display().to_string(),
        "status": if outcome.success { "ok" } else { "failed" },
        "report": report,
        "messages": outcome.stderr,
    })
}

/// One file's fit as the command prints it: the reports on stdout; on stderr the model's
/// warnings, each value's errors, the fit's warnings (when the report is not text, which prints
/// them itself), a failure to converge, and with `--timings` the stages' wall times.
fn render_file(file: &FileFit, options: &FitOptions) -> Outcome {
    let source = file.source.as_deref();
    if !file.errors.is_empty() {
        return Outcome::failure(render_diagnostics(&file.path, source, &file.errors));
    }
    let mut stderr = render_diagnostics(&file.path, source, &file.warnings);
    let mut reports = Vec::new();
    let mut success = true;
    for fit in &file.fits {
        let label = pipeline::vary_label(&fit.value);
        match &fit.result {
            Ok(report) => {
                // The text report prints its warnings; a JSON, Markdown or LaTeX report going
                // to a file or a pipe also has them said on stderr.
                if options.format != Format::Text {
                    for warning in &report.fit.warnings {
                        stderr.push_str(&format!(
                            "warning: {}{label}: {}\n",
                            file.path.display(),
                            warning.message
                        ));
                    }
                }
                if !report.fit.converged && !options.report_anyway {
                    success = false;
                    stderr.push_str(&format!(
                        "error: the optimizer did not converge for {}{label}; the report is printed but should not be trusted (use --report-anyway to exit 0)\n",
                        file.path.display(),
                    ));
                }
                reports.push((fit.value.clone(), report.clone()));
            }
            Err(e) => {
                stderr.push_str(&render_diagnostics(&file.path, source, e));
                success = false;
            }
        }
    }
    let started = std::time::Instant::now();
    let stdout = render::reports(&reports, options);
    if options.timings {
        let mut stages = file.timings.clone();
        stages.push(("render report".into(), started.elapsed().as_secs_f64()));
        stderr.push_str(&render::timings(&stages));
    }
    Outcome {
        success,
        stdout,
        stderr,
    }
}
