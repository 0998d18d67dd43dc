//! The text report: reads like lme4's `summary()` for the fit, random and fixed effects, with
//! lavaan's table of defined parameters and a line for every dropped-row reason.
//!
//! Owns layout only; every number comes from the `FitReport`.

use std::fmt::Write;

use super::accounting;
use super::numbers::{format_column, format_p, format_significant};
use super::results::FitReport;
use super::TextOptions;

/// R's legend for `stars` (printCoefmat's, with ASCII quotes as R prints them outside UTF-8).
const SIGNIF_LEGEND: &str = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1";

/// R's significance code of a p-value (`symnum` with cutpoints 0, .001, .01, .05, .1, 1, each
/// interval closed on the right: p = 0.05 is `*`); nothing for a missing p.
pub(crate) fn stars(p: f64) -> &'static str {
    if !p.is_finite() || p < 0.0 {
        ""
    } else if p <= 0.001 {
        "***"
    } else if p <= 0.01 {
        "**"
    } else if p <= 0.05 {
        "*"
    } else if p <= 0.1 {
        "."
    } else {
        " "
    }
}

/// Pads every column of `rows` to its widest cell; `right[c]` aligns column `c` right.
pub(crate) fn layout(rows: &[Vec<String>], right: &[bool]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c > 0 {
                line.push_str("  ");
            }
            if right.get(c).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn render(report: &FitReport, options: TextOptions) -> String {
    let mut out = String::new();
    render_heading(report, &mut out);
    render_criteria(report, &mut out);
    if !report.random.is_empty() || !report.residual.is_empty() {
        render_random(report, &mut out);
    }
    let groups = accounting::groups(report)
        .map(|g| format!(", groups: {g}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Number of obs: {}{groups}",
        accounting::observations(report)
    );
    out.push('\n');
    render_fixed(report, options, &mut out);
    for line in accounting::constraint_lines(report) {
        let _ = writeln!(out, "note: {line}");
    }
    if !report.defined.is_empty() {
        out.push('\n');
        out.push_str("Defined parameters:\n");
        render_defined(&report.defined, &mut out);
    }
    if let Some(b) = &report.bootstrap {
        out.push('\n');
        let _ = writeln!(
            out,
            "Bootstrap ({}, {} draws, seed {}; {} failed, {} not converged):",
            b.method, b.draws, b.seed, b.failed, b.not_converged
        );
        render_defined(&b.parameters, &mut out);
    }
    if !report.mediation.is_empty() {
        out.push('\n');
        out.push_str("Mediation (indirect = ACME, direct = ADE, as R's mediate()):\n");
        render_defined(&report.mediation, &mut out);
    }
    if let Some(ranef) = report.ranef.as_deref().filter(|r| !r.is_empty()) {
        render_ranef(ranef, &mut out);
    }
    let warnings = accounting::warnings(report);
    if !warnings.is_empty() {
        out.push('\n');
        for warning in warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
    }
    out
}

/// What was fitted, how, to which file, with its formulas and data.
fn render_heading(report: &FitReport, out: &mut String) {
    if let Some(approximation) = &report.fit.approximation {
        render_generalized_heading(report, approximation, out);
        return;
    }
    let kind = if !report.random.is_empty() {
        "Linear mixed model"
    } else if report.residual.iter().any(|r| r.class.is_some()) {
        "Linear model with a residual variance per class"
    } else if report.residual.len() > 1 {
        "Linear equations (joint)"
    } else {
        "Linear model"
    };
    let _ = writeln!(
        out,
        "{kind} fit by {} — {}",
        report.fit.method, report.model_file
    );
    render_formulas_and_data(report, out);
}

/// A non-Gaussian model's heading, worded as `summary(glmer)` (or `glm`) words it.
fn render_generalized_heading(report: &FitReport, approximation: &str, out: &mut String) {
    let kind = if report.random.is_empty() {
        "Generalized linear model fit by maximum likelihood (IRLS)".to_string()
    } else {
        format!("Generalized linear mixed model fit by maximum likelihood ({approximation})")
    };
    let _ = writeln!(out, "{kind} — {}", report.model_file);
    let _ = writeln!(
        out,
        " Family: {}  ( {} )",
        report.fit.family, report.fit.link
    );
    render_formulas_and_data(report, out);
}

/// The heading's formulas, data line, dropped rows and notes, for every kind of model.
fn render_formulas_and_data(report: &FitReport, out: &mut String) {
    for formula in &report.formulas {
        let _ = writeln!(out, "Formula: {formula}");
    }
    let _ = writeln!(out, "   Data: {}", accounting::data_line(report));
    for line in accounting::drop_lines(report)
        .into_iter()
        .chain(accounting::note_lines(report))
    {
        let _ = writeln!(out, "         {line}");
    }
    out.push('\n');
}

/// The criterion, AIC, BIC and logLik, and how the optimizer ended.
fn render_criteria(report: &FitReport, out: &mut String) {
    let fit = &report.fit;
    let criterion = if fit.method == "REML" {
        "REML criterion at convergence"
    } else {
        "Deviance (-2 logLik)"
    };
    let _ = writeln!(out, "{criterion}: {}", format_significant(fit.deviance, 8));
    let rows = vec![
        vec!["AIC".into(), "BIC".into(), "logLik".into()],
        vec![
            format_significant(fit.aic, 8),
            format_significant(fit.bic, 8),
            format_significant(fit.loglik, 8),
        ],
    ];
    out.push_str(&layout(&rows, &[true, true, true]));
    let status = if fit.converged {
        format!(
            "converged after {} deviance evaluations ({} with gradient)",
            fit.iterations, fit.gradient_evaluations
        )
    } else {
        format!(
            "DID NOT CONVERGE after {} deviance evaluations ({} with gradient)",
            fit.iterations, fit.gradient_evaluations
        )
    };
    let _ = write!(out, "Optimizer: {}; {status}", fit.optimizer);
    if fit.singular {
        out.push_str("; boundary (singular) fit");
    }
    out.push_str("\n\n");
}

fn several_equations(report: &FitReport) -> bool {
    let first = report.fixed.first().map(|r| &r.equation);
    report.fixed.iter().any(|r| Some(&r.equation) != first)
}

/// A term's name, prefixed by its equation when the model has several.
fn effect_name(multi: bool, equation: &str, term: &str) -> String {
    if multi {
        format!("{equation}: {term}")
    } else {
        term.to_string()
    }
}

fn render_random(report: &FitReport, out: &mut String) {
    let multi = several_equations(report);
    let variances: Vec<_> = report
        .random
        .iter()
        .filter(|r| r.variance.is_some())
        .collect();
    let any_cor = report.random.iter().any(|r| r.cor.is_some());
    let mut values: Vec<f64> = variances.iter().filter_map(|r| r.variance).collect();
    values.extend(report.residual.iter().map(|r| r.variance));
    let variance_text = format_column(&values, 5);
    let mut sds: Vec<f64> = variances.iter().filter_map(|r| r.sd).collect();
    sds.extend(report.residual.iter().map(|r| r.sd));
    let sd_text = format_column(&sds, 5);

    let mut header = vec![
        "Groups".to_string(),
        "Name".to_string(),
        "Variance".to_string(),
        "Std.Dev.".to_string(),
    ];
    if any_cor {
        header.push("Corr".to_string());
    }
    let mut rows = vec![header];
    let texts = (variance_text.as_slice(), sd_text.as_slice());
    rows.extend(variance_rows(report, &variances, texts, any_cor, multi));
    let residual_texts = (
        &variance_text[variances.len()..],
        &sd_text[variances.len()..],
    );
    rows.extend(residual_rows(report, residual_texts, any_cor, multi));
    out.push_str(if report.random.is_empty() {
        "Residual variance:\n"
    } else {
        "Random effects:\n"
    });
    out.push_str(&layout(&rows, &[false, false, true, true, false]));
    render_residual_correlations(report, multi, out);
}

/// A row per random effect with a variance (`texts`: the formatted variances and SDs, in the
/// same order), the group named on its first row only.
fn variance_rows(
    report: &FitReport,
    variances: &[&super::RandomRow],
    (variance_text, sd_text): (&[String], &[String]),
    any_cor: bool,
    multi: bool,
) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut previous_group: Option<&str> = None;
    for (k, row) in variances.iter().enumerate() {
        let group = if previous_group == Some(row.group.as_str()) {
            String::new()
        } else {
            row.group.clone()
        };
        previous_group = Some(&row.group);
        let mut cells = vec![
            group,
            effect_name(multi, &row.equation1, &row.term1),
            variance_text[k].clone(),
            sd_text[k].clone(),
        ];
        if any_cor {
            // Correlations with the effects listed before this one in the same group, as lme4.
            let cors: Vec<String> = report
                .random
                .iter()
                .filter(|c| {
                    c.cor.is_some()
                        && c.group == row.group
                        && c.equation2.as_deref() == Some(row.equation1.as_str())
                        && c.term2.as_deref() == Some(row.term1.as_str())
                })
                .map(|c| format!("{:.2}", c.cor.unwrap_or(f64::NAN)))
                .collect();
            cells.push(cors.join(" "));
        }
        rows.push(cells);
    }
    rows
}

/// A row per residual variance (`texts`: the formatted variances and SDs, in the same order).
fn residual_rows(
    report: &FitReport,
    (variance_text, sd_text): (&[String], &[String]),
    any_cor: bool,
    multi: bool,
) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for (k, row) in report.residual.iter().enumerate() {
        let label = match (&row.class, multi) {
            (Some(class), true) => format!("{}: {class}", row.equation),
            (Some(class), false) => class.clone(),
            (None, true) => row.equation.clone(),
            (None, false) => String::new(),
        };
        let mut cells = vec![
            if k == 0 {
                "Residual".to_string()
            } else {
                String::new()
            },
            label,
            variance_text[k].clone(),
            sd_text[k].clone(),
        ];
        if any_cor {
            cells.push(String::new());
        }
        rows.push(cells);
    }
    rows
}

/// One line per equation and unit with correlated residuals (compound symmetry or AR(1)).
fn render_residual_correlations(report: &FitReport, multi: bool, out: &mut String) {
    let mut shown: Vec<(&str, &str)> = Vec::new();
    for row in &report.residual {
        let Some(value) = row.correlation else {
            continue;
        };
        let (column, ar1) = match (&row.correlated_within, &row.ar1_within) {
            (Some(unit), _) => (unit, false),
            (None, Some(series)) => (series, true),
            (None, None) => continue,
        };
        if shown.contains(&(row.equation.as_str(), column.as_str())) {
            continue;
        }
        shown.push((&row.equation, column));
        let who = if multi {
            format!(" of {}", row.equation)
        } else {
            String::new()
        };
        let value = format_significant(value, 5);
        let _ = if ar1 {
            writeln!(
                out,
                "Correlation structure{who}: AR(1) within {column}, Phi = {value}"
            )
        } else {
            writeln!(
                out,
                "Residual correlation{who} within {column} (compound symmetry): {value}"
            )
        };
    }
}

fn render_fixed(report: &FitReport, options: TextOptions, out: &mut String) {
    let multi = several_equations(report);
    match &report.fit.standard_errors {
        Some(how) => out.push_str(&format!("Fixed effects (standard errors: {how}):\n")),
        None => out.push_str("Fixed effects:\n"),
    }
    let estimates: Vec<f64> = report.fixed.iter().map(|r| r.estimate).collect();
    let ses: Vec<f64> = report.fixed.iter().map(|r| r.se).collect();
    let dfs: Vec<f64> = report.fixed.iter().map(|r| r.df).collect();
    let ts: Vec<f64> = report.fixed.iter().map(|r| r.t).collect();
    let estimate_text = format_column(&estimates, 5);
    let se_text = format_column(&ses, 5);
    let df_text = format_column(&dfs, 5);
    let t_text = format_column(&ts, 4);
    // z tests (ML without random effects, as lavaan) have no df to show.
    let z_tests = report.fixed.iter().all(|r| r.df == f64::INFINITY);
    let (statistic, p_header) = if z_tests {
        ("z value", "Pr(>|z|)")
    } else {
        ("t value", "Pr(>|t|)")
    };
    let mut rows = vec![vec![
        String::new(),
        "Estimate".into(),
        "Std. Error".into(),
        "df".into(),
        statistic.into(),
        p_header.into(),
    ]];
    let mut current: Option<&str> = None;
    for (k, row) in report.fixed.iter().enumerate() {
        if multi && current != Some(row.equation.as_str()) {
            current = Some(&row.equation);
            rows.push(vec![format!("{} ~", row.equation)]);
        }
        let term = match &row.label {
            Some(label) => format!("{} ({label})", row.term),
            None => row.term.clone(),
        };
        rows.push(vec![
            if multi { format!("  {term}") } else { term },
            estimate_text[k].clone(),
            se_text[k].clone(),
            df_text[k].clone(),
            t_text[k].clone(),
            format_p(row.p),
        ]);
        if options.stars {
            if let Some(cells) = rows.last_mut() {
                cells.push(stars(row.p).to_string());
            }
        }
    }
    if z_tests {
        for row in rows.iter_mut().filter(|r| r.len() > 3) {
            row.remove(3);
        }
    }
    out.push_str(&layout(
        &rows,
        &[false, true, true, true, true, true, false],
    ));
    if options.stars && !report.fixed.is_empty() {
        out.push_str("---\n");
        out.push_str(SIGNIF_LEGEND);
        out.push('\n');
    }
}

/// `--ranef`: lme4's `ranef()` print, one table per grouping factor.
fn render_ranef(ranef: &[super::RanefRow], out: &mut String) {
    let tables = super::ranef::ranef_tables(ranef);
    out.push('\n');
    out.push_str("Conditional modes of the random effects (lme4's ranef()");
    if ranef.iter().any(|r| r.sd.is_some()) {
        let _ = write!(
            out,
            "; {} = conditional SD, lme4's condVar",
            super::ranef::SD_HEADER
        );
    }
    out.push_str("):\n");
    for (k, table) in tables.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let mut rows = vec![std::iter::once(table.group.clone())
            .chain(table.header.iter().cloned())
            .collect::<Vec<_>>()];
        rows.extend(table.rows.iter().cloned());
        let mut right = vec![false];
        right.extend(table.header.iter().map(|_| true));
        out.push_str(&layout(&rows, &right));
    }
}

fn render_defined(defined: &[super::DefinedRow], out: &mut String) {
    // With Monte Carlo intervals the draws' SD stands beside the delta-method SE.
    let draws_sd = defined.iter().any(|d| d.se_draws.is_some());
    let mut header = vec![String::new(), "Estimate".into(), "Std. Error".into()];
    if draws_sd {
        header.push("SD draws".into());
    }
    header.extend(["CI lower".into(), "CI upper".into(), "Interval".into()]);
    let mut rows = vec![header];
    let estimates: Vec<f64> = defined.iter().map(|d| d.estimate).collect();
    let estimate_text = format_column(&estimates, 5);
    let decimals = super::numbers::column_decimals(&estimates, 5);
    for (k, d) in defined.iter().enumerate() {
        let cell = |v: Option<f64>| {
            v.map(|v| super::numbers::format_fixed(v, decimals))
                .unwrap_or_else(|| "—".to_string())
        };
        let method = match (&d.method, d.level, d.draws) {
            (Some(m), Some(level), Some(draws)) => {
                format!("{:.0}% {m}, {draws} draws", level * 100.0)
            }
            (Some(m), Some(level), None) => format!("{:.0}% {m}", level * 100.0),
            (Some(m), None, _) => m.clone(),
            (None, _, _) => String::new(),
        };
        let mut row = vec![d.name.clone(), estimate_text[k].clone(), cell(d.se)];
        if draws_sd {
            row.push(cell(d.se_draws));
        }
        row.extend([cell(d.ci_lower), cell(d.ci_upper), method]);
        rows.push(row);
    }
    // Numbers right-aligned: every column but the names and the interval's description.
    let width = rows[0].len();
    let right: Vec<bool> = (0..width).map(|c| c != 0 && c + 1 != width).collect();
    out.push_str(&layout(&rows, &right));
}

#[cfg(test)]
mod tests {
    use super::stars;

    /// R: `symnum(c(1e-20, 0.001, 0.0011, 0.01, 0.05, 0.0501, 0.1, 0.1001, 1), corr = FALSE,
    /// cutpoints = c(0, .001, .01, .05, .1, 1), symbols = c("***", "**", "*", ".", " "))`
    /// gives `*** *** ** ** * . . " " " "`: each interval is closed on the right.
    #[test]
    fn stars_follow_r_cutpoints() {
        let p = [1e-20, 0.001, 0.0011, 0.01, 0.05, 0.0501, 0.1, 0.1001, 1.0];
        let expected = ["***", "***", "**", "**", "*", ".", ".", " ", " "];
        for (p, e) in p.iter().zip(expected) {
            assert_eq!(stars(*p), e, "p = {p}");
        }
        assert_eq!(stars(f64::NAN), "");
    }
}
