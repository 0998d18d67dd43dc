//! One table across the values of a `vary` statement (the published "across all time spans"
//! analyses): each fixed effect's estimate, SE and p per value.
//!
//! Owns that layout only.

use super::numbers::{format_column, format_p};
use super::results::FitReport;
use super::text::layout;

pub fn across_values(reports: &[(Option<(String, f64)>, FitReport)]) -> String {
    let Some(name) = reports
        .iter()
        .find_map(|(v, _)| v.as_ref().map(|(n, _)| n.clone()))
    else {
        return String::new();
    };
    let mut out = format!("Fixed effects across {name}:\n");
    let mut header = vec!["".to_string(), name.clone()];
    header.extend(["Estimate", "Std. Error", "t value", "Pr(>|t|)"].map(String::from));
    let mut rows = vec![header];
    let first = &reports[0].1;
    for (k, row) in first.fixed.iter().enumerate() {
        let term = match &row.label {
            Some(label) => format!("{} ({label})", row.term),
            None => row.term.clone(),
        };
        let pick = |f: fn(&super::FixedRow) -> f64| -> Vec<f64> {
            reports
                .iter()
                .map(|(_, r)| r.fixed.get(k).map(f).unwrap_or(f64::NAN))
                .collect()
        };
        let estimates = format_column(&pick(|r| r.estimate), 5);
        let ses = format_column(&pick(|r| r.se), 5);
        let ts = format_column(&pick(|r| r.t), 4);
        let ps = pick(|r| r.p);
        for (i, (value, _)) in reports.iter().enumerate() {
            rows.push(vec![
                if i == 0 { term.clone() } else { String::new() },
                value
                    .as_ref()
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default(),
                estimates[i].clone(),
                ses[i].clone(),
                ts[i].clone(),
                format_p(ps[i]),
            ]);
        }
    }
    out.push_str(&layout(&rows, &[false, true, true, true, true, true]));
    out
}
