//! The comparison of models (`tandem compare`, lme4's `anova(m1, m2)`) as the reports print it:
//! its types (the JSON contract's `comparisons`, docs/json.md) and its text, Markdown and LaTeX
//! tables. Must not compute statistics: every number is in the `ComparisonReport`.

use std::fmt::Write;

use serde::Serialize;

use super::numbers::{format_fixed, format_p};
use super::tables::latex_escape;

/// A likelihood-ratio comparison of two or more fits of the same rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonReport {
    /// The criterion compared: "ML" (every fit by ML, REML fits refitted) or "REML" (REML fits
    /// kept, `--no-refit`).
    pub method: String,
    /// Whether REML fits were refitted by ML before comparing (lme4's "refitting model(s) with
    /// ML (instead of REML)").
    pub refitted: bool,
    /// The data file every model reads.
    pub data: String,
    /// Observations (rows of all equations) every model uses.
    pub nobs: usize,
    /// The models in lme4's order (by npar, ties as given); tests against the row before.
    pub comparisons: Vec<ComparisonRow>,
    /// What was done (the refit) and how the mixture p-values are formed.
    pub notes: Vec<String>,
    /// The fits' warnings and the comparison's own (e.g. REML criteria of different fixed
    /// parts), each as its message.
    pub warnings: Vec<String>,
}

/// One model of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// The model file, as given on the command line.
    pub model: String,
    /// The row's name in the text table (the file's stem, or its path when stems repeat).
    #[serde(skip)]
    pub name: String,
    /// The equations as written, for the "Models:" lines.
    #[serde(skip)]
    pub formulas: Vec<String>,
    /// "ML" or "REML": how this model was fitted for the comparison.
    pub method: String,
    /// Whether the file asked for REML and was refitted by ML here.
    pub refitted: bool,
    pub npar: usize,
    pub aic: f64,
    pub bic: f64,
    pub loglik: f64,
    /// −2·loglik.
    pub deviance: f64,
    /// Against the row before; `null` on the first row.
    pub chisq: Option<f64>,
    pub df: Option<i64>,
    /// `null` on the first row and where df = 0.
    pub p: Option<f64>,
    /// The χ̄² mixture p-value, only where the larger model adds one random effect (with its
    /// covariances) to the smaller one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_mixture: Option<f64>,
    /// The mixture, e.g. "0.5 chi2(1) + 0.5 chi2(2)", with `p_mixture`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixture: Option<String>,
    pub converged: bool,
}

/// The comparison as JSON.
pub fn json(report: &ComparisonReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The cells of the table, header first: lme4's columns, and the mixture's when any row has it.
fn cells(report: &ComparisonReport) -> Vec<Vec<String>> {
    let mixture = report.comparisons.iter().any(|r| r.p_mixture.is_some());
    let mut header: Vec<String> = ["", "npar", "AIC", "BIC", "logLik", "deviance", "Chisq"]
        .iter()
        .chain(&["Df", "Pr(>Chisq)"])
        .map(|s| s.to_string())
        .collect();
    if mixture {
        header.push("p (χ̄² mixture)".into());
    }
    let mut rows = vec![header];
    let blank = String::new;
    for r in &report.comparisons {
        let mut row = vec![
            r.name.clone(),
            r.npar.to_string(),
            format_fixed(r.aic, 2),
            format_fixed(r.bic, 2),
            format_fixed(r.loglik, 3),
            format_fixed(r.deviance, 2),
            r.chisq.map_or_else(blank, |x| format_fixed(x, 3)),
            r.df.map_or_else(blank, |d| d.to_string()),
            match (r.chisq, r.p) {
                (Some(_), None) => "NA".into(),
                (_, p) => p.map_or_else(blank, format_p),
            },
        ];
        if mixture {
            row.push(r.p_mixture.map_or_else(blank, format_p));
        }
        rows.push(row);
    }
    rows
}

/// The lines above and below the table: what was done, the data, the models, the mixture.
fn heading(report: &ComparisonReport) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    lines.push(format!(
        "Data: {} ({} observations)",
        report.data, report.nobs
    ));
    lines.push("Models:".into());
    for r in &report.comparisons {
        lines.push(format!("{}: {}", r.name, r.formulas.join("; ")));
    }
    lines
}

/// The text table, as lme4 prints `anova(m1, m2)`.
pub fn text(report: &ComparisonReport) -> String {
    let mut out = String::new();
    for note in report.notes.iter().take(1) {
        let _ = writeln!(out, "{note}");
    }
    for line in heading(report) {
        let _ = writeln!(out, "{line}");
    }
    let rows = cells(report);
    let ncols = rows[0].len();
    let widths: Vec<usize> = (0..ncols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push(' ');
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for note in report.notes.iter().skip(1) {
        let _ = writeln!(out, "{note}");
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

/// The table in Markdown, with the text report's lines as a paragraph.
pub fn markdown(report: &ComparisonReport) -> String {
    let mut out = String::new();
    let mut lines: Vec<String> = report.notes.iter().take(1).cloned().collect();
    lines.extend(heading(report));
    for line in lines {
        let _ = writeln!(out, "{}  ", line.replace('|', "\\|"));
    }
    out.push('\n');
    let rows = cells(report);
    let row = |cells: &[String]| {
        let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |", escaped.join(" | "))
    };
    let _ = writeln!(out, "{}", row(&rows[0]));
    let rule: String = (0..rows[0].len())
        .map(|c| if c == 0 { " --- |" } else { " ---: |" })
        .collect();
    let _ = writeln!(out, "|{rule}");
    for r in &rows[1..] {
        let _ = writeln!(out, "{}", row(r));
    }
    let after: Vec<String> = (report.notes.iter().skip(1).cloned())
        .chain(report.warnings.iter().map(|w| format!("Warning: {w}")))
        .collect();
    if !after.is_empty() {
        out.push('\n');
        for line in after {
            let _ = writeln!(out, "{}  ", line.replace('|', "\\|"));
        }
    }
    out
}

/// The table in LaTeX (a `tabular`), with the text report's lines as a paragraph under it.
pub fn latex(report: &ComparisonReport) -> String {
    let mut out = String::new();
    let rows = cells(report);
    let _ = writeln!(out, "% Model comparison (likelihood-ratio tests)");
    let columns: String = (0..rows[0].len())
        .map(|c| if c == 0 { 'l' } else { 'r' })
        .collect();
    let _ = writeln!(out, "\\begin{{tabular}}{{{columns}}}\n\\hline");
    for (k, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| latex_cell(c)).collect();
        let _ = writeln!(out, "{} \\\\", cells.join(" & "));
        if k == 0 {
            let _ = writeln!(out, "\\hline");
        }
    }
    let _ = writeln!(out, "\\hline\n\\end{{tabular}}\n");
    let mut lines: Vec<String> = report.notes.iter().take(1).cloned().collect();
    lines.extend(heading(report));
    lines.extend(report.notes.iter().skip(1).cloned());
    lines.extend(report.warnings.iter().map(|w| format!("Warning: {w}")));
    let lines: Vec<String> = lines.iter().map(|l| latex_cell(l)).collect();
    let _ = writeln!(out, "\\noindent {}", lines.join(" \\\\\n"));
    out
}

/// A cell in LaTeX: escaped, with χ̄² and χ² written as math.
fn latex_cell(text: &str) -> String {
    latex_escape(text)
        .replace("χ̄²", "$\\bar\\chi^2$")
        .replace("χ²", "$\\chi^2$")
        .replace('·', "$\\cdot$")
}
