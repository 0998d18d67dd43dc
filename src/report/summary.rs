//! The table that ends a folder's reports: every file's defined quantities (file, name,
//! estimate, interval, method), so a reviewer re-running published models sees the headline
//! numbers in one place.
//!
//! Owns that layout only; the numbers come from each file's `FitReport`.

use std::fmt::Write;

use super::numbers::format_significant;
use super::results::FitReport;
use super::text::layout;

/// One row per defined quantity of every report, in the reports' order; `None` when no
/// report defines anything.
fn rows(reports: &[&FitReport]) -> Option<Vec<[String; 5]>> {
    let cell = |v: Option<f64>| v.map_or_else(String::new, |v| format_significant(v, 4));
    let rows: Vec<[String; 5]> = reports
        .iter()
        .flat_map(|r| {
            r.defined.iter().map(|d| {
                let interval = match (d.ci_lower, d.ci_upper) {
                    (Some(_), Some(_)) => {
                        format!("[{}, {}]", cell(d.ci_lower), cell(d.ci_upper))
                    }
                    _ => String::new(),
                };
                let method = match (&d.method, d.level) {
                    (Some(m), Some(level)) => format!("{}% {m}", (level * 1e4).round() / 1e2),
                    (Some(m), None) => m.clone(),
                    (None, _) => String::new(),
                };
                [
                    r.model_file.clone(),
                    d.name.clone(),
                    cell(Some(d.estimate)),
                    interval,
                    method,
                ]
            })
        })
        .collect();
    (!rows.is_empty()).then_some(rows)
}

const HEADER: [&str; 5] = ["File", "Name", "Estimate", "CI", "Interval"];

pub fn text(reports: &[&FitReport]) -> String {
    let Some(rows) = rows(reports) else {
        return String::new();
    };
    let mut table = vec![HEADER.map(String::from).to_vec()];
    table.extend(rows.into_iter().map(|r| r.to_vec()));
    let mut out = String::from("Defined quantities of every file:\n");
    out.push_str(&layout(&table, &[false, false, true, true, false]));
    out
}

pub fn markdown(reports: &[&FitReport]) -> String {
    let Some(rows) = rows(reports) else {
        return String::new();
    };
    let mut out = String::from("*Defined quantities of every file*\n\n");
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let _ = writeln!(out, "| --- | --- | ---: | ---: | --- |");
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}
