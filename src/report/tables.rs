//! Markdown and LaTeX tables of a fit (fixed effects, variance components, defined
//! parameters, bootstrap intervals), for papers and course notes, with the data, observation,
//! group and warning lines of `accounting` around them.
//!
//! Owns table syntax only; numbers are formatted as in the text report.

use std::fmt::Write;

use super::accounting;
use super::numbers::{format_column, format_p};
use super::results::{DefinedRow, FitReport};

struct Table {
    header: Vec<String>,
    /// The leading columns of names (left-aligned); the rest are numbers (right-aligned)
    /// except the last when `text_last` (a method's name).
    left: usize,
    text_last: bool,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn is_text(&self, column: usize) -> bool {
        column < self.left || (self.text_last && column + 1 == self.header.len())
    }
}

fn tables(report: &FitReport) -> Vec<(String, Table)> {
    let equations: Vec<&str> = report.fixed.iter().map(|r| r.equation.as_str()).collect();
    let several_equations = equations.windows(2).any(|w| w[0] != w[1]);
    let mut out = vec![
        fixed_table(report, several_equations),
        variance_table(report, several_equations),
    ];
    if !report.defined.is_empty() {
        out.push((
            "Defined parameters".to_string(),
            interval_table(&report.defined),
        ));
    }
    if !report.mediation.is_empty() {
        out.push((
            "Mediation (indirect = ACME, direct = ADE)".to_string(),
            interval_table(&report.mediation),
        ));
    }
    if let Some(b) = &report.bootstrap {
        out.push((
            format!(
                "Bootstrap ({}, {} draws, seed {}; {} failed, {} not converged)",
                b.method, b.draws, b.seed, b.failed, b.not_converged
            ),
            interval_table(&b.parameters),
        ));
    }
    // `--ranef`: one table per grouping factor, as lme4's ranef().
    for table in super::ranef::ranef_tables(report.ranef.as_deref().unwrap_or_default()) {
        out.push((
            format!("Conditional modes: {}", table.group),
            Table {
                header: std::iter::once(table.group).chain(table.header).collect(),
                left: 1,
                text_last: false,
                rows: table.rows,
            },
        ));
    }
    out
}

/// The fixed effects with their tests, titled with how the SEs were computed.
fn fixed_table(report: &FitReport, several_equations: bool) -> (String, Table) {
    let estimates: Vec<f64> = report.fixed.iter().map(|r| r.estimate).collect();
    let ses: Vec<f64> = report.fixed.iter().map(|r| r.se).collect();
    let dfs: Vec<f64> = report.fixed.iter().map(|r| r.df).collect();
    let ts: Vec<f64> = report.fixed.iter().map(|r| r.t).collect();
    let (e, s, d, t) = (
        format_column(&estimates, 5),
        format_column(&ses, 5),
        format_column(&dfs, 3),
        format_column(&ts, 4),
    );
    // Columns that would be empty or constant for this model are left out: the equation with
    // one equation, labels when none is given, df for z tests.
    let any_label = report.fixed.iter().any(|r| r.label.is_some());
    let any_df = report.fixed.iter().any(|r| r.df.is_finite());
    let mut header = Vec::new();
    if several_equations {
        header.push("Equation");
    }
    header.push("Term");
    if any_label {
        header.push("Label");
    }
    header.extend(["Estimate", "SE"]);
    if any_df {
        header.extend(["df", "t", "p"]);
    } else {
        header.extend(["z", "p"]);
    }
    let rows = report
        .fixed
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let mut row = Vec::new();
            if several_equations {
                row.push(r.equation.clone());
            }
            row.push(r.term.clone());
            if any_label {
                row.push(r.label.clone().unwrap_or_default());
            }
            row.extend([e[k].clone(), s[k].clone()]);
            if any_df {
                row.push(d[k].clone());
            }
            row.extend([t[k].clone(), format_p(r.p)]);
            row
        })
        .collect();
    let left = header.len() - if any_df { 5 } else { 4 };
    (
        match &report.fit.standard_errors {
            Some(how) => format!("Fixed effects (standard errors: {how})"),
            None => "Fixed effects".to_string(),
        },
        Table {
            header: header.into_iter().map(String::from).collect(),
            left,
            text_last: false,
            rows,
        },
    )
}

/// Random-effect (co)variances, then the residual variances and their within-unit
/// correlations.
fn variance_table(report: &FitReport, several_equations: bool) -> (String, Table) {
    let mut rows = random_rows(report, several_equations);
    rows.extend(residual_rows(report, several_equations));
    (
        "Variance components".to_string(),
        Table {
            header: ["Group", "Effect", "(Co)variance", "SD / r"]
                .map(String::from)
                .to_vec(),
            left: 2,
            text_last: false,
            rows,
        },
    )
}

fn random_rows(report: &FitReport, several_equations: bool) -> Vec<Vec<String>> {
    let effect = |equation: &str, term: &str| {
        if several_equations {
            format!("{equation}: {term}")
        } else {
            term.to_string()
        }
    };
    let mut rows = Vec::new();
    for r in &report.random {
        let term = match (&r.equation2, &r.term2) {
            (Some(e2), Some(t2)) => {
                format!("{} × {}", effect(&r.equation1, &r.term1), effect(e2, t2))
            }
            _ => effect(&r.equation1, &r.term1),
        };
        let (value, scaled) = match (r.variance, r.sd, r.covariance, r.cor) {
            (Some(v), Some(sd), _, _) => (format!("{v:.4}"), format!("SD {sd:.4}")),
            (_, _, Some(c), Some(cor)) => (format!("{c:.4}"), format!("r {cor:.3}")),
            _ => (String::new(), String::new()),
        };
        rows.push(vec![r.group.clone(), term, value, scaled]);
    }
    rows
}

fn residual_rows(report: &FitReport, several_equations: bool) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for r in &report.residual {
        let term = match &r.class {
            Some(c) if several_equations => format!("{}: {c}", r.equation),
            Some(c) => c.clone(),
            None if several_equations => r.equation.clone(),
            None => String::new(),
        };
        rows.push(vec![
            "Residual".into(),
            term,
            format!("{:.4}", r.variance),
            format!("SD {:.4}", r.sd),
        ]);
    }
    let mut shown: Vec<(&str, &str)> = Vec::new();
    for r in &report.residual {
        let structure = match (&r.correlated_within, &r.ar1_within) {
            (Some(unit), _) => Some((unit, "r")),
            (None, Some(series)) => Some((series, "AR(1) phi")),
            (None, None) => None,
        };
        if let (Some((unit, symbol)), Some(rho)) = (structure, r.correlation) {
            if !shown.contains(&(r.equation.as_str(), unit.as_str())) {
                shown.push((&r.equation, unit));
                rows.push(vec![
                    "Residual".into(),
                    if several_equations {
                        format!("{}: within {unit}", r.equation)
                    } else {
                        format!("within {unit}")
                    },
                    String::new(),
                    format!("{symbol} {rho:.3}"),
                ]);
            }
        }
    }
    rows
}

/// Estimates with an SE and an interval: defined parameters, bootstrap intervals.
fn interval_table(rows: &[DefinedRow]) -> Table {
    let values: Vec<f64> = rows.iter().map(|d| d.estimate).collect();
    let decimals = super::numbers::column_decimals(&values, 5);
    let cell = |v: Option<f64>| {
        v.map(|v| super::numbers::format_fixed(v, decimals))
            .unwrap_or_default()
    };
    // "95% CI" when every row has the same level, as APA tables head the interval.
    let levels: Vec<Option<f64>> = rows.iter().map(|d| d.level).collect();
    let ci = match levels.first() {
        Some(Some(level)) if levels.iter().all(|l| *l == Some(*level)) => {
            format!("{}% CI", (level * 1e4).round() / 1e2)
        }
        _ => "CI".to_string(),
    };
    // With Monte Carlo intervals the draws' SD stands beside the delta-method SE.
    let draws_sd = rows.iter().any(|d| d.se_draws.is_some());
    let mut header = vec!["Name".into(), "Estimate".into(), "SE".into()];
    if draws_sd {
        header.push("SD draws".into());
    }
    header.extend([
        format!("{ci} lower"),
        format!("{ci} upper"),
        "Method".into(),
    ]);
    Table {
        header,
        left: 1,
        text_last: true,
        rows: rows
            .iter()
            .map(|d| {
                let mut row = vec![d.name.clone(), cell(Some(d.estimate)), cell(d.se)];
                if draws_sd {
                    row.push(cell(d.se_draws));
                }
                row.extend([
                    cell(d.ci_lower),
                    cell(d.ci_upper),
                    match (&d.method, d.draws) {
                        (Some(m), Some(n)) => format!("{m} ({n} draws)"),
                        (Some(m), None) => m.clone(),
                        (None, _) => String::new(),
                    },
                ]);
                row
            })
            .collect(),
    }
}

pub fn markdown(report: &FitReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "**{}** — {} fit, logLik {:.4}, AIC {:.2}, BIC {:.2}\n",
        report.model_file, report.fit.method, report.fit.loglik, report.fit.aic, report.fit.bic,
    );
    for line in context_lines(report) {
        // Two trailing spaces: a line break inside the paragraph.
        let _ = writeln!(out, "{}  ", line.replace('|', "\\|"));
    }
    out.push('\n');
    for (title, table) in tables(report) {
        let _ = writeln!(out, "*{title}*\n");
        let _ = writeln!(out, "| {} |", table.header.join(" | "));
        let rule: String = (0..table.header.len())
            .map(|c| {
                if table.is_text(c) {
                    " --- |"
                } else {
                    " ---: |"
                }
            })
            .collect();
        let _ = writeln!(out, "|{rule}");
        for row in &table.rows {
            // A backquoted name (`` `Days Since` ``) is shown as R prints it, not as code.
            let cells: Vec<String> = row
                .iter()
                .map(|c| c.replace('|', "\\|").replace('`', "\\`"))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push('\n');
    }
    let warnings = accounting::warnings(report);
    if !warnings.is_empty() {
        out.push_str("**Warnings**\n\n");
        for warning in warnings {
            let _ = writeln!(out, "- {warning}");
        }
        out.push('\n');
    }
    out
}

/// The data line, its drops and notes, the observations and the groups, as the text report
/// says them.
fn context_lines(report: &FitReport) -> Vec<String> {
    let mut lines = vec![format!("Data: {}", accounting::data_line(report))];
    lines.extend(accounting::drop_lines(report));
    lines.extend(accounting::note_lines(report));
    let mut observations = format!("Observations: {}", accounting::observations(report));
    if let Some(groups) = accounting::groups(report) {
        observations.push_str(&format!("; groups: {groups}"));
    }
    lines.push(observations);
    lines.extend(
        accounting::constraint_lines(report)
            .into_iter()
            .map(|l| format!("Note: {l}")),
    );
    lines
}

pub(super) fn latex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '_' | '%' | '&' | '#' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '×' => out.push_str("$\\times$"),
            '<' => out.push_str("$<$"),
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '\\' => out.push_str("\\textbackslash{}"),
            '`' => out.push_str("\\textasciigrave{}"),
            _ => out.push(c),
        }
    }
    out
}

pub fn latex(report: &FitReport) -> String {
    let mut out = String::new();
    for (title, table) in tables(report) {
        let _ = writeln!(out, "% {title}: {}", latex_escape(&report.model_file));
        let _ = writeln!(
            out,
            "\\begin{{tabular}}{{{}}}",
            (0..table.header.len())
                .map(|c| if table.is_text(c) { 'l' } else { 'r' })
                .collect::<String>()
        );
        let _ = writeln!(out, "\\hline");
        let header: Vec<String> = table.header.iter().map(|h| latex_escape(h)).collect();
        let _ = writeln!(out, "{} \\\\", header.join(" & "));
        let _ = writeln!(out, "\\hline");
        for row in &table.rows {
            let cells: Vec<String> = row.iter().map(|c| latex_escape(c)).collect();
            let _ = writeln!(out, "{} \\\\", cells.join(" & "));
        }
        let _ = writeln!(out, "\\hline\n\\end{{tabular}}\n");
    }
    // What the text report says around its tables, as a paragraph under them.
    let mut lines = context_lines(report);
    lines.extend(
        accounting::warnings(report)
            .into_iter()
            .map(|w| format!("Warning: {w}")),
    );
    let lines: Vec<String> = lines.iter().map(|l| latex_escape(l)).collect();
    let _ = writeln!(out, "\\noindent {}", lines.join(" \\\\\n"));
    out
}
