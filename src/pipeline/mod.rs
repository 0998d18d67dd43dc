//! The driver: runs the stages for one model file (or a folder of them), in the order
//! ARCHITECTURE.md lists them: parse, read, check, prepare, design, estimate, infer, report.
//! Owns that order, the command line's overrides (applied once to the checked model:
//! `ModelSpec::with_overrides`) and the collection of every stage's results and diagnostics
//! into typed values (`Fitted`, `FileFit`, `PathFit`, `FileCheck`). It must not contain
//! statistics (tests, df, covariances, refits and intervals are `infer`'s; each file here only
//! calls stages and arranges what they return) and must not render: `cli` turns its values into
//! text.

mod assemble;
mod bootstrap_run;
mod check_files;
mod compare;
mod defined;
mod figures;
mod files;
mod folder;
mod glmm;
mod prepared;
mod rows;
mod session;
mod timings;
mod vary;

pub use check_files::{check_paths, FileCheck, RowCounts};
pub use compare::{compare_files, CompareOptions, ComparedFile, Comparison};
pub use folder::{fit_path, PathFit};
pub use prepared::{prepare_model, prepare_model_file, PreparedModel};
pub use vary::vary_label;

use std::path::{Path, PathBuf};

use crate::check::{self, CheckOptions, Schema};
use crate::data::{self, DataTable};
use crate::design::{self, Design};
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::Fit;
use crate::estimate::{self};
use crate::infer::{self};
use crate::model::Overrides;
use crate::prepare::AnalysisFrame;
use crate::report::{self, FitReport};
use crate::syntax::{self, ast::Method};
use assemble::{assemble, locate_flat_directions, ranef_rows};
use bootstrap_run::bootstrap_intervals;
use defined::defined_quantities;
use defined::DefinedOutput;
use figures::{figure_stem, write_figures};
use files::LoadedModel;
use rows::{design_for, design_out_of_core, prepare_frame};
use session::{open, seed_used, Session};
use timings::Timings;
use vary::vary_values;

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
    /// How `cli` renders the reports; the typed results do not depend on it.
    pub format: Format,
    pub draws: Option<u64>,
    pub seed: Option<u64>,
    /// `name=value`: fit only these values of the file's `vary` statement.
    pub vary: Vec<String>,
    /// Write figures (SVG) into this folder (`--plot DIR`).
    pub plot: Option<PathBuf>,
    /// The folder being fitted, when `fit_path` was given one: figures are then named by each
    /// model file's path within it, so that two files with the same stem do not share names.
    pub folder: Option<PathBuf>,
    /// Put the conditional modes of the random effects into the report (`--ranef`).
    pub ranef: bool,
    pub robust_se: bool,
    /// `cli` exits 0 although a report did not converge (`--report-anyway`).
    pub report_anyway: bool,
    pub progress: bool,
    /// Append the wall time of each stage to stderr (`--timings`).
    pub timings: bool,
    /// Read the data file out of core (in pieces, in two passes) even if it fits in memory;
    /// a CSV file too large for memory is read so anyway (`--out-of-core`).
    pub out_of_core: bool,
    /// R's significance stars in the text report's fixed effects (`--stars`); Markdown and
    /// LaTeX keep exact p-values only, as APA tables do.
    pub stars: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            data: None,
            method: None,
            format: Format::Text,
            draws: None,
            seed: None,
            vary: Vec::new(),
            plot: None,
            folder: None,
            ranef: false,
            robust_se: false,
            report_anyway: false,
            progress: false,
            timings: false,
            out_of_core: false,
            stars: false,
        }
    }
}

/// One model file run as the command line runs it: every `vary` value fitted (or its errors),
/// the model's warnings, and the stages' wall times. Nothing is rendered (`cli` does that).
#[derive(Debug)]
pub struct FileFit {
    pub path: PathBuf,
    /// The model text, to show located diagnostics in it; `None` when it could not be read.
    pub source: Option<String>,
    /// What stopped the file before any value was fitted: it could not be read, parsed or
    /// checked, or `--vary` asks for a value it does not have. Empty when values were fitted.
    pub errors: Vec<Diagnostic>,
    /// The model's own warnings (`check`'s), once for all values.
    pub warnings: Vec<Diagnostic>,
    /// Each `vary` value's report, or the errors of the stage that failed for it, in order.
    pub fits: Vec<ValueOutcome>,
    /// Wall time per stage in the order the stages ran (`--timings`; empty without).
    pub timings: Vec<(String, f64)>,
}

/// One `vary` value of a `FileFit` (`value` is `None` without a `vary` statement).
#[derive(Debug)]
pub struct ValueOutcome {
    pub value: Option<(String, f64)>,
    pub result: Result<FitReport, Vec<Diagnostic>>,
}

impl FileFit {
    /// A file that stopped before any value was fitted.
    fn stopped(path: PathBuf, source: Option<String>, errors: Vec<Diagnostic>) -> Self {
        FileFit {
            path,
            source,
            errors,
            warnings: Vec::new(),
            fits: Vec::new(),
            timings: Vec::new(),
        }
    }
}

/// Fit one file: once, or once per value of its `vary` statement.
pub fn fit_file(path: &Path, options: &FitOptions) -> FileFit {
    let timings = Timings::new(options.timings);
    // One spinner at a time: a folder's files may run concurrently.
    let mut timings = timings.with_spinner(path, options.progress && options.folder.is_none());
    let session = match open(
        path,
        options.data.as_deref(),
        options.out_of_core,
        &mut timings,
    ) {
        Ok(s) => s,
        Err(e) => return FileFit::stopped(e.path, e.text, e.diagnostics),
    };
    fit_session(session, options, timings)
}

/// The designs of a model file (one per `vary` value) with the method it asks for, through the
/// same stages as `fit` up to the design pass: for tests, benchmarks and tools that work on the
/// estimator directly. An error is every diagnostic of the stage that failed.
pub fn designs_of_file(path: &Path) -> Result<Vec<(Design, Method)>, Vec<Diagnostic>> {
    let session = open(path, None, false, &mut Timings::default()).map_err(|e| e.diagnostics)?;
    let spec = &session.checked.spec;
    vary_values(&session, &[])?
        .iter()
        .map(|value| {
            let design = match &session.out_of_core {
                Some(data) => design_out_of_core(&session, data, value, &mut Timings::default())
                    .map(|read| read.design),
                None => prepare_frame(&session, value).and_then(|f| design::build(spec, &f)),
            };
            Ok((design?, spec.method))
        })
        .collect()
}

/// A model fitted through the library: one report per `vary` value, in the file's order, and
/// the model's own warnings, located in its text as `check` found them (each report carries the
/// warnings of its fit in `report.fit.warnings`).
#[derive(Debug, Clone)]
pub struct Fitted {
    pub fits: Vec<ValueFit>,
    pub warnings: Vec<Diagnostic>,
}

/// The fit for one value of the file's `vary` statement (`value` is `None` without one).
/// `report.fit.converged` is the optimizer's verdict: a report that did not converge must not
/// be trusted.
#[derive(Debug, Clone)]
pub struct ValueFit {
    pub value: Option<(String, f64)>,
    pub report: FitReport,
}

/// Fit a model given as text with data already in memory: the library's typed way in, for
/// programs that generate data or model text. `name` stands for the file name in messages; the
/// text's `data` statement, if any, is ignored in favour of `table`. The errors are plain
/// data: every diagnostic of the stage that failed (for each `vary` value that failed); render
/// them with `diagnostics::render` and the source text.
pub fn fit(
    name: &str,
    source: &str,
    table: DataTable,
    options: &FitOptions,
) -> Result<Fitted, Vec<Diagnostic>> {
    fitted(session_from_source(name, source, table)?, options)
}

/// `fit` for a model file on disk, its data read as its `data` statement (or `options.data`)
/// says: the typed counterpart of `fit_file`.
pub fn fit_model_file(path: &Path, options: &FitOptions) -> Result<Fitted, Vec<Diagnostic>> {
    let mut timings = Timings::default();
    let data = options.data.as_deref();
    let session = open(path, data, options.out_of_core, &mut timings).map_err(|e| e.diagnostics)?;
    fitted(session, options)
}

/// Each `vary` value of a session fitted, as typed values.
fn fitted(session: Session, options: &FitOptions) -> Result<Fitted, Vec<Diagnostic>> {
    let session = with_overrides(session, options);
    let mut timings = Timings::default();
    let mut fits = Vec::new();
    let mut errors = Vec::new();
    for value in vary_values(&session, &options.vary)? {
        match fit_once(&session, &value, options, &mut timings) {
            Ok(report) => fits.push(ValueFit { value, report }),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Fitted {
        fits,
        warnings: session.checked.warnings,
    })
}

/// `fit` run as the command line runs a file (`fit_file`), for model text with data in memory.
pub fn fit_source(name: &str, source: &str, table: DataTable, options: &FitOptions) -> FileFit {
    let session = match session_from_source(name, source, table) {
        Ok(session) => session,
        Err(errors) => {
            return FileFit::stopped(name.into(), Some(source.to_string()), errors);
        }
    };
    let timings = Timings::new(options.timings);
    fit_session(session, options, timings)
}

/// Model text parsed and checked against data in memory.
fn session_from_source(
    name: &str,
    source: &str,
    table: DataTable,
) -> Result<Session, Vec<Diagnostic>> {
    let model = LoadedModel {
        path: PathBuf::from(name),
        text: source.to_string(),
        ast: syntax::parse(source)?,
        sha256: data::sha256_hex(source.as_bytes()),
    };
    let options = CheckOptions {
        data_override: true,
    };
    let checked = check::check_with(&model.ast, &Schema::from_table(&table), options)?;
    // Data built in memory has no file to hash.
    Ok(Session {
        data_sha256: None,
        model,
        table,
        checked,
        out_of_core: None,
    })
}

/// The command line's choices in place of the file's, once: every stage reads the model.
fn with_overrides(mut session: Session, options: &FitOptions) -> Session {
    let overrides = Overrides {
        method: options.method,
        draws: options.draws.map(|d| d as usize),
        seed: options.seed,
    };
    session.checked.spec = session.checked.spec.with_overrides(overrides);
    session
}

/// Fit a parsed, checked session once per `vary` value.
fn fit_session(session: Session, options: &FitOptions, mut timings: Timings) -> FileFit {
    let session = with_overrides(session, options);
    let path = session.model.path.clone();
    let source = Some(session.model.text.clone());
    let values = match vary_values(&session, &options.vary) {
        Ok(v) => v,
        Err(e) => return FileFit::stopped(path, source, e),
    };
    let fits = (values.into_iter())
        .map(|value| ValueOutcome {
            result: fit_once(&session, &value, options, &mut timings),
            value,
        })
        .collect();
    FileFit {
        path,
        source,
        errors: Vec::new(),
        warnings: session.checked.warnings,
        fits,
        timings: std::mem::take(&mut timings.stages),
    }
}

/// Prepare, design, fit and test one model for one `vary` value: the stages of
/// ARCHITECTURE.md, each a call.
fn fit_once(
    session: &Session,
    value: &Option<(String, f64)>,
    options: &FitOptions,
    timings: &mut Timings,
) -> Result<FitReport, Vec<Diagnostic>> {
    let label = vary_label(value);
    let family = glmm::non_gaussian(&session.checked.spec).cloned();
    if let Some(family) = &family {
        let refused = glmm::refusals(session, family, options);
        if !refused.is_empty() {
            return Err(refused);
        }
    }
    let (frame, design, rows) = design_for(session, value, timings)?;
    let mut warnings: Vec<Diagnostic> = (session.checked.warnings.iter())
        .chain(rows.warnings.iter())
        .cloned()
        .collect();
    let mut approximation = None;
    let mut tested = match (&family, frame.as_ref()) {
        (Some(family), Some(frame)) => {
            let spec = &session.checked.spec;
            let (tested, how) = glmm::estimate_glmm(spec, frame, &design, family)?;
            timings.lap(format!("fit{label}"));
            approximation = Some(how);
            tested
        }
        (Some(_), None) => {
            return Err(vec![Diagnostic::error(
                "a non-Gaussian family needs the rows in memory",
                Location::None,
            )]);
        }
        (None, _) => estimate_and_test(session, &design, &label, timings, &mut warnings)?,
    };
    let mut defined = if session.checked.spec.definitions.is_empty() {
        DefinedOutput::default()
    } else {
        let joint = tested.joint_covariance.take();
        defined_quantities(
            session,
            value,
            (frame.as_ref(), &design),
            &tested.fit,
            joint,
            options,
            &mut warnings,
        )?
    };
    let standard_errors = robust_standard_errors(
        session,
        frame.as_ref(),
        &design,
        &mut tested,
        options,
        &mut warnings,
    );
    let original = (frame.as_ref(), &design, &tested.fit);
    let bootstrap = bootstrap_intervals(
        session,
        value,
        original,
        options,
        &mut defined,
        &mut warnings,
    )?;
    let title = format!("{}{label}", session.model.path.display());
    let mut report = assemble(session, &rows, &design, &tested, title, warnings);
    timings.lap(format!("assemble report{label}"));
    report.fit.standard_errors = standard_errors;
    report.fit.approximation = approximation;
    add_bootstrap(&mut report, bootstrap, (session, &design));
    let figures = (frame.as_ref(), &design, &tested.fit);
    add_figures(
        &mut report,
        session,
        value,
        figures,
        defined,
        options,
        timings,
    );
    Ok(report)
}

/// A fit with its fixed-effect tests, and the covariance of all parameters when the fit
/// computed it (the joint fit of a random coefficient as a predictor).
struct TestedFit {
    fit: Fit,
    tests: Vec<infer::CoefficientTest>,
    joint_covariance: Option<nalgebra::DMatrix<f64>>,
}

/// The fit and its fixed-effect tests. A random coefficient as a predictor is a joint ML fit,
/// which computes the covariance of all parameters itself, with z tests; other fits are tested
/// with the df `infer::fixed_effects` chooses.
fn estimate_and_test(
    session: &Session,
    design: &Design,
    label: &str,
    timings: &mut Timings,
    warnings: &mut Vec<Diagnostic>,
) -> Result<TestedFit, Vec<Diagnostic>> {
    let spec = &session.checked.spec;
    if design.latent.is_some() {
        let joint = estimate::fit_latent(design, spec.method)?;
        let tests = infer::fixed_effects::z_tests(&joint.fit);
        return Ok(TestedFit {
            fit: joint.fit,
            tests,
            joint_covariance: Some(joint.covariance),
        });
    }
    let (mut fit, deviance) = estimate::fit_with_deviance(design, spec.method, None)?;
    locate_flat_directions(&mut fit, spec, &session.model);
    timings.lap(format!("fit{label}"));
    let mut notes = Vec::new();
    let tests =
        infer::fixed_effects::fixed_effect_tests(design, &fit, &deviance, spec.method, &mut notes);
    warnings.extend(unlocated(notes));
    timings.lap(format!("df (Satterthwaite){label}"));
    Ok(TestedFit {
        fit,
        tests,
        joint_covariance: None,
    })
}

/// With `--se cr2`, the fixed-effect tests replaced by the cluster-robust ones and the note
/// saying so; or a warning why they are model-based.
fn robust_standard_errors(
    session: &Session,
    frame: Option<&AnalysisFrame>,
    design: &Design,
    tested: &mut TestedFit,
    options: &FitOptions,
    warnings: &mut Vec<Diagnostic>,
) -> Option<String> {
    if !options.robust_se {
        return None;
    }
    if design.latent.is_some() {
        warnings.extend(unlocated([
            "--se cr2 is not available for a random coefficient as a predictor; the standard errors are model-based"
                .to_string(),
        ]));
        return None;
    }
    let spec = &session.checked.spec;
    if let Some(series) = spec.residual.iter().find_map(|r| r.ar1_within.as_ref()) {
        warnings.extend(unlocated([format!(
            "--se cr2 with AR(1) residuals within `{series}` is not supported yet; the standard \
             errors are model-based"
        )]));
        return None;
    }
    use infer::fixed_effects::{robust_tests, robust_unavailable};
    let robust = match frame {
        Some(frame) => robust_tests(spec, frame, design, &tested.fit, &tested.tests),
        None => Err(robust_unavailable(
            "out of core, the rows are not kept in memory",
        )),
    };
    match robust {
        Ok(robust) => {
            tested.tests = robust.tests;
            warnings.extend(unlocated([format!("standard errors: {}", robust.note)]));
            Some(robust.note)
        }
        Err(unavailable) => {
            warnings.push(unavailable);
            None
        }
    }
}

/// The bootstrap's warnings on the report (located at the `interval` statement), then its
/// summary.
fn add_bootstrap(
    report: &mut FitReport,
    bootstrap: Option<report::BootstrapSummary>,
    (session, design): (&Session, &Design),
) {
    if let Some(b) = &bootstrap {
        let warn = |message: String| Diagnostic::warning(message, interval_location(session));
        if b.failed + b.not_converged > 0 {
            report.fit.warnings.push(warn(format!(
                "bootstrap: {} of {} refits failed and {} did not converge; the intervals use \
                 the rest",
                b.failed, b.draws, b.not_converged
            )));
        }
        if b.method == "row bootstrap" && !design.random.is_empty() {
            report.fit.warnings.push(warn(
                "bootstrap: rows are resampled independently although the model has random \
                 effects; `resample = GROUP` resamples whole groups"
                    .to_string(),
            ));
        }
    }
    report.bootstrap = bootstrap;
}

/// Warnings a stage words without a place in the model file.
fn unlocated(messages: impl IntoIterator<Item = String>) -> impl Iterator<Item = Diagnostic> {
    (messages.into_iter()).map(|message| Diagnostic::warning(message, Location::None))
}

/// The file's `interval` statement, where warnings about its draws point.
fn interval_location(session: &Session) -> Location {
    (session.model.ast.statements.iter())
        .find_map(|s| match s {
            syntax::ast::Statement::Interval(interval) => Some(Location::Source(interval.span)),
            _ => None,
        })
        .unwrap_or(Location::None)
}

/// The definitions' and mediation rows, the conditional modes (`--ranef`), the figures
/// (`--plot`, their failures as warnings) and the seed behind the draws.
fn add_figures(
    report: &mut FitReport,
    session: &Session,
    value: &Option<(String, f64)>,
    (frame, design, fit): (Option<&AnalysisFrame>, &Design, &Fit),
    defined: DefinedOutput,
    options: &FitOptions,
    timings: &mut Timings,
) {
    let spec = &session.checked.spec;
    report.defined = defined.rows;
    report.mediation = defined.mediation;
    if options.ranef {
        report.ranef = Some(ranef_rows(spec, design, fit));
    }
    if let Some(dir) = &options.plot {
        let (written, points) = write_figures(
            dir,
            &figure_stem(&session.model.path, options.folder.as_deref()),
            &session.model.path,
            value,
            (spec, frame, design, fit),
            &defined.figures,
        );
        report.fit.warnings.extend(written);
        report.residual_figure = points;
        timings.lap(format!("figures{}", vary_label(value)));
    }
    report.tandem.seed = seed_used(spec);
}
