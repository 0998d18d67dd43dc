//! The results of one fit as the reports print them: the JSON contract (docs/json.md) as Rust types.
//!
//! Owns the shape of what a fit tells the user (`FitReport`), independent of how it was computed.
//! The pipeline fills it from the estimate and infer stages; the renderers only read it. It must
//! not compute statistics.

use serde::Serialize;

use crate::diagnostics::Diagnostic;

/// Everything a report shows for one fitted model file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    /// The model file, as given on the command line.
    #[serde(skip)]
    pub model_file: String,
    /// The equations as written (`Reaction ~ 1 + Days + (1 + Days | Subject)`), for the header.
    #[serde(skip)]
    pub formulas: Vec<String>,
    pub fit: FitSummary,
    pub fixed: Vec<FixedRow>,
    pub random: Vec<RandomRow>,
    pub residual: Vec<ResidualRow>,
    pub defined: Vec<DefinedRow>,
    /// Indirect, direct and total effect and the proportion mediated (R's `mediate()`), when
    /// the file defines an indirect and a total effect. Rows named `indirect`, `direct`,
    /// `total`, `proportion mediated`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mediation: Vec<DefinedRow>,
    /// Bootstrap intervals of the parameters, when the file asks for a bootstrap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapSummary>,
    /// The random effects' conditional modes (lme4's `ranef`), with `--ranef`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranef: Option<Vec<RanefRow>>,
    /// With `--plot`, the numbers the residual figures drew (fitted values and residuals; for a
    /// binomial or Poisson outcome fitted means and Pearson residuals, and a 0/1 outcome's bins),
    /// for library callers; not part of the JSON.
    #[serde(skip)]
    pub residual_figure: Option<super::figures::ResidualPoints>,
    pub data: DataSummary,
    /// Which tandem, model file, data file and random seed produced these numbers, so a
    /// reader can tell whether a re-run should reproduce them digit for digit.
    pub tandem: Provenance,
}

/// The `tandem` object of the JSON: the program's version, SHA-256 digests of the model file's
/// and the data file's bytes (lowercase hex), and the Monte Carlo or bootstrap seed used.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Provenance {
    pub version: String,
    pub model_sha256: Option<String>,
    pub data_sha256: Option<String>,
    pub seed: Option<u64>,
}

/// One conditional mode: the value of one random effect at one level of its grouping factor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RanefRow {
    pub group: String,
    pub level: String,
    /// The equation's outcome.
    pub equation: String,
    /// R's effect name: `(Intercept)`, `Days`.
    pub term: String,
    pub value: f64,
    /// The conditional standard deviation (lme4's `condVar`: σ² Λ(Λ'Z'WZΛ + I)⁻¹Λ' at the
    /// estimates, β held fixed), when the fit provides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
}

/// An `interval bootstrap(...)` or `interval parametric_bootstrap(...)` run: how it resampled,
/// how many refits failed, and a percentile interval per parameter-table row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootstrapSummary {
    /// "cluster bootstrap resampling Subject", "row bootstrap", "parametric bootstrap".
    pub method: String,
    pub draws: usize,
    pub level: f64,
    pub seed: u64,
    /// Refits that failed (an error, or a replicate missing a level or group).
    pub failed: usize,
    /// Refits that did not converge (left out of the intervals).
    pub not_converged: usize,
    /// Per parameter: the estimate, the bootstrap SD as `se`, the percentile interval, and in
    /// `draws` the replicates used.
    pub parameters: Vec<DefinedRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitSummary {
    /// "ML", "REML", or "OLS" is never used: OLS is REML with no random terms, as in R's `lm`.
    pub method: String,
    /// The outcome's family (R's `family()$family`): "gaussian" for a linear (mixed) model,
    /// "binomial", "poisson".
    pub family: String,
    /// Its link (R's `family()$link`): "identity", "logit", "probit", "cloglog", "log".
    pub link: String,
    /// How a non-Gaussian likelihood was evaluated: "Laplace Approximation", "Adaptive
    /// Gauss-Hermite Quadrature, nAGQ = 25", or "IRLS" without random terms (R's `glm`); absent
    /// for a linear (mixed) model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximation: Option<String>,
    pub loglik: f64,
    /// −2·loglik for ML; the REML criterion for REML.
    pub deviance: f64,
    pub aic: f64,
    pub bic: f64,
    pub nobs: usize,
    /// Grouping factor → number of groups, in the report's order.
    pub ngroups: GroupCounts,
    pub converged: bool,
    pub singular: bool,
    /// Criterion evaluations the optimizer used (lme4's `feval`), those with a gradient
    /// included.
    pub iterations: usize,
    /// How many of those evaluations also computed the gradient (exact, or by differences for
    /// a random coefficient as a predictor).
    pub gradient_evaluations: usize,
    /// The optimizer's name and what the convergence check found (for the text report).
    #[serde(skip)]
    pub optimizer: String,
    /// How the fixed effects' SEs were computed when not model-based (`--se cr2`), for the
    /// text report's header; the JSON says it in `warnings`.
    #[serde(skip)]
    pub standard_errors: Option<String>,
    /// Everything the text report prints as `warning:`, typed (a place in the model file and a
    /// hint where one is known); the JSON contract has each as its message alone.
    #[serde(serialize_with = "messages")]
    pub warnings: Vec<Diagnostic>,
}

/// Diagnostics as the JSON contract lists them: their messages, a list of strings.
fn messages<S: serde::Serializer>(
    diagnostics: &[Diagnostic],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(diagnostics.iter().map(|d| d.message.as_str()))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixedRow {
    /// The equation's outcome.
    pub equation: String,
    /// R's name: `(Intercept)`, `Days`, `age:SexFemale`.
    pub term: String,
    pub label: Option<String>,
    pub estimate: f64,
    pub se: f64,
    pub df: f64,
    pub t: f64,
    pub p: f64,
    /// The other terms this coefficient is constrained equal to (a label repeated in the file,
    /// lavaan's equality constraint), as `equation ~ term`; each has a row of its own with the
    /// same numbers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub equal_to: Vec<String>,
}

/// A variance (`equation2`/`term2` absent) or a covariance of random effects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RandomRow {
    pub group: String,
    pub equation1: String,
    pub term1: String,
    pub equation2: Option<String>,
    pub term2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covariance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cor: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResidualRow {
    pub equation: String,
    /// The level of the `residual by` column, or `None` for a single residual variance.
    pub class: Option<String>,
    pub variance: f64,
    pub sd: f64,
    /// With `residual correlated within unit`: the unit column, on every row of the equation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlated_within: Option<String>,
    /// With `residual ar1 within series`: the series column, on every row of the equation
    /// (`correlation` is then AR(1)'s φ, the correlation of consecutive residuals of a series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ar1_within: Option<String>,
    /// The residuals' correlation within a unit (compound symmetry: the same for every pair of
    /// observations of a unit, whatever their classes); absent without `correlated within`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefinedRow {
    pub name: String,
    pub estimate: f64,
    /// For definitions the delta-method SE, whatever the interval; for bootstrap rows the
    /// bootstrap SD.
    pub se: Option<f64>,
    pub ci_lower: Option<f64>,
    pub ci_upper: Option<f64>,
    pub level: Option<f64>,
    pub method: Option<String>,
    pub draws: Option<usize>,
    /// With a Monte Carlo interval: the standard deviation of the draws, next to the delta
    /// method's `se` (they differ where the definition is far from linear, e.g. `a*b`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub se_draws: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSummary {
    pub rows_read: usize,
    /// Rows at least one equation uses.
    pub rows_used: usize,
    /// `rows_read − rows_used`: rows that enter no equation.
    pub rows_dropped: usize,
    pub file: String,
    /// Why rows were dropped, in order: first the steps that drop a row from every equation
    /// (`keep`, lags), then per equation the rows it cannot use (`equation` set).
    pub drops: Vec<DropRow>,
    /// Equation (its outcome) → rows it uses: the N of that equation.
    pub rows_by_equation: GroupCounts,
    /// What reading the file decided (e.g. an ignored row-names column).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DropRow {
    pub reason: String,
    pub rows: usize,
    /// The equation (its outcome) that cannot use these rows; `None` when no equation can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equation: Option<String>,
}

/// Name → count (grouping factor → groups, equation → rows), in report order; serializes as a
/// JSON object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupCounts(pub Vec<(String, usize)>);

impl Serialize for GroupCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (factor, count) in &self.0 {
            map.serialize_entry(factor, count)?;
        }
        map.end()
    }
}
