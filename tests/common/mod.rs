//! Test support: the repository's paths and reference numbers, comparisons with a relative
//! tolerance, thread pools of a given size, and models taken through the real front end. A test
//! that works on a later stage (design, estimate, infer) gets its `ModelSpec` and
//! `AnalysisFrame` from model text in tandem's own language, parsed, checked and prepared by
//! `pipeline::prepare_model` exactly as `tandem fit` would, its data read by the CSV reader the
//! command line uses: there is no second parser or reader here to drift from the real ones.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use tandem::data::{read_csv, Column, DataTable};
use tandem::model::ModelSpec;
use tandem::pipeline::{prepare_model, FitOptions};
use tandem::prepare::AnalysisFrame;
use tandem::syntax::ast::Method;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn reference(file: &str, key: &str) -> Value {
    reference_file(file)[key].clone()
}

/// A whole reference file of `tests/reference`.
pub fn reference_file(file: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/reference").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON number (NaN for null or anything else).
pub fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// A data file of `models/data`, read as the command line reads it.
pub fn data_table(relative: &str) -> DataTable {
    let path = root().join("models/data").join(relative);
    read_csv(&path).unwrap_or_else(|d| panic!("{relative}: {}", d.message))
}

/// Model text (its `data` statement, if any, ignored) against `table`, through the parser, the
/// checker and the preparation of `fit`: the checked model and the rows its design pass reads.
/// A model that does not check or prepare fails the test with the diagnostics as rendered.
pub fn prepared_table(source: &str, table: DataTable) -> (ModelSpec, AnalysisFrame) {
    let prepared = prepare_model("model.tandem", source, table, &FitOptions::default())
        .unwrap_or_else(|errors| {
            let path = std::path::Path::new("model.tandem");
            let file = tandem::diagnostics::SourceFile { path, text: source };
            panic!(
                "the model does not prepare:\n{}",
                tandem::diagnostics::render(&errors, Some(&file))
            )
        });
    (prepared.spec, prepared.frame)
}

/// `prepared_table` with the data file `models/data/<data>`.
pub fn prepared(source: &str, data: &str) -> (ModelSpec, AnalysisFrame) {
    prepared_table(source, data_table(data))
}

/// The `estimate` statement that asks for `method`, for model text written per method.
pub fn estimate(method: Method) -> &'static str {
    match method {
        Method::Ml => "estimate ml",
        Method::Reml => "estimate reml",
    }
}

/// The numbers of a numeric column of a prepared frame.
pub fn numeric<'a>(frame: &'a AnalysisFrame, name: &str) -> &'a [f64] {
    numbers(frame.column(name), name)
}

/// The numbers of a numeric column of a data table.
pub fn table_numeric<'a>(table: &'a DataTable, name: &str) -> &'a [f64] {
    numbers(table.column(name), name)
}

fn numbers<'a>(column: Option<&'a Column>, name: &str) -> &'a [f64] {
    match column {
        Some(Column::Numeric(v)) => v,
        _ => panic!("{name} is not a numeric column"),
    }
}

/// `f` run on a thread pool of its own with `threads` threads, for the tests that the digits do
/// not depend on the thread count.
pub fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// A model file (path relative to the repository) fitted through the typed library API
/// (`fit_model_file`, no rendering), with `method` and `--vary` values if given: the first
/// fitted value's report as the JSON contract (docs/json.md) has it. Every value must converge.
pub fn fitted_json(relative: &str, method: Option<Method>, vary: &[&str]) -> Value {
    let options = tandem::FitOptions {
        method,
        vary: vary.iter().map(|s| s.to_string()).collect(),
        ..tandem::FitOptions::default()
    };
    let path = root().join(relative);
    let fitted = tandem::pipeline::fit_model_file(&path, &options).unwrap_or_else(|errors| {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let source = tandem::diagnostics::SourceFile {
            path: &path,
            text: &text,
        };
        panic!(
            "{relative} failed:\n{}",
            tandem::diagnostics::render(&errors, Some(&source))
        )
    });
    let report = &fitted.fits[0].report;
    // As the command line's exit status does: a report that did not converge is a failure.
    assert!(
        fitted.fits.iter().all(|f| f.report.fit.converged),
        "{relative}: the optimizer did not converge:\n{:?}",
        report.fit.warnings
    );
    serde_json::to_value(report).unwrap()
}

/// Asserts |ours − theirs| ≤ relative·max(|theirs|, 1e-8), naming the quantity and both numbers.
pub fn assert_close(what: &str, ours: f64, theirs: f64, relative: f64) {
    let scale = theirs.abs().max(1e-8);
    assert!(
        (ours - theirs).abs() <= relative * scale,
        "{what}: tandem {ours} vs R {theirs} (relative difference {:.2e} > {relative:.0e})",
        (ours - theirs).abs() / scale
    );
}

/// |a − b| ≤ tol·max(|b|, floor): a relative tolerance that does not explode at zero.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-8)
}

/// A model file fitted through the typed library API with `options` (`fit_model_file`, no
/// rendering): each `vary` value's report, in order. Errors fail the test, shown as the command
/// line shows them; unless `options.report_anyway`, every report must have converged, as the
/// command's exit status requires.
pub fn fitted_reports(
    path: &std::path::Path,
    options: &tandem::FitOptions,
) -> Vec<tandem::FitReport> {
    let fitted = tandem::pipeline::fit_model_file(path, options).unwrap_or_else(|errors| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let source = tandem::diagnostics::SourceFile { path, text: &text };
        panic!(
            "{} failed:\n{}",
            path.display(),
            tandem::diagnostics::render(&errors, Some(&source))
        )
    });
    for value in &fitted.fits {
        assert!(
            options.report_anyway || value.report.fit.converged,
            "{}: the optimizer did not converge:\n{:?}",
            path.display(),
            value.report.fit.warnings
        );
    }
    fitted.fits.into_iter().map(|value| value.report).collect()
}

/// The first report of `fitted_reports` as the JSON contract (docs/json.md) has it.
pub fn fitted_value(path: &std::path::Path, options: &tandem::FitOptions) -> Value {
    serde_json::to_value(&fitted_reports(path, options)[0]).unwrap()
}

/// Model text whose data is `data` (relative to `models/data/`), written to a model file of
/// its own under the system's temporary directory and fitted as `fitted_value` fits.
pub fn fitted_text(name: &str, source: &str, data: &str, options: &tandem::FitOptions) -> Value {
    let dir = std::env::temp_dir().join(format!("tandem-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.tandem"));
    let data = root().join("models/data").join(data);
    std::fs::write(&path, format!("data \"{}\"\n{source}", data.display())).unwrap();
    let report = fitted_value(&path, options);
    std::fs::remove_file(&path).ok();
    report
}

/// The errors of a model file that cannot be fitted, through the typed library API.
pub fn fit_errors(path: &std::path::Path, options: &tandem::FitOptions) -> Vec<tandem::Diagnostic> {
    match tandem::pipeline::fit_model_file(path, options) {
        Ok(_) => panic!("{} fitted, but errors were expected", path.display()),
        Err(errors) => errors,
    }
}

/// The facial lag-1 model (`models/data/synthetic/facial.csv`): lag 1 of each expression within
/// session ordered by second (missing for a session's first second, which the design drops).
pub const FACIAL_LAG1: &str = "group session
order second
let t_lag = lag(therapist_expr)
let p_lag = lag(patient_expr)
therapist_expr ~ t_lag + p_lag + alliance + t_lag:alliance + p_lag:alliance
    + (1 + t_lag + p_lag | patient) + (1 + t_lag + p_lag | session)
estimate reml";
