//! Reports: a fit's results rendered as text (like lme4's `summary()`), JSON (docs/json.md's
//! contract), Markdown or LaTeX tables. It must not compute statistics: everything it prints is
//! in a `FitReport`.

mod accounting;
mod across;
pub mod comparison;
pub mod figures;
pub mod numbers;
mod ranef;
pub mod results;
mod summary;
mod tables;
mod text;

pub use results::{
    BootstrapSummary, DataSummary, DefinedRow, DropRow, FitReport, FitSummary, FixedRow,
    GroupCounts, Provenance, RandomRow, RanefRow, ResidualRow,
};

pub use across::across_values;
pub use comparison::{ComparisonReport, ComparisonRow};

/// Choices for the text report that are not part of the results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// R's significance stars after the fixed effects' p-values, with R's legend (`--stars`).
    pub stars: bool,
}

/// The text report.
pub fn text(report: &FitReport) -> String {
    text::render(report, TextOptions::default())
}

/// The text report with `options` (stars).
pub fn text_with(report: &FitReport, options: TextOptions) -> String {
    text::render(report, options)
}

/// The JSON contract (docs/json.md), pretty-printed; non-finite numbers become `null`.
pub fn json(report: &FitReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn markdown(report: &FitReport) -> String {
    tables::markdown(report)
}

pub fn latex(report: &FitReport) -> String {
    tables::latex(report)
}

/// The table of every file's defined quantities that ends a folder's text report.
pub fn summary_text(reports: &[&FitReport]) -> String {
    summary::text(reports)
}

/// The same summary as a Markdown table.
pub fn summary_markdown(reports: &[&FitReport]) -> String {
    summary::markdown(reports)
}
