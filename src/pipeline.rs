//! Running the stages for one model file (or a folder of them): parse, read, check, prepare,
//! design, estimate, infer, report. Owns the order of the stages, `--vary`/`--method`/`--data`
//! overrides, and the collection of every stage's diagnostics into an `Outcome`; it must not
//! contain statistics.

use std::path::{Path, PathBuf};

use nalgebra::DMatrix;

use crate::check::{self, CheckOptions, CheckedModel, Schema};
use crate::data::{self, DataTable};
use crate::design::{self, Design};
use crate::diagnostics::{self, Diagnostic, Location, SourceFile};
use crate::estimate::{self, Fit, ProfiledDeviance};
use crate::infer::bootstrap::{self, Replicate, Resampling, Settings as BootstrapSettings};
use crate::infer::cluster_robust::{cluster_robust, Adjustment};
use crate::infer::defined::DefinedQuantities;
use crate::infer::mediation::{MediationPlan, INDIRECT_NAMES, TOTAL_NAME};
use crate::infer::{self, DegreesOfFreedom, Satterthwaite, VarianceParameters};
use crate::model::IntervalChoice;
use crate::out_of_core;
use crate::parameters::ParameterTable;
use crate::prepare::{self, AnalysisFrame};
use crate::report::{self, FitReport};
use crate::syntax::{
    self,
    ast::{Method, ModelFile, Span, Statement, StringLit},
};

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

/// Wall time per stage, in the order the stages ran (`--timings`), and on a terminal a spinner
/// on stderr naming the file and the last stage finished, so that a stage taking seconds (reading
/// millions of rows, the design pass, the fit) is never silent. The spinner stops when the fit's
/// inference starts: Monte Carlo draws and bootstrap replicates draw their own bars.
#[derive(Debug, Default)]
struct Timings {
    stages: Vec<(String, f64)>,
    last: Option<std::time::Instant>,
    spinner: Option<indicatif::ProgressBar>,
    file: String,
}

impl Drop for Timings {
    fn drop(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }
}

impl Timings {
    fn start() -> Self {
        let mut timings = Timings::default();
        timings.last = Some(std::time::Instant::now());
        timings
    }
    /// With `progress` (stderr is a terminal), the spinner for `file`.
    fn with_spinner(mut self, file: &Path, progress: bool) -> Self {
        if progress {
            let spinner = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            self.file = file.display().to_string();
            spinner.set_message(format!("{}: reading", self.file));
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            self.spinner = Some(spinner);
        }
        self
    }

    /// Close the stage that ran since the previous lap.
    fn lap(&mut self, stage: impl Into<String>) {
        let stage = stage.into();
        if stage.starts_with("df") || stage.starts_with("assemble") {
            if let Some(spinner) = self.spinner.take() {
                spinner.finish_and_clear();
            }
        } else if let Some(spinner) = &self.spinner {
            spinner.set_message(format!("{}: {stage} done", self.file));
        }
        let now = std::time::Instant::now();
        if let Some(last) = self.last {
            self.stages
                .push((stage, now.duration_since(last).as_secs_f64()));
        }
        self.last = Some(now);
    }
    fn render(&self) -> String {
        let total: f64 = self.stages.iter().map(|(_, t)| t).sum();
        let mut out = String::from("timings (wall clock):\n");
        for (stage, t) in &self.stages {
            out.push_str(&format!("  {stage:<32} {:>8.3} s\n", t));
        }
        out.push_str(&format!("  {:<32} {:>8.3} s\n", "total", total));
        out
    }
}

/// A model file read and parsed, with its text for rendering messages.
struct LoadedModel {
    path: PathBuf,
    text: String,
    ast: ModelFile,
    /// SHA-256 of the bytes parsed, for the report's provenance.
    sha256: String,
}

impl LoadedModel {
    /// The file's `data` statement: (path, missing codes, span).
    fn data_statement(&self) -> Option<(&StringLit, &[StringLit], Span)> {
        self.ast.statements.iter().find_map(|s| match s {
            Statement::Data {
                path,
                missing,
                span,
            } => Some((path, missing.as_slice(), *span)),
            _ => None,
        })
    }

    fn render(&self, diagnostics: &[Diagnostic]) -> String {
        let source = SourceFile {
            path: &self.path,
            text: &self.text,
        };
        diagnostics::render(diagnostics, Some(&source))
    }
}

fn render_plain(diagnostics: &[Diagnostic]) -> String {
    diagnostics::render(diagnostics, None)
}

/// The model files a path names: itself, or every `*.tandem` under a folder (recursively),
/// sorted by path.
fn model_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut folders = vec![path.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            Diagnostic::error(
                format!("cannot read the folder: {e}"),
                Location::File(folder.clone()),
            )
        })?;
        for entry in entries.filter_map(Result::ok) {
            let p = entry.path();
            if p.is_dir() {
                folders.push(p);
            } else if p.extension().is_some_and(|x| x == "tandem") {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Diagnostic::error(
            "no `*.tandem` model files in this folder",
            Location::File(path.into()),
        ));
    }
    Ok(files)
}

/// `a/b/../c` → `a/c`, so reports name the data file the way a reader would.
fn tidy_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn load(path: &Path) -> Result<LoadedModel, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        render_plain(&[Diagnostic::error(
            format!("cannot read the model file: {e}"),
            Location::File(path.into()),
        )])
    })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let data_extension = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| DATA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    let parsed = syntax::parse_bytes(&bytes);
    // A data file passed where the model file goes: say so rather than report its first
    // character as a syntax error.
    if data_extension || (parsed.is_err() && looks_like_a_table(&text)) {
        return Err(render_plain(&[Diagnostic::error(
            format!(
                "`{}` looks like a data file, not a model file",
                path.display()
            ),
            Location::File(path.into()),
        )
        .with_hint(format!(
            "pass a model file (`*.tandem`); it names its data with `data \"file.csv\"`, or \
             give the data with `--data {}`",
            path.display()
        ))]));
    }
    match parsed {
        Ok(ast) => Ok(LoadedModel {
            path: path.into(),
            text,
            ast,
            sha256: data::sha256_hex(&bytes),
        }),
        Err(diags) => {
            let source = SourceFile { path, text: &text };
            Err(diagnostics::render(&diags, Some(&source)))
        }
    }
}

/// Extensions of data files, never of model files.
const DATA_EXTENSIONS: [&str; 7] = ["csv", "tsv", "parquet", "arrow", "feather", "gz", "xlsx"];

/// A table's start: the first two non-empty lines split into the same number (≥ 2) of fields by
/// one delimiter, with no model syntax (`~`, `:=`, a comment or a statement word) in them.
fn looks_like_a_table(text: &str) -> bool {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(2)
        .collect();
    if lines.len() < 2 {
        return false;
    }
    let modelish = |l: &str| {
        let t = l.trim_start();
        t.starts_with('#')
            || t.contains('~')
            || t.contains(":=")
            || t.split_whitespace()
                .next()
                .is_some_and(|w| syntax::parse::STATEMENT_KEYWORDS.contains(&w))
    };
    if lines.iter().any(|l| modelish(l)) {
        return false;
    }
    [',', ';', '\t'].iter().any(|d| {
        let n = lines[0].split(*d).count();
        n >= 2 && lines[1].split(*d).count() == n
    })
}

/// The data file a model reads: `--data` if given, else its `data` statement relative to the
/// model file's folder.
fn data_path(model: &LoadedModel, override_path: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = override_path {
        return Some(p.to_path_buf());
    }
    let (path, _, _) = model.data_statement()?;
    let base = model.path.parent().unwrap_or(Path::new("."));
    Some(tidy_path(&base.join(&path.value)))
}

/// When the information matrix of all parameters cannot be formed (residuals correlated within
/// a unit have no row in the parameter table yet), definitions of fixed effects alone still have
/// what they need: the fit's Cov(β), with the variance parameters held at their estimates.
/// Definitions that involve a variance parameter cannot be given an interval then: refused,
/// located at the first of them.
fn fixed_effects_covariance(
    session: &Session,
    fit: &Fit,
    table: &ParameterTable,
    quantities: &infer::defined::DefinedQuantities,
    why: &str,
    warnings: &mut Vec<String>,
) -> Result<DMatrix<f64>, String> {
    let p = fit.fixed.len();
    let n = table.len();
    let jacobian = quantities.jacobian(&table.estimates());
    let names: Vec<&str> = quantities.names().collect();
    let involved: Vec<&str> = (0..jacobian.nrows())
        .filter(|&k| (p..n).any(|j| jacobian[(k, j)] != 0.0))
        .filter_map(|k| names.get(k).copied())
        .collect();
    if let Some(first) = involved.first() {
        let span = session
            .checked
            .spec
            .definitions
            .iter()
            .find(|d| d.name == *first)
            .map(|d| d.span);
        return Err(session.model.render(&[Diagnostic::error(
            format!(
                "`{}` involve{} variance parameters, whose covariance cannot be computed at this \
                 fit: {why}",
                involved.join("`, `"),
                if involved.len() == 1 { "s" } else { "" }
            ),
            span.map_or(Location::File(session.model.path.clone()), Location::Source),
        )
        .with_hint(
            "this model's variance parameters have no joint information matrix with the \
             fixed effects; define the quantity from fixed effects only",
        )]));
    }
    warnings.push(format!(
        "the covariance of all parameters cannot be computed at this fit ({why}); the defined \
         quantities involve fixed effects only and use their covariance Cov(β), the variance \
         parameters held at their estimates"
    ));
    let mut covariance = DMatrix::zeros(n, n);
    covariance
        .view_mut((0, 0), (p, p))
        .copy_from(&fit.beta_covariance);
    Ok(covariance)
}

/// Fixed-effect rows grouped by equation in file order, and within an equation in the order of
/// its formula (the intercept first): a term that shares an earlier equation's coefficient then
/// sits where it was written. A row whose term the formula does not name as such (a factor's
/// level, `SexFemale`) keeps its place after the row before it.
fn in_formula_order(
    spec: &crate::model::ModelSpec,
    rows: Vec<report::FixedRow>,
) -> Vec<report::FixedRow> {
    let mut keyed: Vec<(usize, usize, report::FixedRow)> = Vec::with_capacity(rows.len());
    for (e, equation) in spec.equations.iter().enumerate() {
        let mut last = 0;
        for row in rows.iter().filter(|r| r.equation == equation.outcome) {
            let position = if row.term == "(Intercept)" {
                Some(0)
            } else {
                equation
                    .terms
                    .iter()
                    .position(|t| t.name == row.term)
                    .map(|k| k + 1)
            };
            last = position.unwrap_or(last);
            keyed.push((e, last, row.clone()));
        }
    }
    if keyed.len() != rows.len() {
        // An equation named twice cannot be told apart by its outcome: keep the rows as they are.
        return rows;
    }
    keyed.sort_by_key(|(e, position, _)| (*e, *position));
    keyed.into_iter().map(|(_, _, row)| row).collect()
}

/// The `data` statement names a file that is not there: located at the statement, with the path
/// it resolved to (relative to the model file's folder, not the working directory).
fn missing_data_file(model: &LoadedModel, resolved: &Path) -> Diagnostic {
    let span = model.data_statement().map(|(_, _, span)| span);
    let folder = model
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Diagnostic::error(
        format!("the data file `{}` does not exist", resolved.display()),
        span.map_or(Location::File(model.path.clone()), Location::Source),
    )
    .with_hint(format!(
        "a `data` path is relative to the model file's folder (`{}`), not to the working \
         directory; or pass the data with `--data FILE`",
        folder.display()
    ))
}

/// A model that parsed, whose data were read and whose names resolved.
struct Session {
    model: LoadedModel,
    /// The data; out of core, only the file's first piece, which the model was checked against.
    table: DataTable,
    checked: CheckedModel,
    /// SHA-256 of the data file's bytes (hashed while parsed); `None` for data built in memory
    /// (and out of core, until the passes have read the file).
    data_sha256: Option<String>,
    /// The file is read out of core, in pieces (`out_of_core`), each time it is fitted.
    out_of_core: Option<OutOfCoreData>,
}

/// A data file read out of core.
struct OutOfCoreData {
    path: PathBuf,
    missing: Vec<String>,
    check: CheckOptions,
    /// Why, when the file is too large for memory (for the report's notes).
    why: Option<String>,
}

/// The seed behind the report's random draws: the Monte Carlo interval's or the bootstrap's,
/// after `--seed`; `None` when nothing was drawn.
fn seed_used(spec: &crate::model::ModelSpec, options: &FitOptions) -> Option<u64> {
    match &spec.interval {
        Some(IntervalChoice::MonteCarlo { seed, .. }) if !spec.definitions.is_empty() => {
            Some(options.seed.unwrap_or(*seed))
        }
        Some(IntervalChoice::Bootstrap { seed, .. })
        | Some(IntervalChoice::ParametricBootstrap { seed, .. }) => {
            Some(options.seed.unwrap_or(*seed))
        }
        _ => None,
    }
}

/// Parse, read the data, check. Errors come back rendered.
fn open(
    path: &Path,
    data_override: Option<&Path>,
    force_out_of_core: bool,
    timings: &mut Timings,
) -> Result<Session, String> {
    let model = load(path)?;
    timings.lap("parse model file");
    // Check the file's own statements first so that a model without a `data` statement is told
    // so, located, rather than failing on a missing path.
    let Some(csv) = data_path(&model, data_override) else {
        let schema = Schema::new("the data", Vec::new());
        return Err(match check::check(&model.ast, &schema) {
            Err(diags) => model.render(&diags),
            Ok(_) => model.render(&[Diagnostic::error(
                "the model file has no `data` statement",
                Location::File(model.path.clone()),
            )
            .with_hint("add `data \"file.csv\"` or pass `--data FILE`")]),
        });
    };
    if data_override.is_none() && !csv.exists() {
        return Err(model.render(&[missing_data_file(&model, &csv)]));
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
            return Err(render_plain(&[Diagnostic::error(
                "out of core, only CSV files (plain or gzip-compressed) are read; Parquet and \
                 Arrow files are read whole",
                Location::File(csv.clone()),
            )]));
        }
        let first = out_of_core::first_piece(&csv, &missing).map_err(|d| render_plain(&[d]))?;
        timings.lap("read the data file's first piece (out of core)");
        (first, None)
    } else {
        let (table, digest) =
            data::read_data_with_sha256(&csv, &missing).map_err(|d| render_plain(&[d]))?;
        timings.lap("read data");
        (table, Some(digest))
    };
    let schema = Schema::from_table(&table);
    let checked = check::check_with(&model.ast, &schema, options).map_err(|d| model.render(&d))?;
    timings.lap("check");
    Ok(Session {
        model,
        table,
        checked,
        data_sha256,
        out_of_core,
    })
}

/// The values of the file's `vary` name to fit, restricted by `--vary name=value`.
fn vary_values(
    session: &Session,
    requested: &[String],
) -> Result<Vec<Option<(String, f64)>>, String> {
    let vary = &session.checked.spec.vary;
    let Some(vary) = vary else {
        if let Some(first) = requested.first() {
            return Err(render_plain(&[Diagnostic::error(
                format!("`--vary {first}`: the model file has no `vary` statement"),
                Location::File(session.model.path.clone()),
            )]));
        }
        return Ok(vec![None]);
    };
    let mut chosen = Vec::new();
    for request in requested {
        let parsed = request
            .split_once('=')
            .and_then(|(n, v)| v.trim().parse::<f64>().ok().map(|v| (n.trim(), v)));
        match parsed {
            Some((name, value)) if name == vary.name => chosen.push(value),
            Some((name, _)) => {
                return Err(render_plain(&[Diagnostic::error(
                    format!(
                        "`--vary {request}`: the model varies `{}`, not `{name}`",
                        vary.name
                    ),
                    Location::File(session.model.path.clone()),
                )]))
            }
            None => {
                return Err(render_plain(&[Diagnostic::error(
                    format!(
                        "`--vary {request}`: expected NAME=NUMBER, e.g. `--vary {}=1`",
                        vary.name
                    ),
                    Location::None,
                )]))
            }
        }
    }
    let values = if chosen.is_empty() {
        vary.values.clone()
    } else {
        check_requested_values(session, &chosen)?;
        chosen
    };
    Ok(values
        .into_iter()
        .map(|v| Some((vary.name.clone(), v)))
        .collect())
}

/// `--vary` values pass the checks the file's own `vary` values pass (a `lag` distance of 0 is
/// refused either way, at the `lag`): the file is checked again with them in its `vary`
/// statement.
fn check_requested_values(session: &Session, chosen: &[f64]) -> Result<(), String> {
    use crate::syntax::ast::{Literal, Statement};
    let mut ast = session.model.ast.clone();
    for statement in &mut ast.statements {
        if let Statement::Vary { values, name, .. } = statement {
            *values = chosen
                .iter()
                .map(|&value| Literal::Number {
                    value,
                    span: name.span,
                })
                .collect();
        }
    }
    let options = CheckOptions {
        data_override: true,
    };
    match check::check_with(&ast, &Schema::from_table(&session.table), options) {
        Ok(_) => Ok(()),
        Err(diagnostics) => {
            let errors: Vec<Diagnostic> =
                diagnostics.into_iter().filter(|d| d.is_error()).collect();
            let values: Vec<String> = chosen.iter().map(|v| v.to_string()).collect();
            Err(format!(
                "error: the values given with `--vary` ({}) do not pass the model's checks:\n\n{}",
                values.join(", "),
                session.model.render(&errors)
            ))
        }
    }
}

fn vary_label(value: &Option<(String, f64)>) -> String {
    match value {
        // `{}` would spell out 1e300 digit by digit.
        Some((name, v)) if v.abs() >= 1e15 => format!(" ({name} = {v:e})"),
        Some((name, v)) => format!(" ({name} = {v})"),
        None => String::new(),
    }
}

/// The two passes over a data file read out of core, for one `vary` value: the design and
/// what the report says of the rows.
fn design_out_of_core(
    session: &Session,
    data: &OutOfCoreData,
    value: &Option<(String, f64)>,
    timings: &mut Timings,
) -> Result<out_of_core::OutOfCore, String> {
    let label = vary_label(value);
    let vary: Vec<(String, f64)> = value.iter().cloned().collect();
    let spec = &session.checked.spec;
    let ast = &session.model.ast;
    let render = |d: Vec<Diagnostic>| session.model.render(&d);
    let schema = Schema::from_table(&session.table);
    let plan = out_of_core::plan(ast, spec, &schema).map_err(render)?;
    let source = out_of_core::Source {
        path: &data.path,
        missing: &data.missing,
        schema: &schema,
        check: data.check,
        piece_bytes: out_of_core::piece_bytes(),
    };
    let collected = out_of_core::collect(ast, &source, &plan, &vary).map_err(render)?;
    timings.lap(format!("read and prepare, out of core{label}"));
    let mut result =
        out_of_core::design(ast, spec, &data.path, &plan, collected, &vary).map_err(render)?;
    timings.lap(format!("design pass, out of core{label}"));
    result
        .warnings
        .extend(check::conditional_main_effects_in(spec, &|name| {
            result.ranges.get(name).copied()
        }));
    if let Some(why) = &data.why {
        result.notes.insert(0, why.clone());
    }
    Ok(result)
}

/// Run `prepare` and the data-dependent checks for one `vary` value.
fn prepare_frame(
    session: &Session,
    value: &Option<(String, f64)>,
) -> Result<AnalysisFrame, String> {
    let vary: Vec<(String, f64)> = value.iter().cloned().collect();
    let mut frame = prepare::prepare(&session.model.ast, &session.table, &vary)
        .map_err(|d| session.model.render(&d))?;
    let problems = check::check_frame(&session.checked.spec, &frame);
    if problems.iter().any(Diagnostic::is_error) {
        return Err(session.model.render(&problems));
    }
    let readings = check::conditional_main_effects(&session.checked.spec, &frame);
    frame.warnings.extend(readings);
    Ok(frame)
}

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
        Err(e) => return Outcome::failure(e),
    };
    let values = match vary_values(&session, &[]) {
        Ok(v) => v,
        Err(e) => return Outcome::failure(e),
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
                stderr.push_str(&e);
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

/// Fit one model file, or every model file in a folder.
pub fn fit_path(path: &Path, options: &FitOptions) -> Outcome {
    let files = match model_files(path) {
        Ok(files) => files,
        Err(d) => return Outcome::failure(render_plain(&[d])),
    };
    let mut total = Outcome {
        success: true,
        ..Outcome::default()
    };
    // A figure folder that cannot be made is said per fit, as a warning (`write_figures`).
    if let Some(dir) = &options.plot {
        let _ = std::fs::create_dir_all(dir);
    }
    let folder_options;
    let options = if path.is_dir() {
        folder_options = FitOptions {
            folder: Some(path.to_path_buf()),
            ..options.clone()
        };
        &folder_options
    } else {
        options
    };
    let mut all_reports = Vec::new();
    let folder_json = path.is_dir() && options.format == Format::Json;
    let mut documents = Vec::new();
    for (k, (outcome, reports)) in fit_files(&files, options).into_iter().enumerate() {
        if k > 0 && options.format != Format::Json {
            total.stdout.push('\n');
        }
        total.success &= outcome.success;
        if folder_json {
            documents.push(folder_entry(&files[k], &outcome));
        } else {
            total.stdout.push_str(&outcome.stdout);
        }
        total.stderr.push_str(&outcome.stderr);
        all_reports.extend(reports.into_iter().map(|(_, r)| r));
    }
    if folder_json {
        let document = serde_json::json!({ "models": documents });
        total.stdout = serde_json::to_string_pretty(&document).unwrap_or_default();
        total.stdout.push('\n');
    }
    // A folder ends with its files' headline numbers in one table.
    if path.is_dir() {
        let reports: Vec<&FitReport> = all_reports.iter().collect();
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

/// A data file at least this large is read by one model file at a time, so that a folder never
/// holds several copies of a big table at once (the CSV reader already uses every thread on it).
const LARGE_DATA_BYTES: u64 = 64 << 20;

/// How a folder's file is scheduled: with the other small files at once, or alone with the whole
/// thread pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schedule {
    Concurrent,
    Alone,
}

/// Fit a folder's files, in parallel where it pays, handing the outcomes back in the files'
/// order so that the printed output is byte-for-byte the sequential one.
///
/// Policy (what "where it pays" means):
/// - Small files (most of a model library: milliseconds to a second each, mostly sequential
///   optimizer work) run concurrently, one per pool thread; their inner parallel work (design
///   chunks, CSV chunks) shares the same pool, and every parallel stage is seeded per chunk, so
///   the digits do not depend on which thread runs what.
/// - A file runs alone, with the whole pool, when its data file is large (≥ 64 MiB: reading it
///   once per concurrent file would multiply the memory, and its own reading and design passes
///   already use every thread), when it bootstraps (its replicates already fill the pool, and its
///   progress bar needs the terminal to itself), or when it draws Monte Carlo with a progress bar.
///   The alone files run one after another, after the concurrent batch.
/// - The whole folder runs in sequence with `--timings` (stage wall times measured under
///   contention would mislead) and when `--plot` would write two files' figures under the same
///   name (the later file's figures win, as in a sequential run).
fn fit_files(files: &[PathBuf], options: &FitOptions) -> Vec<(Outcome, VaryReports)> {
    use rayon::prelude::*;
    if files.len() < 2 || options.timings || plot_names_collide(files, options) {
        return files.iter().map(|f| fit_file_reports(f, options)).collect();
    }
    let schedule: Vec<Schedule> = files.iter().map(|f| schedule(f, options)).collect();
    let mut results: Vec<Option<(Outcome, VaryReports)>> = (0..files.len())
        .into_par_iter()
        .map(|k| {
            // `par_iter` over indices keeps each result in its file's slot.
            (schedule[k] == Schedule::Concurrent).then(|| fit_file_reports(&files[k], options))
        })
        .collect();
    for (k, slot) in results.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(fit_file_reports(&files[k], options));
        }
    }
    results.into_iter().flatten().collect()
}

/// Whether a folder's file runs concurrently with others or alone (see `fit_files`). A file that
/// cannot be read or parsed fails at once, so it runs concurrently; its message is the same.
fn schedule(file: &Path, options: &FitOptions) -> Schedule {
    let Ok(model) = load(file) else {
        return Schedule::Concurrent;
    };
    let large = data_path(&model, options.data.as_deref())
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| m.len() >= LARGE_DATA_BYTES);
    let draws = model.ast.statements.iter().find_map(|s| match s {
        Statement::Interval(spec) => Some(spec.method.name.as_str()),
        _ => None,
    });
    let alone = large
        || matches!(draws, Some("bootstrap" | "parametric_bootstrap"))
        || (options.progress && draws == Some("monte_carlo"));
    if alone {
        Schedule::Alone
    } else {
        Schedule::Concurrent
    }
}

/// Whether two files would write figures under the same names (`--plot`): figures are named by
/// the model file's stem.
fn plot_names_collide(files: &[PathBuf], options: &FitOptions) -> bool {
    if options.plot.is_none() {
        return false;
    }
    // Compared as the figures' file names will have them, after unsafe characters are replaced.
    let mut stems: Vec<String> = files
        .iter()
        .map(|f| report::figures::file_safe(&figure_stem(f, options.folder.as_deref())))
        .collect();
    stems.sort();
    stems.windows(2).any(|w| w[0] == w[1])
}

/// Fit one file: once, or once per value of its `vary` statement.
pub fn fit_file(path: &Path, options: &FitOptions) -> Outcome {
    fit_file_reports(path, options).0
}

/// `fit_file`, also handing back the reports (for a folder's summary).
type VaryReports = Vec<(Option<(String, f64)>, FitReport)>;

fn fit_file_reports(path: &Path, options: &FitOptions) -> (Outcome, VaryReports) {
    let timings = if options.timings {
        Timings::start()
    } else {
        Timings::default()
    };
    // One spinner at a time: a folder's files may run concurrently.
    let mut timings = timings.with_spinner(path, options.progress && options.folder.is_none());
    let session = match open(
        path,
        options.data.as_deref(),
        options.out_of_core,
        &mut timings,
    ) {
        Ok(s) => s,
        Err(e) => return (Outcome::failure(e), Vec::new()),
    };
    fit_session(&session, options, timings)
}

/// The designs of a model file (one per `vary` value) with the method it asks for, through the
/// same stages as `fit` up to the design pass: for tests, benchmarks and tools that work on the
/// estimator directly. Errors come back rendered, as `fit` would print them.
pub fn designs_of_file(path: &Path) -> Result<Vec<(Design, Method)>, String> {
    let session = open(path, None, false, &mut Timings::default())?;
    let spec = &session.checked.spec;
    vary_values(&session, &[])?
        .iter()
        .map(|value| {
            let design = match &session.out_of_core {
                Some(data) => {
                    design_out_of_core(&session, data, value, &mut Timings::default())?.design
                }
                None => {
                    let frame = prepare_frame(&session, value)?;
                    design::build(spec, &frame).map_err(|d| session.model.render(&d))?
                }
            };
            Ok((design, spec.method))
        })
        .collect()
}

/// Fit a model given as text with data already in memory (the library's way in, for programs
/// that generate data or model text). `name` stands for the file name in messages; the text's
/// `data` statement, if any, is ignored in favour of `table`.
pub fn fit_source(name: &str, source: &str, table: DataTable, options: &FitOptions) -> Outcome {
    let path = PathBuf::from(name);
    let ast = match syntax::parse(source) {
        Ok(ast) => ast,
        Err(diags) => {
            let file = SourceFile {
                path: &path,
                text: source,
            };
            return Outcome::failure(diagnostics::render(&diags, Some(&file)));
        }
    };
    let model = LoadedModel {
        path,
        text: source.to_string(),
        ast,
        sha256: data::sha256_hex(source.as_bytes()),
    };
    let schema = Schema::from_table(&table);
    let checked = match check::check_with(
        &model.ast,
        &schema,
        CheckOptions {
            data_override: true,
        },
    ) {
        Ok(checked) => checked,
        Err(diags) => return Outcome::failure(model.render(&diags)),
    };
    // Data built in memory has no file to hash.
    let session = Session {
        data_sha256: None,
        model,
        table,
        checked,
        out_of_core: None,
    };
    let timings = if options.timings {
        Timings::start()
    } else {
        Timings::default()
    };
    fit_session(&session, options, timings).0
}

/// Fit a parsed, checked session once per `vary` value and render the reports.
fn fit_session(
    session: &Session,
    options: &FitOptions,
    mut timings: Timings,
) -> (Outcome, VaryReports) {
    let path = session.model.path.as_path();
    let values = match vary_values(session, &options.vary) {
        Ok(v) => v,
        Err(e) => return (Outcome::failure(e), Vec::new()),
    };
    let mut stderr = session.model.render(&session.checked.warnings);
    let mut reports = Vec::new();
    let mut success = true;
    for value in &values {
        match fit_once(session, value, options, &mut timings) {
            Ok((report, converged)) => {
                // The text report prints its warnings; a JSON, Markdown or LaTeX report going
                // to a file or a pipe also has them said on stderr.
                if options.format != Format::Text {
                    for warning in &report.fit.warnings {
                        stderr.push_str(&format!(
                            "warning: {}{}: {warning}\n",
                            path.display(),
                            vary_label(value)
                        ));
                    }
                }
                if !converged && !options.report_anyway {
                    success = false;
                    stderr.push_str(&format!(
                        "error: the optimizer did not converge for {}{}; the report is printed but should not be trusted (use --report-anyway to exit 0)\n",
                        path.display(),
                        vary_label(value)
                    ));
                }
                reports.push((value.clone(), report));
            }
            Err(e) => {
                stderr.push_str(&e);
                success = false;
            }
        }
    }
    let stdout = render_reports(&reports, options);
    timings.lap("render report");
    if options.timings {
        stderr.push_str(&timings.render());
    }
    (
        Outcome {
            success,
            stdout,
            stderr,
        },
        reports,
    )
}

fn render_reports(reports: &[(Option<(String, f64)>, FitReport)], options: &FitOptions) -> String {
    let format = options.format;
    let text_options = report::TextOptions {
        stars: options.stars,
    };
    let render_one = |r: &FitReport| match format {
        Format::Text => report::text_with(r, text_options),
        Format::Json => report::json(r),
        Format::Markdown => report::markdown(r),
        Format::Latex => report::latex(r),
    };
    match reports {
        [] => String::new(),
        [(None, r)] => {
            let mut out = render_one(r);
            if format == Format::Json {
                out.push('\n');
            }
            out
        }
        _ => match format {
            Format::Json => {
                let fits: Vec<serde_json::Value> = reports
                    .iter()
                    .map(|(value, r)| {
                        let mut object = serde_json::Map::new();
                        if let Some((name, x)) = value {
                            // `span = 1` reads back as 1, not 1.0.
                            let x = if x.fract() == 0.0 && x.abs() < 1e15 {
                                serde_json::json!(*x as i64)
                            } else {
                                serde_json::json!(x)
                            };
                            object.insert("values".into(), serde_json::json!({ name: x }));
                        }
                        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(r) {
                            object.extend(fields);
                        }
                        serde_json::Value::Object(object)
                    })
                    .collect();
                let mut out = serde_json::to_string_pretty(&serde_json::json!({ "vary": fits }))
                    .unwrap_or_default();
                out.push('\n');
                out
            }
            _ => {
                let mut out = String::new();
                for (k, (_, r)) in reports.iter().enumerate() {
                    if k > 0 {
                        out.push('\n');
                    }
                    out.push_str(&render_one(r));
                }
                out.push('\n');
                out.push_str(&report::across_values(reports));
                out
            }
        },
    }
}

/// The design for one `vary` value, with the prepared frame when the rows are in memory (the
/// methods that need rows after the fit use it) and what the report says of the rows.
fn design_for(
    session: &Session,
    value: &Option<(String, f64)>,
    options: &FitOptions,
    timings: &mut Timings,
) -> Result<(Option<AnalysisFrame>, Design, RowsRead), String> {
    let label = vary_label(value);
    let spec = &session.checked.spec;
    Ok(match &session.out_of_core {
        None => {
            let frame = prepare_frame(session, value)?;
            timings.lap(format!("prepare{label}"));
            let design = design::build(spec, &frame).map_err(|d| session.model.render(&d))?;
            timings.lap(format!("design pass{label}"));
            let rows = RowsRead {
                drops: frame.drops.clone(),
                warnings: frame.warnings.clone(),
                notes: session.table.notes.clone(),
                sha256: session.data_sha256.clone(),
            };
            (Some(frame), design, rows)
        }
        Some(data) => {
            if bootstrap_choice(spec, options).is_some() {
                return Err(render_plain(&[Diagnostic::error(
                    "out of core, a bootstrap is not available: it refits resampled rows, and \
                     the rows are not kept in memory",
                    Location::File(data.path.clone()),
                )
                .with_hint(
                    "use `interval monte_carlo` (or `delta`), or fit a file that fits in memory",
                )]));
            }
            let read = design_out_of_core(session, data, value, timings)?;
            let rows = RowsRead {
                drops: read.drops,
                warnings: read.warnings,
                notes: read.notes,
                sha256: Some(read.sha256),
            };
            (None, read.design, rows)
        }
    })
}

/// Prepare, design, fit and test one model for one `vary` value.
fn fit_once(
    session: &Session,
    value: &Option<(String, f64)>,
    options: &FitOptions,
    timings: &mut Timings,
) -> Result<(FitReport, bool), String> {
    let label = vary_label(value);
    let spec = &session.checked.spec;
    let method = options.method.unwrap_or(spec.method);
    let (frame, design, rows) = design_for(session, value, options, timings)?;
    let mut warnings: Vec<String> = session
        .checked
        .warnings
        .iter()
        .chain(rows.warnings.iter())
        .map(|d| d.message.clone())
        .collect();
    // The covariance of all parameters: the joint random-coefficient fit computes it itself;
    // other fits get it from the observed information when definitions need it.
    let (fit, mut tests, joint_covariance) = if design.latent.is_some() {
        // A random coefficient as a predictor: joint ML, z tests from the covariance of all
        // parameters (as Mplus and lavaan report them).
        let joint = estimate::fit_latent(&design, method).map_err(|d| session.model.render(&d))?;
        let tests = infer::coefficient_tests(
            &joint.fit.beta,
            &joint.fit.beta_covariance,
            &DegreesOfFreedom::Residual(f64::INFINITY),
        );
        (joint.fit, tests, Some(joint.covariance))
    } else {
        let (mut fit, deviance) = estimate::fit_with_deviance(&design, method, None)
            .map_err(|d| session.model.render(&d))?;
        locate_flat_directions(&mut fit, spec, &session.model);
        timings.lap(format!("fit{label}"));
        let tests = fixed_effect_tests(&design, &fit, &deviance, method, &mut warnings);
        timings.lap(format!("df (Satterthwaite){label}"));
        (fit, tests, None)
    };
    let (defined, mediation, mut draw_figures) = if spec.definitions.is_empty() {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        defined_quantities(
            session,
            value,
            &design,
            &fit,
            joint_covariance,
            options,
            &mut warnings,
        )?
    };

    let mut standard_errors = None;
    if options.robust_se && design.latent.is_some() {
        warnings.push(
            "--se cr2 is not available for a random coefficient as a predictor; the standard errors are model-based"
                .to_string(),
        );
    } else if options.robust_se {
        let robust = match &frame {
            Some(frame) => robust_tests(spec, frame, &design, &fit, &tests),
            None => Err("out of core, the rows are not kept in memory".into()),
        };
        match robust {
            Ok((robust, note)) => {
                tests = robust;
                warnings.push(format!("standard errors: {note}"));
                standard_errors = Some(note);
            }
            Err(why) => warnings.push(format!(
                "--se cr2 not available ({why}); the standard errors are model-based"
            )),
        }
    }
    let mut title = session.model.path.display().to_string();
    title.push_str(&vary_label(value));
    let (mut defined, mut mediation) = (defined, mediation);
    let bootstrap = match bootstrap_choice(spec, options) {
        Some(choice) => {
            let most = crate::check::MAX_BOOTSTRAP_DRAWS;
            if choice.draws > most {
                return Err(render_plain(&[Diagnostic::error(
                    format!(
                        "`--draws {}`: a bootstrap takes at most {most} replicates",
                        choice.draws
                    ),
                    Location::None,
                )]));
            }
            warnings.extend(infer::thin_tails_warning(
                choice.draws,
                choice.level,
                "bootstrap replicates",
            ));
            // Errors in the definitions were reported by `defined_quantities` above.
            let constants: Vec<(String, f64)> = value.iter().cloned().collect();
            let quantities = (!spec.definitions.is_empty())
                .then(|| {
                    infer::defined::compile(
                        &spec.definitions,
                        &ParameterTable::from_fit(spec, &design, &fit),
                        &constants,
                    )
                    .ok()
                })
                .flatten();
            let Some(frame) = &frame else {
                unreachable!("a bootstrap out of core is refused above");
            };
            let original = Original {
                spec,
                frame,
                design: &design,
                fit: &fit,
                method,
            };
            // With a mediation summary, its direct effect and proportion mediated are
            // bootstrapped too (the plan appends them to the definitions).
            let plan = quantities.as_ref().and_then(MediationPlan::new);
            let bootstrapped = plan.as_ref().map(|p| &p.quantities).or(quantities.as_ref());
            let run = run_bootstrap(&original, &choice, bootstrapped, options)
                .map_err(|d| session.model.render(&[d]))?;
            // The definitions' intervals are the bootstrap's (matched by name).
            let find = |name: &str| run.defined.iter().find(|b| b.name == name);
            for row in &mut defined {
                if let Some(b) = find(&row.name) {
                    *row = b.clone();
                }
            }
            for row in &mut mediation {
                let source = match row.name.as_str() {
                    "ACME" => INDIRECT_NAMES.iter().find_map(|n| find(n)).cloned(),
                    "ADE" => find("direct").cloned(),
                    "Total Effect" => find(TOTAL_NAME).cloned(),
                    "Prop. Mediated" => find("proportion mediated").cloned(),
                    _ => None,
                };
                if let Some(b) = source {
                    *row = report::DefinedRow {
                        name: row.name.clone(),
                        ..b
                    };
                }
            }
            draw_figures.extend(run.figures);
            Some(run.summary)
        }
        None => None,
    };
    let mut report = assemble(session, &rows, &design, &fit, &tests, title, warnings);
    report.defined = defined;
    report.mediation = mediation;
    timings.lap(format!("assemble report{label}"));
    report.fit.standard_errors = standard_errors;
    if let Some(b) = &bootstrap {
        if b.failed + b.not_converged > 0 {
            report.fit.warnings.push(format!(
                "bootstrap: {} of {} refits failed and {} did not converge; the intervals use \
                 the rest",
                b.failed, b.draws, b.not_converged
            ));
        }
        if b.method == "row bootstrap" && !design.random.is_empty() {
            report.fit.warnings.push(
                "bootstrap: rows are resampled independently although the model has random \
                 effects; `resample = GROUP` resamples whole groups"
                    .to_string(),
            );
        }
    }
    report.bootstrap = bootstrap;
    if options.ranef {
        report.ranef = Some(ranef_rows(spec, &design, &fit));
    }
    if let Some(dir) = &options.plot {
        let written = write_figures(
            dir,
            &figure_stem(&session.model.path, options.folder.as_deref()),
            &session.model.path,
            value,
            (spec, frame.as_ref(), &design, &fit),
            &draw_figures,
        );
        report.fit.warnings.extend(written);
        timings.lap(format!("figures{label}"));
    }
    report.tandem.seed = seed_used(spec, options);
    Ok((report, fit.converged))
}

/// Definitions' rows, the mediation summary's rows and (with `--plot` and Monte Carlo
/// intervals) the binned draws of each definition and of the mediation summary's direct effect
/// and proportion mediated.
type DefinedOutput = (
    Vec<report::DefinedRow>,
    Vec<report::DefinedRow>,
    Vec<report::figures::DrawFigure>,
);

/// Estimates, delta-method SEs and intervals of the file's `:=` definitions (Monte Carlo or
/// delta by the `interval` statement, with `--draws`/`--seed` applied; delta at 95% when the
/// file has no `interval`), and the mediation summary when an indirect and a total effect are
/// defined. Bootstrap intervals of definitions come with the bootstrap run instead.
fn defined_quantities(
    session: &Session,
    value: &Option<(String, f64)>,
    design: &Design,
    fit: &Fit,
    joint_covariance: Option<DMatrix<f64>>,
    options: &FitOptions,
    warnings: &mut Vec<String>,
) -> Result<DefinedOutput, String> {
    use crate::infer::defined_estimates::{DefinedEstimate, IntervalMethod};
    use crate::infer::monte_carlo::MonteCarloSettings;

    let spec = &session.checked.spec;
    let table = ParameterTable::from_fit(spec, design, fit);
    let constants: Vec<(String, f64)> = value.iter().cloned().collect();
    let quantities = infer::defined::compile(&spec.definitions, &table, &constants)
        .map_err(|d| session.model.render(&d))?;
    let covariance = match joint_covariance {
        Some(c) => c,
        None => match estimate::parameter_covariance_generalized(design, fit, &table) {
            Ok((covariance, note)) => {
                warnings.extend(note);
                covariance
            }
            Err(why) => {
                fixed_effects_covariance(session, fit, &table, &quantities, &why, warnings)?
            }
        },
    };
    let method = match &spec.interval {
        Some(IntervalChoice::MonteCarlo { draws, level, seed }) => {
            let draws = options.draws.map(|d| d as usize).unwrap_or(*draws);
            warnings.extend(infer::thin_tails_warning(
                draws,
                *level,
                "Monte Carlo draws",
            ));
            IntervalMethod::MonteCarlo(MonteCarloSettings {
                draws,
                level: *level,
                seed: options.seed.unwrap_or(*seed),
                progress: options.progress,
            })
        }
        Some(IntervalChoice::Delta { level }) => IntervalMethod::Delta { level: *level },
        // The bootstrap reports its own intervals; here the delta SEs with a Wald interval.
        Some(IntervalChoice::Bootstrap { level, .. })
        | Some(IntervalChoice::ParametricBootstrap { level, .. }) => {
            IntervalMethod::Delta { level: *level }
        }
        None => IntervalMethod::Delta { level: 0.95 },
    };
    let estimates = table.estimates();
    let (rows, summary, notes) =
        infer::mediation::estimate_with_mediation(&quantities, &estimates, &covariance, &method)
            .map_err(|d| session.model.render(&d))?;
    warnings.extend(notes.iter().map(|d| d.message.clone()));
    // A definition that is not a number at the estimates themselves (`1/0`, `log(a)` with a
    // negative `a`) would otherwise show as a bare NA or inf row with nothing to explain it.
    for row in rows.iter().filter(|r| !r.estimate.is_finite()) {
        let line = spec
            .definitions
            .iter()
            .find(|d| d.name == row.name)
            .and_then(|d| session.model.text.get(..d.span.start))
            .map(|before| format!(" (line {})", before.matches('\n').count() + 1))
            .unwrap_or_default();
        warnings.push(format!(
            "`{}`{line} is not a finite number at the estimates ({}): a division by zero, an \
             overflow, or a log or square root outside its domain; it has no usable estimate",
            row.name, row.estimate
        ));
    }
    let to_row = |name: String, d: &DefinedEstimate| report::DefinedRow {
        name,
        estimate: d.estimate,
        se: Some(d.se),
        ci_lower: d.lower,
        ci_upper: d.upper,
        level: d.level,
        method: d.method.clone(),
        draws: d.draws,
        se_draws: d.mc_sd,
    };
    let defined: Vec<report::DefinedRow> = rows.iter().map(|d| to_row(d.name.clone(), d)).collect();
    let mut draw_figures = Vec::new();
    if let (Some(_), IntervalMethod::MonteCarlo(settings)) = (&options.plot, &method) {
        // With a mediation summary its direct effect and proportion mediated are drawn too, from
        // the plan's programs: the same seed gives the same draws as every interval above, and
        // the draws do not depend on how many programs are evaluated on them.
        let plan = MediationPlan::new(&quantities);
        let drawn = plan.as_ref().map_or(&quantities, |p| &p.quantities);
        let results: Vec<&DefinedEstimate> = rows
            .iter()
            .chain(
                summary
                    .iter()
                    .flat_map(|s| s.rows.iter().map(|r| &r.result)),
            )
            .collect();
        match crate::infer::monte_carlo::draw_histograms(drawn, &estimates, &covariance, settings) {
            Ok(histograms) => {
                for (program, histogram) in drawn.programs.iter().zip(histograms) {
                    let result = results.iter().find(|r| r.name == program.name);
                    draw_figures.push(report::figures::DrawFigure {
                        name: program.name.clone(),
                        source: "Monte Carlo draws".into(),
                        unit: "draws".into(),
                        requested: None,
                        note: String::new(),
                        histogram,
                        estimate: result.map_or(f64::NAN, |r| r.estimate),
                        interval: result.and_then(|r| r.lower.zip(r.upper)),
                        level: Some(settings.level),
                    });
                }
            }
            Err(d) => warnings.push(format!("figures of the draws: {}", d.message)),
        }
    }
    let mediation = summary
        .map(|s| {
            s.rows
                .iter()
                .map(|r| to_row(r.effect.label().to_string(), &r.result))
                .collect()
        })
        .unwrap_or_default();
    Ok((defined, mediation, draw_figures))
}

/// A bootstrap the file asks for (`interval bootstrap(...)`/`parametric_bootstrap(...)`), with
/// `--draws`/`--seed` applied.
struct BootstrapChoice {
    draws: usize,
    level: f64,
    seed: u64,
    /// `None`: parametric; `Some(None)`: rows; `Some(Some(column))`: clusters.
    resample: Option<Option<String>>,
}

fn bootstrap_choice(
    spec: &crate::model::ModelSpec,
    options: &FitOptions,
) -> Option<BootstrapChoice> {
    let (draws, level, seed, resample) = match &spec.interval {
        Some(IntervalChoice::Bootstrap {
            draws,
            level,
            seed,
            resample,
        }) => (*draws, *level, *seed, Some(resample.clone())),
        Some(IntervalChoice::ParametricBootstrap { draws, level, seed }) => {
            (*draws, *level, *seed, None)
        }
        _ => return None,
    };
    Some(BootstrapChoice {
        draws: options.draws.map_or(draws, |d| d as usize),
        level,
        seed: options.seed.unwrap_or(seed),
        resample,
    })
}

/// Refit a replicate frame as the original was fitted (the optimizer also trying `warm`, the
/// original optimum, as a start) and report its statistics: the ParameterTable's estimates,
/// then the defined quantities evaluated on them.
fn refit_statistics(
    spec: &crate::model::ModelSpec,
    frame: &AnalysisFrame,
    method: Method,
    quantities: Option<&DefinedQuantities>,
    warm: Option<&[f64]>,
) -> Result<Replicate, String> {
    let first = |d: Vec<Diagnostic>| {
        d.into_iter()
            .next()
            .map_or_else(|| "the refit failed".to_string(), |d| d.message)
    };
    let design = design::build(spec, frame).map_err(first)?;
    let fit = if design.latent.is_some() {
        estimate::fit_latent_estimates(&design, method).map_err(first)?
    } else {
        estimate::fit_from(&design, method, warm).map_err(first)?
    };
    let mut values = ParameterTable::from_fit(spec, &design, &fit).estimates();
    if let Some(q) = quantities {
        // The programs index the original table's rows: a replicate whose table differs (a
        // level missing from it) must not be evaluated.
        if values.len() != q.parameters {
            return Err(format!(
                "the refit has {} parameters, the model {}",
                values.len(),
                q.parameters
            ));
        }
        let defined = q.values(&values);
        values.extend(defined);
    }
    Ok(Replicate {
        values,
        converged: fit.converged,
    })
}

/// A bootstrap run: its summary for the report, the definitions' bootstrap rows and (with
/// `--plot`) the binned replicates of each definition.
struct BootstrapRun {
    summary: report::BootstrapSummary,
    defined: Vec<report::DefinedRow>,
    figures: Vec<report::figures::DrawFigure>,
}

/// The original fit a bootstrap resamples around.
struct Original<'a> {
    spec: &'a crate::model::ModelSpec,
    frame: &'a AnalysisFrame,
    design: &'a Design,
    fit: &'a Fit,
    method: Method,
}

fn run_bootstrap(
    original: &Original,
    choice: &BootstrapChoice,
    quantities: Option<&DefinedQuantities>,
    options: &FitOptions,
) -> Result<BootstrapRun, Diagnostic> {
    let Original {
        spec,
        frame,
        design,
        fit,
        method,
    } = *original;
    if let (None, Some(within)) = (&choice.resample, &design.stats.within) {
        // The simulation draws independent residuals; it would ignore ρ.
        return Err(Diagnostic::error(
            format!(
                "a parametric bootstrap with residuals correlated within `{}` is not supported \
                 yet",
                within.unit
            ),
            Location::None,
        )
        .with_hint(format!(
            "resample whole units instead: `interval bootstrap(resample = {})`",
            within.unit
        )));
    }
    let table = ParameterTable::from_fit(spec, design, fit);
    if choice.resample.is_none() && design.latent.is_some() {
        return Err(Diagnostic::error(
            "a parametric bootstrap of a random coefficient as a predictor is not supported yet",
            Location::None,
        )
        .with_hint("use `interval bootstrap(..., resample = GROUP)`"));
    }
    let (resampling, description) = match &choice.resample {
        None => (
            Resampling::Parametric(fit),
            "parametric bootstrap".to_string(),
        ),
        Some(None) => (Resampling::Rows, "row bootstrap".to_string()),
        Some(Some(column)) => (
            Resampling::Clusters(column),
            format!("cluster bootstrap resampling {column}"),
        ),
    };
    let bar = options.progress.then(|| {
        let bar = indicatif::ProgressBar::new(choice.draws as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(description.clone());
        bar
    });
    let tick = || {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    };
    let settings = BootstrapSettings {
        draws: choice.draws,
        level: choice.level,
        seed: choice.seed,
        progress: Some(&tick),
    };
    let estimates = table.estimates();
    // Each refit's optimizer also tries the original optimum as a start (about 12% less time on
    // the 1-1-1 mediation model; the replicates' optima agree with cold starts to ~1e-4).
    let warm = Some(fit.optimization.optimum.as_slice());
    let defined_estimates = quantities.map(|q| q.values(&estimates)).unwrap_or_default();
    let statistics = estimates.len() + defined_estimates.len();
    let result = bootstrap::bootstrap(spec, frame, resampling, &settings, statistics, |f| {
        refit_statistics(spec, f, method, quantities, warm)
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let row = |i: usize, name: String, estimate: f64, method: &str| report::DefinedRow {
        name,
        estimate,
        se: Some(result.sd[i]),
        ci_lower: Some(result.intervals[i].0),
        ci_upper: Some(result.intervals[i].1),
        level: Some(choice.level),
        method: Some(method.to_string()),
        draws: Some(result.usable[i]),
        se_draws: None,
    };
    let parameters = (0..table.len())
        .map(|i| row(i, table.name(i), estimates[i], "percentile"))
        .collect();
    let defined_method = match &choice.resample {
        None => "parametric bootstrap percentile",
        Some(None) => "row bootstrap percentile",
        Some(Some(_)) => "cluster bootstrap percentile",
    };
    let defined = quantities
        .map(|q| {
            q.names()
                .zip(&defined_estimates)
                .enumerate()
                .map(|(k, (name, &estimate))| {
                    row(table.len() + k, name.to_string(), estimate, defined_method)
                })
                .collect()
        })
        .unwrap_or_default();
    // Each definition's replicates, exactly those its percentile interval was taken from.
    let figures = match (&options.plot, quantities) {
        (Some(_), Some(q)) => {
            let (kind, note) = match &choice.resample {
                None => ("parametric", String::new()),
                Some(None) => ("row", String::new()),
                Some(Some(column)) => ("cluster", format!(", resampling {column}")),
            };
            q.names()
                .zip(&defined_estimates)
                .enumerate()
                .map(|(k, (name, &estimate))| {
                    let s = table.len() + k;
                    report::figures::DrawFigure {
                        name: name.to_string(),
                        source: format!("{kind} bootstrap replicates"),
                        unit: "replicates".into(),
                        requested: Some(result.draws),
                        note: note.clone(),
                        histogram: infer::histogram::histogram(&result.usable(s)),
                        estimate,
                        interval: Some(result.intervals[s]),
                        level: Some(choice.level),
                    }
                })
                .collect()
        }
        _ => Vec::new(),
    };
    Ok(BootstrapRun {
        figures,
        summary: report::BootstrapSummary {
            method: description,
            draws: result.draws,
            level: choice.level,
            seed: choice.seed,
            failed: result.failed,
            not_converged: result.not_converged,
            parameters,
        },
        defined,
    })
}

/// The fixed-effect tests with CR2 cluster-robust SEs and clubSandwich's Satterthwaite df in
/// place of the model-based ones, and a note saying so; or why they are not available.
fn robust_tests(
    spec: &crate::model::ModelSpec,
    frame: &AnalysisFrame,
    design: &Design,
    fit: &Fit,
    tests: &[infer::CoefficientTest],
) -> Result<(Vec<infer::CoefficientTest>, String), String> {
    let rows = design::observation_rows(spec, frame).map_err(|d| {
        d.first()
            .map_or_else(|| "no observations".to_string(), |d| d.message.clone())
    })?;
    let names: Vec<String> = design.random.iter().map(|t| t.name.clone()).collect();
    let robust = cluster_robust(&rows, fit, &names, Adjustment::Cr2).map_err(|e| e.0)?;
    let se = robust.se();
    let tests = tests
        .iter()
        .zip(se.iter().zip(&robust.df))
        .map(|(t, (&se, &df))| {
            let statistic = t.estimate / se;
            infer::CoefficientTest {
                estimate: t.estimate,
                se,
                df,
                t: statistic,
                p: infer::two_sided_p(statistic, df),
            }
        })
        .collect();
    let note = format!(
        "CR2 cluster-robust over {} ({} clusters), Satterthwaite df (clubSandwich)",
        robust.cluster, robust.clusters
    );
    Ok((tests, note))
}

/// The flat-direction warnings name the random terms they involve where the model file writes
/// them (`(1 | h)` at file:line:column), in every output format.
fn locate_flat_directions(fit: &mut Fit, spec: &crate::model::ModelSpec, model: &LoadedModel) {
    for flat in &fit.flat_directions {
        let places: Vec<String> = flat
            .terms
            .iter()
            .filter_map(|&k| spec.random.get(k))
            .map(|term| {
                let (line, column) = crate::syntax::line_col(&model.text, term.span.start);
                let text = model.text.get(term.span.start..term.span.end).unwrap_or("");
                format!("`{text}` at {}:{line}:{column}", model.path.display())
            })
            .collect();
        if places.is_empty() {
            continue;
        }
        let located = format!(
            "{} (random term{} {})",
            flat.message,
            if places.len() == 1 { "" } else { "s" },
            places.join(", ")
        );
        for warning in fit.warnings.iter_mut().filter(|w| **w == flat.message) {
            *warning = located.clone();
        }
    }
}

/// The fitted deviance seen as a function of lmerTest's variance parameters.
struct FittedVariance<'a> {
    deviance: &'a ProfiledDeviance,
    fit: &'a Fit,
}

impl VarianceParameters for FittedVariance<'_> {
    fn varpar(&self) -> Vec<f64> {
        self.fit.varpar.clone()
    }
    fn deviance_at(&self, varpar: &[f64]) -> f64 {
        self.deviance.deviance_at(varpar).unwrap_or(f64::NAN)
    }
    fn beta_covariance_at(&self, varpar: &[f64]) -> DMatrix<f64> {
        let p = self.fit.beta.len();
        self.deviance
            .beta_covariance_at(varpar)
            .unwrap_or_else(|_| DMatrix::from_element(p, p, f64::NAN))
    }
    /// From the optimizer's Hessian of the profiled criterion (differences of its exact
    /// gradient) and one gradient of log r².
    fn deviance_hessian(&self) -> Option<DMatrix<f64>> {
        let opt = &self.fit.optimization;
        if !opt.converged || opt.hessian.iter().any(|v| !v.is_finite()) {
            return None;
        }
        self.deviance
            .explicit_sigma_hessian(&opt.optimum, &opt.hessian)
            .ok()
    }
    fn beta_covariance_jacobian(&self) -> Option<Vec<DMatrix<f64>>> {
        self.deviance
            .beta_covariance_jacobian(&self.fit.varpar)
            .ok()
            .filter(|j| j.iter().all(|m| m.iter().all(|v| v.is_finite())))
    }
}

/// t tests of the fixed effects: without random terms and with one residual variance per
/// equation, `n − p` df under REML (R's `lm`) and z tests under ML (lavaan's regressions, whose
/// ML standard errors they are); Satterthwaite otherwise (lmerTest's method, which for one
/// residual variance per group is Welch's).
fn fixed_effect_tests(
    design: &Design,
    fit: &Fit,
    deviance: &ProfiledDeviance,
    method: Method,
    warnings: &mut Vec<String>,
) -> Vec<infer::CoefficientTest> {
    let ordinary = design.random.is_empty() && design.classes.iter().all(|c| c.level.is_none());
    if ordinary {
        let df = match method {
            Method::Reml => (fit.nobs as f64) - (fit.beta.len() as f64),
            Method::Ml => f64::INFINITY,
        };
        return infer::coefficient_tests(
            &fit.beta,
            &fit.beta_covariance,
            &DegreesOfFreedom::Residual(df),
        );
    }
    let variance = FittedVariance { deviance, fit };
    let satterthwaite = Satterthwaite::new(&variance);
    warnings.extend(satterthwaite.warnings.iter().cloned());
    infer::coefficient_tests(
        &fit.beta,
        &fit.beta_covariance,
        &DegreesOfFreedom::Satterthwaite(&satterthwaite),
    )
}

/// What the report says about the rows of the data file, however it was read.
struct RowsRead {
    drops: prepare::DropReport,
    warnings: Vec<Diagnostic>,
    notes: Vec<String>,
    sha256: Option<String>,
}

fn assemble(
    session: &Session,
    rows: &RowsRead,
    design: &Design,
    fit: &Fit,
    tests: &[infer::CoefficientTest],
    title: String,
    mut warnings: Vec<String>,
) -> FitReport {
    let spec = &session.checked.spec;
    let equation_name = |e: usize| {
        spec.equations
            .get(e)
            .map(|q| q.outcome.clone())
            .unwrap_or_default()
    };
    // A coefficient shared by several terms (a repeated label) gets a row per term, each naming
    // the others, so that no term of the file disappears from the report.
    // (The group-level equation of a random coefficient as a predictor has parameters of its
    // own after the design's: one term each.)
    let fixed = fit
        .fixed
        .iter()
        .zip(tests)
        .enumerate()
        .flat_map(|(i, (f, t))| {
            let place = |(e, term): &(usize, String)| format!("{} ~ {term}", equation_name(*e));
            let columns = design
                .fixed
                .get(i)
                .map_or_else(|| vec![(f.equation, f.term.clone())], |p| p.columns.clone());
            columns
                .iter()
                .map(|column| report::FixedRow {
                    equation: equation_name(column.0),
                    term: column.1.clone(),
                    label: f.label.clone(),
                    estimate: t.estimate,
                    se: t.se,
                    df: t.df,
                    t: t.t,
                    p: t.p,
                    equal_to: columns.iter().filter(|c| *c != column).map(place).collect(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let fixed = in_formula_order(spec, fixed);
    let mut random = Vec::new();
    for component in &fit.random {
        for (i, (eq, term)) in component.effects.iter().enumerate() {
            random.push(report::RandomRow {
                group: component.group.clone(),
                equation1: equation_name(*eq),
                term1: term.clone(),
                equation2: None,
                term2: None,
                variance: Some(component.covariance[(i, i)]),
                sd: Some(component.sd[i]),
                covariance: None,
                cor: None,
            });
        }
        for i in 0..component.effects.len() {
            for j in (i + 1)..component.effects.len() {
                let cov = component.covariance[(i, j)];
                // Uncorrelated terms have no covariance to report.
                if cov == 0.0 && component.correlation[(i, j)] == 0.0 {
                    continue;
                }
                random.push(report::RandomRow {
                    group: component.group.clone(),
                    equation1: equation_name(component.effects[i].0),
                    term1: component.effects[i].1.clone(),
                    equation2: Some(equation_name(component.effects[j].0)),
                    term2: Some(component.effects[j].1.clone()),
                    variance: None,
                    sd: None,
                    covariance: Some(cov),
                    cor: Some(component.correlation[(i, j)]),
                });
            }
        }
    }
    let residual = fit
        .residual
        .iter()
        .map(|r| report::ResidualRow {
            equation: equation_name(r.equation),
            class: r.level.clone(),
            variance: r.variance,
            sd: r.sd,
            correlated_within: fit.residual_correlation.as_ref().map(|c| c.unit.clone()),
            correlation: fit.residual_correlation.as_ref().map(|c| c.rho),
        })
        .collect();

    let several = design.equations.len() > 1;
    let mut drops: Vec<report::DropRow> = rows
        .drops
        .steps
        .iter()
        .filter(|s| s.rows > 0)
        .map(|s| report::DropRow {
            reason: s.reason.clone(),
            rows: s.rows,
            equation: None,
        })
        .collect();
    if several && design.rows_unused > 0 {
        drops.push(report::DropRow {
            reason: "each misses a model variable of every equation".into(),
            rows: design.rows_unused,
            equation: None,
        });
    }
    for eq in &design.equations {
        if eq.dropped > 0 {
            let missing: Vec<String> = eq
                .missing
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(v, n)| format!("{v} ({n})"))
                .collect();
            drops.push(report::DropRow {
                reason: format!(
                    "missing values in the model variables of `{}`: {}",
                    eq.outcome,
                    missing.join(", ")
                ),
                rows: eq.dropped,
                // With one equation, its rows are the model's.
                equation: several.then(|| eq.outcome.clone()),
            });
        }
    }
    let rows_by_equation = report::GroupCounts(
        design
            .equations
            .iter()
            .map(|e| (e.outcome.clone(), e.used))
            .collect(),
    );
    let prepared = design.equations.first().map_or(0, |e| e.used + e.dropped);
    let rows_used = prepared.saturating_sub(design.rows_unused);
    let rows_read = rows.drops.rows_read;
    warnings.extend(fit.warnings.iter().cloned());
    let formulas = session
        .model
        .ast
        .statements
        .iter()
        .filter(|s| matches!(s, Statement::Equation(_)))
        .map(syntax::format::format_statement)
        .collect();
    FitReport {
        model_file: title,
        formulas,
        fit: report::FitSummary {
            method: match fit.method {
                Method::Ml => "ML".into(),
                Method::Reml => "REML".into(),
            },
            loglik: fit.loglik,
            deviance: fit.deviance,
            aic: fit.aic,
            bic: fit.bic,
            nobs: fit.nobs,
            ngroups: report::GroupCounts(fit.ngroups.clone()),
            converged: fit.converged,
            singular: fit.singular,
            iterations: fit.iterations,
            gradient_evaluations: fit.gradient_evaluations,
            optimizer: fit.optimization.optimizer.clone(),
            standard_errors: None,
            warnings,
        },
        fixed,
        random,
        residual,
        defined: Vec::new(),
        mediation: Vec::new(),
        bootstrap: None,
        ranef: None,
        data: report::DataSummary {
            rows_read,
            rows_used,
            rows_dropped: rows_read.saturating_sub(rows_used),
            file: session.table.path.display().to_string(),
            drops,
            rows_by_equation,
            notes: rows.notes.clone(),
        },
        tandem: report::Provenance {
            version: env!("CARGO_PKG_VERSION").to_string(),
            model_sha256: Some(session.model.sha256.clone()),
            data_sha256: rows.sha256.clone(),
            seed: None,
        },
    }
}

/// lme4's `ranef` as report rows: per term, level and effect.
fn ranef_rows(spec: &crate::model::ModelSpec, design: &Design, fit: &Fit) -> Vec<report::RanefRow> {
    let mut rows = Vec::new();
    for (k, (term, modes)) in design.random.iter().zip(&fit.random_effects).enumerate() {
        let covariances = fit.random_effects_covariance.get(k);
        for (i, level) in term.levels.iter().enumerate() {
            for (j, (equation, effect)) in term.effects.iter().enumerate() {
                if i < modes.nrows() && j < modes.ncols() {
                    rows.push(report::RanefRow {
                        group: term.name.clone(),
                        level: level.clone(),
                        equation: spec
                            .equations
                            .get(*equation)
                            .map(|q| q.outcome.clone())
                            .unwrap_or_default(),
                        term: effect.clone(),
                        value: modes[(i, j)],
                        sd: covariances
                            .and_then(|c| c.get(i))
                            .filter(|v| j < v.nrows())
                            .map(|v| v[(j, j)].max(0.0).sqrt()),
                    });
                }
            }
        }
    }
    rows
}

/// Fitted values and residuals of every observation, one pass over the rows after the fit.
fn residual_points(
    spec: &crate::model::ModelSpec,
    frame: &AnalysisFrame,
    fit: &Fit,
) -> Result<report::figures::ResidualPoints, String> {
    let rows = design::observation_rows(spec, frame).map_err(|d| {
        d.first()
            .map(|d| d.message.clone())
            .unwrap_or_else(|| "the observations could not be read".into())
    })?;
    let fitted = infer::fitted::fitted_values(&rows, fit)
        .ok_or("internal: the observations do not match the fit")?;
    Ok(report::figures::ResidualPoints {
        fitted: fitted.fitted,
        residual: fitted.residual,
        equation: rows.equation,
        equations: spec.equations.iter().map(|e| e.outcome.clone()).collect(),
    })
}

/// Write the figures of one fit into `dir`; what could not be drawn or written comes back as
/// warnings for the report.
fn write_figures(
    dir: &Path,
    stem: &str,
    model: &Path,
    value: &Option<(String, f64)>,
    (spec, frame, design, fit): (
        &crate::model::ModelSpec,
        Option<&AnalysisFrame>,
        &Design,
        &Fit,
    ),
    draws: &[report::figures::DrawFigure],
) -> Vec<String> {
    use report::figures::{self, Caterpillar, CaterpillarEffect};
    if !dir.is_dir() {
        return vec![format!(
            "figures not written: `{}` is not a folder and cannot be made one",
            dir.display()
        )];
    }
    let mut stem = stem.to_string();
    if let Some((name, x)) = value {
        stem.push_str(&format!("-{name}{x}"));
    }
    let stem = figures::file_safe(&stem);
    // The file's name, not its path: a title must fit on a projected page.
    let title = model.file_name().map_or_else(
        || model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    ) + &vary_label(value);
    let mut svgs: Vec<(String, Result<String, String>)> = Vec::new();
    if design.latent.is_some() {
        svgs.push((
            format!("{stem}-residuals.svg"),
            Err("not drawn for a random coefficient as a predictor".into()),
        ));
    } else if let Some(frame) = frame {
        let svg =
            residual_points(spec, frame, fit).and_then(|p| figures::residuals_svg(&p, &title));
        svgs.push((format!("{stem}-residuals.svg"), svg));
    } else {
        svgs.push((
            format!("{stem}-residuals.svg"),
            Err("not drawn out of core: the rows are not kept in memory".into()),
        ));
    }
    let mut used: Vec<String> = vec![format!("{stem}-residuals")];
    for (k, (term, modes)) in design.random.iter().zip(&fit.random_effects).enumerate() {
        let covariances = fit
            .random_effects_covariance
            .get(k)
            .filter(|c| c.len() == modes.nrows());
        let mut name = format!("{stem}-ranef-{}", figures::file_safe(&term.name));
        // Two terms over one grouping factor (`(1|g) + (0+x|g)`) get distinct files.
        let mut k = 2;
        while used.contains(&name) {
            name = format!("{stem}-ranef-{}-{k}", figures::file_safe(&term.name));
            k += 1;
        }
        used.push(name.clone());
        let several_equations = term.effects.iter().any(|(e, _)| *e != term.effects[0].0);
        let caterpillar = Caterpillar {
            group: term.name.clone(),
            levels: term.levels.clone(),
            effects: term
                .effects
                .iter()
                .enumerate()
                .map(|(j, (equation, effect))| CaterpillarEffect {
                    // A term spanning equations names each effect's outcome.
                    name: if several_equations {
                        let outcome = spec.equations.get(*equation).map(|q| q.outcome.as_str());
                        format!("{}: {effect}", outcome.unwrap_or("?"))
                    } else {
                        effect.clone()
                    },
                    values: modes.column(j).iter().copied().collect(),
                    sd: covariances.map(|c| {
                        c.iter()
                            .map(|v| {
                                if j < v.nrows() {
                                    v[(j, j)].max(0.0).sqrt()
                                } else {
                                    f64::NAN
                                }
                            })
                            .collect()
                    }),
                })
                .collect(),
        };
        let svg = figures::caterpillar_svg(&caterpillar, &title);
        svgs.push((format!("{name}.svg"), svg));
    }
    for figure in draws {
        let mut name = format!("{stem}-{}", figures::file_safe(&figure.name));
        // A file's own `direct` definition and the mediation summary's get distinct files.
        let mut k = 2;
        while used.contains(&name) {
            name = format!("{stem}-{}-{k}", figures::file_safe(&figure.name));
            k += 1;
        }
        used.push(name.clone());
        svgs.push((format!("{name}.svg"), figures::draws_svg(figure, &title)));
    }
    let mut warnings = Vec::new();
    for (file, svg) in svgs {
        let path = dir.join(&file);
        match svg {
            Ok(text) => {
                if let Err(e) = write_figure(&path, &text) {
                    warnings.push(format!("figure {} not written: {e}", path.display()));
                }
            }
            Err(why) => warnings.push(format!("figure {file} not drawn: {why}")),
        }
    }
    warnings
}

/// A figure's file-name stem: the model file's stem, or in a folder run its path within the
/// folder with `-` for each separator (`lme4/sleepstudy.tandem` → `lme4-sleepstudy`).
fn figure_stem(model: &Path, folder: Option<&Path>) -> String {
    let relative = folder
        .and_then(|f| model.strip_prefix(f).ok())
        .unwrap_or_else(|| Path::new(model.file_name().unwrap_or_default()));
    let mut parts: Vec<String> = relative
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.push(
        model
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned()),
    );
    parts.join("-")
}

/// Writes one figure whole or not at all: into a temporary file beside it, then renamed over
/// the figure of an earlier run (figures are regenerated, so they replace their namesakes). A
/// symbolic link at the figure's name is neither followed nor replaced.
fn write_figure(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err("a symbolic link is there; it is not followed or replaced".into());
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let written = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e.to_string());
    }
    Ok(())
}
