//! `tandem compare`: two or more model files fitted to the same rows and compared by their
//! likelihoods, as lme4's `anova(m1, m2, ...)`. Owns lme4's procedure around the statistics:
//! REML fits refitted by ML (`refit`, lme4's default) or kept (`--no-refit`, lme4's
//! `refit = FALSE`), and the refusals: files that do not read the same data file or do not use
//! the same rows of it, different outcomes, mixed families, and what compare does not support
//! yet (`vary`, out of core, a random coefficient as a predictor). Must not contain statistics
//! (`infer::comparison` has the table and the mixture p-values) and must not render.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::rows::prepare_frame;
use super::session::{open, Session};
use super::timings::Timings;
use super::{fit_once, FitOptions};

use crate::design;
use crate::diagnostics::{Diagnostic, Location};
use crate::infer::comparison::{self, Likelihood};
use crate::model::Method;
use crate::report::{ComparisonReport, ComparisonRow, FitReport};
use crate::syntax::ast::Statement;

/// The command line's choices for `compare`.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Refit REML fits by ML before comparing (lme4's `refit = TRUE`, the default).
    pub refit: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions { refit: true }
    }
}

/// One model file of a comparison: its text (to locate diagnostics in it), what stopped it or
/// refused it (located in it where a place is known) and its model's warnings.
#[derive(Debug)]
pub struct ComparedFile {
    pub path: PathBuf,
    pub source: Option<String>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// A comparison: every file's diagnostics and, when every file was fitted, the table.
#[derive(Debug)]
pub struct Comparison {
    pub files: Vec<ComparedFile>,
    pub report: Option<ComparisonReport>,
}

impl Comparison {
    /// Whether any file was stopped or refused.
    pub fn failed(&self) -> bool {
        self.files.iter().any(|f| !f.errors.is_empty()) || self.report.is_none()
    }
}

/// A file opened for the comparison, with the rows it uses and, later, its fit.
struct Entry {
    session: Session,
    /// Per equation (by outcome), the data-file rows it uses.
    rows: Vec<(String, Vec<usize>)>,
    refitted: bool,
}

/// Fit and compare the model files at `paths`.
pub fn compare_files(paths: &[PathBuf], options: &CompareOptions) -> Comparison {
    let mut files: Vec<ComparedFile> = Vec::new();
    let mut sessions = Vec::new();
    for path in paths {
        match open(path, None, false, &mut Timings::default()) {
            Ok(session) => {
                files.push(ComparedFile {
                    path: path.clone(),
                    source: Some(session.model.text.clone()),
                    errors: unsupported(&session),
                    warnings: session.checked.warnings.clone(),
                });
                sessions.push(session);
            }
            Err(e) => files.push(ComparedFile {
                path: e.path,
                source: e.text,
                errors: e.diagnostics,
                warnings: Vec::new(),
            }),
        }
    }
    if paths.len() < 2 {
        if let Some(first) = files.first_mut() {
            first.errors.push(Diagnostic::error(
                "compare needs at least two model files",
                Location::None,
            ));
        }
    }
    if files.iter().any(|f| !f.errors.is_empty()) {
        return Comparison {
            files,
            report: None,
        };
    }
    refuse_incomparable(&sessions, &mut files);
    let mut entries = prepared_entries(sessions, options, &mut files);
    if files.iter().any(|f| !f.errors.is_empty()) {
        return Comparison {
            files,
            report: None,
        };
    }
    refuse_different_rows(&entries, &mut files);
    if files.iter().any(|f| !f.errors.is_empty()) {
        return Comparison {
            files,
            report: None,
        };
    }
    let report = fit_and_compare(&mut entries, options, &mut files);
    Comparison { files, report }
}

/// What compare does not support yet, located in the file.
fn unsupported(session: &Session) -> Vec<Diagnostic> {
    let mut refused = Vec::new();
    let path = &session.model.path;
    if let Some(span) = session.model.ast.statements.iter().find_map(|s| match s {
        Statement::Vary { span, .. } => Some(*span),
        _ => None,
    }) {
        refused.push(
            Diagnostic::at(
                "compare does not support `vary` yet: it compares one fit per file",
                span,
            )
            .with_hint("write one file per value and compare those"),
        );
    }
    if session.out_of_core.is_some() {
        refused.push(Diagnostic::error(
            "compare does not support data read out of core yet: it compares the rows each \
             model uses, which out of core are not kept",
            Location::File(path.clone()),
        ));
    }
    if session.checked.spec.has_random_coefficients() {
        let span = (session.checked.spec.equations.iter())
            .find(|e| e.outcome_kind == crate::model::OutcomeKind::RandomCoefficient)
            .map(|e| e.span);
        let message = "compare does not support a random coefficient as an outcome or a \
                       predictor yet";
        refused.push(match span {
            Some(span) => Diagnostic::at(message, span),
            None => Diagnostic::error(message, Location::File(path.clone())),
        });
    }
    refused
}

/// Files that cannot be compared with the first: another data file, other outcomes, another
/// family (lme4 refuses a mix of REML and ML only with `refit = FALSE`, as a warning).
fn refuse_incomparable(sessions: &[Session], files: &mut [ComparedFile]) {
    let Some(first) = sessions.first() else {
        return;
    };
    let first_name = first.model.path.display().to_string();
    let outcomes = |s: &Session| -> BTreeSet<String> {
        (s.checked.spec.equations.iter())
            .map(|e| e.outcome.clone())
            .collect()
    };
    for (k, session) in sessions.iter().enumerate().skip(1) {
        let file = &mut files[k];
        let data_span = session.model.data_statement().map(|(_, _, span)| span);
        let at = |message: String| match data_span {
            Some(span) => Diagnostic::at(message, span),
            None => Diagnostic::error(message, Location::File(session.model.path.clone())),
        };
        if session.data_sha256 != first.data_sha256 {
            file.errors.push(
                at(format!(
                    "this model reads `{}`, `{first_name}` reads `{}`: models are compared \
                     only on the same data",
                    session.table.path.display(),
                    first.table.path.display()
                ))
                .with_hint("point every model file's `data` statement at the same file"),
            );
        }
        let (mine, theirs) = (outcomes(session), outcomes(first));
        for eq in &session.checked.spec.equations {
            if !theirs.contains(&eq.outcome) || mine != theirs {
                file.errors.push(Diagnostic::at(
                    format!(
                        "this model's outcomes ({}) are not `{first_name}`'s ({}): a \
                         likelihood-ratio test compares models of the same outcome",
                        listed(&mine),
                        listed(&theirs)
                    ),
                    eq.span,
                ));
                break;
            }
        }
        for eq in &session.checked.spec.equations {
            let other = (first.checked.spec.equations.iter()).find(|e| e.outcome == eq.outcome);
            if let Some(other) = other.filter(|o| !comparison::same_family(&o.family, &eq.family)) {
                file.errors.push(Diagnostic::at(
                    format!(
                        "`{}` is fitted here as {} and in `{first_name}` as {}: compare does \
                         not mix families",
                        eq.outcome,
                        family_name(eq),
                        family_name(other)
                    ),
                    eq.span,
                ));
            }
        }
    }
}

fn listed(names: &BTreeSet<String>) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    names.join(", ")
}

/// `binomial(logit, trials = size)`, as a `family` statement names it.
fn family_name(eq: &crate::model::EquationSpec) -> String {
    let f = &eq.family;
    let mut parts = vec![f.link.name().to_string()];
    parts.extend(f.trials.iter().map(|t| format!("trials = {t}")));
    parts.extend(f.offset.iter().map(|o| format!("offset = {o}")));
    format!("{}({})", f.kind.name(), parts.join(", "))
}

/// Each session set for the comparison (ML where lme4 refits; no definitions, intervals or
/// figures: only the likelihood is compared), prepared, with the rows each equation uses.
fn prepared_entries(
    sessions: Vec<Session>,
    options: &CompareOptions,
    files: &mut [ComparedFile],
) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (k, mut session) in sessions.into_iter().enumerate() {
        let spec = &mut session.checked.spec;
        let refitted = options.refit && spec.method == Method::Reml;
        if refitted {
            spec.method = Method::Ml;
        }
        spec.definitions.clear();
        spec.interval = None;
        let rows = prepare_frame(&session, &None).and_then(|frame| {
            let used = design::rows_used(&session.checked.spec, &frame)?;
            let outcomes = session.checked.spec.equations.iter().map(|e| &e.outcome);
            Ok((outcomes.zip(used))
                .map(|(outcome, rows)| {
                    let rows = rows.iter().map(|&r| frame.source_rows[r]).collect();
                    (outcome.clone(), rows)
                })
                .collect())
        });
        match rows {
            Ok(rows) => entries.push(Entry {
                session,
                rows,
                refitted,
            }),
            Err(e) => files[k].errors.extend(e),
        }
    }
    entries
}

/// Files whose equations do not use the same data-file rows as the first file's: the first
/// row one uses and the other does not, and the counts.
fn refuse_different_rows(entries: &[Entry], files: &mut [ComparedFile]) {
    let Some(first) = entries.first() else {
        return;
    };
    let first_name = first.session.model.path.display().to_string();
    for (k, entry) in entries.iter().enumerate().skip(1) {
        for (outcome, rows) in &entry.rows {
            let Some((_, theirs)) = first.rows.iter().find(|(o, _)| o == outcome) else {
                continue;
            };
            if rows == theirs {
                continue;
            }
            let mine: BTreeSet<usize> = rows.iter().copied().collect();
            let other: BTreeSet<usize> = theirs.iter().copied().collect();
            let only_here = mine.difference(&other).next();
            let only_there = other.difference(&mine).next();
            let example = match (only_here, only_there) {
                (Some(r), _) => format!("data row {r} is used here and not there"),
                (None, Some(r)) => format!("data row {r} is used there and not here"),
                (None, None) => "the rows come in another order".to_string(),
            };
            let span = (entry.session.checked.spec.equations.iter())
                .find(|e| &e.outcome == outcome)
                .map(|e| e.span);
            let message = format!(
                "`{outcome}` uses {} rows of the data here and {} in `{first_name}` ({example}): \
                 models are compared only on the same rows",
                rows.len(),
                theirs.len()
            );
            let diagnostic = match span {
                Some(span) => Diagnostic::at(message, span),
                None => Diagnostic::error(message, Location::File(files[k].path.clone())),
            };
            files[k].errors.push(diagnostic.with_hint(
                "drop the same rows in every file (the same `keep` statements; a model \
                 variable with missing values drops those rows from the models that use it)",
            ));
        }
    }
}

/// Every entry fitted, its failures on its file; then the table, when all were fitted.
fn fit_and_compare(
    entries: &mut [Entry],
    options: &CompareOptions,
    files: &mut [ComparedFile],
) -> Option<ComparisonReport> {
    let mut reports: Vec<FitReport> = Vec::new();
    for (k, entry) in entries.iter().enumerate() {
        let fitted = fit_once(
            &entry.session,
            &None,
            &FitOptions::default(),
            &mut Timings::default(),
        );
        match fitted {
            Ok(report) => reports.push(report),
            Err(e) => files[k].errors.extend(e),
        }
    }
    if reports.len() != entries.len() {
        return None;
    }
    let mut fits = Vec::new();
    for (k, report) in reports.iter().enumerate() {
        match comparison::parameters_of(report.fit.aic, report.fit.loglik) {
            Some(npar) => fits.push(Likelihood {
                loglik: report.fit.loglik,
                npar,
                aic: report.fit.aic,
                bic: report.fit.bic,
            }),
            None => files[k].errors.push(Diagnostic::error(
                "the fit's number of parameters could not be read from its AIC and logLik",
                Location::File(files[k].path.clone()),
            )),
        }
    }
    if fits.len() != reports.len() {
        return None;
    }
    let specs: Vec<_> = entries.iter().map(|e| &e.session.checked.spec).collect();
    let table = comparison::likelihood_ratio_table(&fits, &specs);
    Some(assemble(entries, &reports, table, options))
}

/// The comparison's report: its rows in lme4's order, what was done and the warnings.
fn assemble(
    entries: &[Entry],
    reports: &[FitReport],
    table: Vec<comparison::ComparedRow>,
    options: &CompareOptions,
) -> ComparisonReport {
    let names = row_names(entries.iter().map(|e| e.session.model.path.as_path()));
    let refitted = entries.iter().any(|e| e.refitted);
    let rows: Vec<ComparisonRow> = (table.iter())
        .map(|row| {
            let (entry, report) = (&entries[row.model], &reports[row.model]);
            ComparisonRow {
                model: entry.session.model.path.display().to_string(),
                name: names[row.model].clone(),
                formulas: report.formulas.clone(),
                method: report.fit.method.clone(),
                refitted: entry.refitted,
                npar: row.npar,
                aic: row.aic,
                bic: row.bic,
                loglik: row.loglik,
                deviance: row.deviance,
                chisq: row.chisq,
                df: row.df,
                p: row.p,
                p_mixture: row.p_mixture,
                mixture: row
                    .mixture
                    .map(|(a, b)| format!("0.5 chi2({a}) + 0.5 chi2({b})")),
                converged: report.fit.converged,
            }
        })
        .collect();
    let mut notes = vec![if refitted {
        "refitting model(s) with ML (instead of REML)".to_string()
    } else if options.refit {
        "every model is fitted by ML: no refit needed".to_string()
    } else {
        "no refit (--no-refit): each model compared by the criterion it was fitted by".to_string()
    }];
    notes.extend(mixture_notes(&rows, &table));
    let first = &reports[0];
    ComparisonReport {
        method: if reports.iter().any(|r| r.fit.method == "REML") {
            "REML".into()
        } else {
            "ML".into()
        },
        refitted,
        data: first.data.file.clone(),
        nobs: first.fit.nobs,
        comparisons: rows,
        notes,
        warnings: comparison_warnings(entries, reports, options),
    }
}

/// Per row with a mixture p-value, what it is and why it applies.
fn mixture_notes(rows: &[ComparisonRow], table: &[comparison::ComparedRow]) -> Vec<String> {
    (rows
        .iter()
        .zip(rows.iter().skip(1))
        .zip(table.iter().skip(1)))
    .filter_map(|((before, row), compared)| {
        let (q, q1) = compared.mixture?;
        let added = match q {
            0 => "one variance added".to_string(),
            1 => "one random effect added with its covariance".to_string(),
            q => format!("one random effect added with its {q} covariances"),
        };
        Some(format!(
            "p (χ̄² mixture) for {} against {}: 0.5 χ²({q}) + 0.5 χ²({q1}), {added}, the \
                 variance tested on the boundary (Self & Liang 1987; Stram & Lee 1994)",
            row.name, before.name,
        ))
    })
    .collect()
}

/// The fits' warnings, and lme4's warning for REML and ML fits compared without a refit (and
/// ours for REML criteria of different fixed parts, which are not comparable).
fn comparison_warnings(
    entries: &[Entry],
    reports: &[FitReport],
    options: &CompareOptions,
) -> Vec<String> {
    let mut warnings: Vec<String> = (entries.iter().zip(reports))
        .flat_map(|(e, r)| {
            let path = e.session.model.path.display().to_string();
            (r.fit.warnings.iter()).map(move |w| format!("{path}: {}", w.message))
        })
        .collect();
    if !options.refit {
        let reml: Vec<bool> = reports.iter().map(|r| r.fit.method == "REML").collect();
        if reml.iter().any(|&r| r) && reml.iter().any(|&r| !r) {
            warnings.push("some models fit with REML, some with ML".into());
        }
        let first = &entries[0].session.checked.spec;
        let differ = (entries.iter().skip(1))
            .any(|e| !comparison::same_fixed_parts(first, &e.session.checked.spec));
        if reml.iter().any(|&r| r) && differ {
            warnings.push(
                "REML criteria of models with different fixed effects are not comparable; \
                 compare without --no-refit"
                    .into(),
            );
        }
    }
    warnings
}

/// Each file's name in the table: its stem, or its path when two stems are the same.
fn row_names<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<String> {
    let paths: Vec<&Path> = paths.collect();
    let stem = |p: &Path| {
        p.file_stem()
            .map_or_else(|| p.display().to_string(), |s| s.to_string_lossy().into())
    };
    let stems: Vec<String> = paths.iter().map(|p| stem(p)).collect();
    let unique = stems.iter().collect::<BTreeSet<_>>().len() == stems.len();
    if unique {
        stems
    } else {
        paths.iter().map(|p| p.display().to_string()).collect()
    }
}
