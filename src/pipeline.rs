//! Running the stages for one model file (or a folder of them): parse, read, check, prepare,
//! design, estimate, infer, report. Owns the order of the stages and the collection of their
//! diagnostics into an `Outcome`; it must not contain statistics.

use std::path::{Path, PathBuf};

use crate::syntax::ast::Method;

/// What a command produced: text for stdout and stderr, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
    Latex,
}

/// The command line's choices for `fit`.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub data: Option<PathBuf>,
    pub method: Option<Method>,
    pub format: Format,
    pub draws: Option<u64>,
    pub seed: Option<u64>,
    pub vary: Vec<String>,
    pub plot: Option<PathBuf>,
    pub robust_se: bool,
    pub report_anyway: bool,
    pub progress: bool,
}

/// Parse and check each model file (folders: every `*.tandem` inside, sorted) against its data.
pub fn check_paths(_files: &[PathBuf], _data: Option<&Path>) -> Vec<Outcome> {
    vec![Outcome {
        success: false,
        stdout: String::new(),
        stderr: "error: `tandem check` is not built yet\n".into(),
    }]
}

/// Fit one model file, or every model file in a folder.
pub fn fit_path(_path: &Path, _options: &FitOptions) -> Outcome {
    Outcome {
        success: false,
        stdout: String::new(),
        stderr: "error: `tandem fit` is not built yet\n".into(),
    }
}
