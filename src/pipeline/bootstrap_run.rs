//! The bootstrap a file asks for, run around the original fit: what it resamples, refusals of
//! what it cannot do yet, the progress bar, and its percentile rows and replicate figures put
//! into the report in place of the definitions' intervals. The resampling, refits and
//! percentiles themselves are `infer::bootstrap` and `infer::refit`; this module must not
//! compute statistics.

use super::defined::DefinedOutput;
use super::session::Session;
use super::{interval_location, FitOptions};
use crate::design::Design;
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::Fit;
use crate::infer::bootstrap::{self, Resampling, Settings as BootstrapSettings};
use crate::infer::defined::DefinedQuantities;
use crate::infer::mediation::{MediationPlan, INDIRECT_NAMES, TOTAL_NAME};
use crate::infer::{self};
use crate::model::IntervalChoice;
use crate::model::{Method, ModelSpec};
use crate::parameters::ParameterTable;
use crate::prepare::AnalysisFrame;
use crate::report::{self};

/// A bootstrap the file asks for (`interval bootstrap(...)`/`parametric_bootstrap(...)`), with
/// `--draws`/`--seed` applied.
pub(super) struct BootstrapChoice {
    pub(super) draws: usize,
    pub(super) level: f64,
    pub(super) seed: u64,
    /// `None`: parametric; `Some(None)`: rows; `Some(Some(column))`: clusters.
    pub(super) resample: Option<Option<String>>,
}

pub(super) fn bootstrap_choice(spec: &ModelSpec) -> Option<BootstrapChoice> {
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
        draws,
        level,
        seed,
        resample,
    })
}

/// The bootstrap the file asks for, if any: run around the original fit, its intervals put in
/// place of the definitions' and the mediation summary's (matched by name), its replicate
/// figures added. Its summary comes back for the report.
pub(super) fn bootstrap_intervals(
    session: &Session,
    value: &Option<(String, f64)>,
    (frame, design, fit): (Option<&AnalysisFrame>, &Design, &Fit),
    options: &FitOptions,
    defined: &mut DefinedOutput,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Option<report::BootstrapSummary>, Vec<Diagnostic>> {
    let spec = &session.checked.spec;
    let Some(choice) = bootstrap_choice(spec) else {
        return Ok(None);
    };
    let most = crate::check::MAX_BOOTSTRAP_DRAWS;
    if choice.draws > most {
        return Err(vec![Diagnostic::error(
            format!(
                "`--draws {}`: a bootstrap takes at most {most} replicates",
                choice.draws
            ),
            Location::None,
        )]);
    }
    let thin = infer::thin_tails_warning(choice.draws, choice.level, "bootstrap replicates");
    let at = interval_location(session);
    warnings.extend(thin.map(|message| Diagnostic::warning(message, at)));
    // Errors in the definitions were reported by `defined_quantities` before.
    let constants: Vec<(String, f64)> = value.iter().cloned().collect();
    let quantities = (!spec.definitions.is_empty())
        .then(|| {
            let table = ParameterTable::from_fit(spec, design, fit);
            let effects = super::defined::marginal_effects(spec, frame, &table).ok()?;
            infer::defined::compile_with_effects(&spec.definitions, &table, &constants, effects)
                .ok()
        })
        .flatten();
    let Some(frame) = frame else {
        unreachable!("a bootstrap out of core is refused by design_for");
    };
    let original = Original {
        spec,
        frame,
        design,
        fit,
        method: spec.method,
    };
    // With a mediation summary, its direct effect and proportion mediated are bootstrapped too
    // (the plan appends them to the definitions).
    let plan = quantities.as_ref().and_then(MediationPlan::new);
    let bootstrapped = plan.as_ref().map(|p| &p.quantities).or(quantities.as_ref());
    let run = run_bootstrap(&original, &choice, bootstrapped, options).map_err(|d| vec![d])?;
    replace_intervals(defined, &run.defined);
    defined.figures.extend(run.figures);
    Ok(Some(run.summary))
}

/// The definitions' intervals and the mediation summary's are the bootstrap's, matched by name.
fn replace_intervals(defined: &mut DefinedOutput, bootstrapped: &[report::DefinedRow]) {
    let find = |name: &str| bootstrapped.iter().find(|b| b.name == name);
    for row in &mut defined.rows {
        if let Some(b) = find(&row.name) {
            *row = b.clone();
        }
    }
    for row in &mut defined.mediation {
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
}

/// A bootstrap run: its summary for the report, the definitions' bootstrap rows and (with
/// `--plot`) the binned replicates of each definition.
struct BootstrapRun {
    pub(super) summary: report::BootstrapSummary,
    pub(super) defined: Vec<report::DefinedRow>,
    pub(super) figures: Vec<report::figures::DrawFigure>,
}

/// The original fit a bootstrap resamples around.
struct Original<'a> {
    pub(super) spec: &'a ModelSpec,
    pub(super) frame: &'a AnalysisFrame,
    pub(super) design: &'a Design,
    pub(super) fit: &'a Fit,
    pub(super) method: Method,
}

/// Resample, refit and summarise: the bootstrap's summary, each definition's percentile row
/// and (with `--plot`) each definition's replicates.
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
    refuse_unsupported(choice, design)?;
    let table = ParameterTable::from_fit(spec, design, fit);
    let (resampling, description) = resampling(choice, fit);
    let bar = options
        .progress
        .then(|| replicate_bar(choice.draws, &description));
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
        infer::refit::refit_statistics(spec, f, method, quantities, warm)
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summarised = Summarised {
        result: &result,
        choice,
        table: &table,
        quantities,
        defined_estimates: &defined_estimates,
    };
    let figures = match options.plot {
        Some(_) => summarised.figures(),
        None => Vec::new(),
    };
    Ok(BootstrapRun {
        figures,
        defined: summarised.defined_rows(),
        summary: report::BootstrapSummary {
            method: description,
            draws: result.draws,
            level: choice.level,
            seed: choice.seed,
            failed: result.failed,
            not_converged: result.not_converged,
            parameters: summarised.parameter_rows(&estimates),
        },
    })
}

/// What a bootstrap cannot do yet, refused before any replicate is drawn.
fn refuse_unsupported(choice: &BootstrapChoice, design: &Design) -> Result<(), Diagnostic> {
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
    if choice.resample.is_none() && design.latent.is_some() {
        return Err(Diagnostic::error(
            "a parametric bootstrap of a random coefficient as a predictor is not supported yet",
            Location::None,
        )
        .with_hint("use `interval bootstrap(..., resample = GROUP)`"));
    }
    Ok(())
}

/// What is resampled, and how the report names it.
fn resampling<'a>(choice: &'a BootstrapChoice, fit: &'a Fit) -> (Resampling<'a>, String) {
    match &choice.resample {
        None => (
            Resampling::Parametric(fit),
            "parametric bootstrap".to_string(),
        ),
        Some(None) => (Resampling::Rows, "row bootstrap".to_string()),
        Some(Some(column)) => (
            Resampling::Clusters(column),
            format!("cluster bootstrap resampling {column}"),
        ),
    }
}

/// The terminal's progress bar over the replicates.
fn replicate_bar(draws: usize, description: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(draws as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(description.to_string());
    bar
}

/// A finished bootstrap and what its statistics are: the table's rows, then the definitions'.
struct Summarised<'a> {
    result: &'a bootstrap::Bootstrap,
    choice: &'a BootstrapChoice,
    table: &'a ParameterTable,
    quantities: Option<&'a DefinedQuantities>,
    defined_estimates: &'a [f64],
}

impl Summarised<'_> {
    /// Statistic `i`'s row: the estimate with the replicates' SD and percentile interval.
    fn row(&self, i: usize, name: String, estimate: f64, method: &str) -> report::DefinedRow {
        let result = self.result;
        report::DefinedRow {
            name,
            estimate,
            se: Some(result.sd[i]),
            ci_lower: Some(result.intervals[i].0),
            ci_upper: Some(result.intervals[i].1),
            level: Some(self.choice.level),
            method: Some(method.to_string()),
            draws: Some(result.usable[i]),
            se_draws: None,
        }
    }

    fn parameter_rows(&self, estimates: &[f64]) -> Vec<report::DefinedRow> {
        (0..self.table.len())
            .map(|i| self.row(i, self.table.name(i), estimates[i], "percentile"))
            .collect()
    }

    /// The definitions' (name, estimate, statistic index).
    fn definitions(&self) -> Vec<(String, f64, usize)> {
        let Some(q) = self.quantities else {
            return Vec::new();
        };
        (q.names().zip(self.defined_estimates).enumerate())
            .map(|(k, (name, &estimate))| (name.to_string(), estimate, self.table.len() + k))
            .collect()
    }

    fn defined_rows(&self) -> Vec<report::DefinedRow> {
        let method = match &self.choice.resample {
            None => "parametric bootstrap percentile",
            Some(None) => "row bootstrap percentile",
            Some(Some(_)) => "cluster bootstrap percentile",
        };
        (self.definitions().into_iter())
            .map(|(name, estimate, s)| self.row(s, name, estimate, method))
            .collect()
    }

    /// Each definition's replicates, exactly those its percentile interval was taken from.
    fn figures(&self) -> Vec<report::figures::DrawFigure> {
        let (kind, note) = match &self.choice.resample {
            None => ("parametric", String::new()),
            Some(None) => ("row", String::new()),
            Some(Some(column)) => ("cluster", format!(", resampling {column}")),
        };
        (self.definitions().into_iter())
            .map(|(name, estimate, s)| report::figures::DrawFigure {
                name,
                source: format!("{kind} bootstrap replicates"),
                unit: "replicates".into(),
                requested: Some(self.result.draws),
                note: note.clone(),
                histogram: infer::histogram::histogram(&self.result.usable(s)),
                estimate,
                interval: Some(self.result.intervals[s]),
                level: Some(self.choice.level),
            })
            .collect()
    }
}
