//! `tandem compare`: a comparison (`pipeline::Comparison`) as the command prints it: the table
//! on stdout in the chosen format; on stderr each file's diagnostics shown in its own text, the
//! fits' warnings for formats other than text, and a failure to converge. Must not compute.

use std::path::PathBuf;

use super::{render_diagnostics, Outcome};
use crate::pipeline::{self, CompareOptions, Format};
use crate::report::comparison;

/// `tandem compare FILE FILE...`: the files fitted and compared, rendered in `format`;
/// `report_anyway` exits 0 although a fit did not converge.
pub fn compare_paths(
    paths: &[PathBuf],
    options: &CompareOptions,
    format: Format,
    report_anyway: bool,
) -> Outcome {
    let compared = pipeline::compare_files(paths, options);
    let mut stderr = String::new();
    for file in &compared.files {
        let source = file.source.as_deref();
        stderr.push_str(&render_diagnostics(&file.path, source, &file.warnings));
        stderr.push_str(&render_diagnostics(&file.path, source, &file.errors));
    }
    let Some(report) = &compared.report else {
        return Outcome::failure(stderr);
    };
    let mut success = !compared.failed();
    if format != Format::Text {
        for warning in &report.warnings {
            stderr.push_str(&format!("warning: {warning}\n"));
        }
    }
    for row in report.comparisons.iter().filter(|r| !r.converged) {
        if !report_anyway {
            success = false;
        }
        stderr.push_str(&format!(
            "error: the optimizer did not converge for {}; the comparison is printed but should \
             not be trusted (use --report-anyway to exit 0)\n",
            row.model
        ));
    }
    let mut stdout = match format {
        Format::Text => comparison::text(report),
        Format::Json => comparison::json(report),
        Format::Markdown => comparison::markdown(report),
        Format::Latex => comparison::latex(report),
    };
    if format == Format::Json {
        stdout.push('\n');
    }
    Outcome {
        success,
        stdout,
        stderr,
    }
}
