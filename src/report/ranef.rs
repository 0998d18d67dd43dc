//! The conditional modes (`--ranef`) arranged as lme4's `ranef()` prints them: one table per
//! grouping factor, a row per level and a column per effect, with the conditional SD (lme4's
//! `condVar`) beside each effect when the fit provides it. Shared by the text and the
//! Markdown/LaTeX renderers.
//!
//! Owns only the arrangement; it must not compute statistics (the SDs come in the rows).

use std::collections::{HashMap, HashSet};

use super::numbers::format_column;
use super::results::RanefRow;

/// One grouping factor's conditional modes, formatted for a table.
pub(crate) struct RanefTable {
    pub group: String,
    /// Column headers after the level: each effect, followed by `cond. SD` when SDs are shown.
    pub header: Vec<String>,
    /// A row per level: the level, then the cells under `header`.
    pub rows: Vec<Vec<String>>,
}

/// The header of a conditional SD column.
pub(crate) const SD_HEADER: &str = "cond. SD";

/// Groups the rows by grouping factor, levels and effects in the order they come (the design's
/// order, as lme4's). Effects of several equations are named `equation: term`.
pub(crate) fn ranef_tables<'r>(rows: &'r [RanefRow]) -> Vec<RanefTable> {
    let mut groups: Vec<&str> = Vec::new();
    for row in rows {
        if !groups.contains(&row.group.as_str()) {
            groups.push(&row.group);
        }
    }
    groups
        .into_iter()
        .map(|group| {
            let mine: Vec<&'r RanefRow> = rows.iter().filter(|r| r.group == group).collect();
            let mut effects: Vec<(&'r str, &'r str)> = Vec::new();
            let mut levels: Vec<&'r str> = Vec::new();
            // A factor can have thousands of levels (sessions): look cells up by key.
            let mut cells: HashMap<(&'r str, &'r str, &'r str), &'r RanefRow> = HashMap::new();
            let mut seen: HashSet<&'r str> = HashSet::new();
            for r in &mine {
                let effect = (r.equation.as_str(), r.term.as_str());
                if !effects.contains(&effect) {
                    effects.push(effect);
                }
                let key = (r.level.as_str(), effect.0, effect.1);
                if seen.insert(key.0) {
                    levels.push(key.0);
                }
                cells.insert(key, r);
            }
            let several_equations = effects.windows(2).any(|w| w[0].0 != w[1].0);
            let with_sd = mine.iter().any(|r| r.sd.is_some());
            let cell = |level: &'r str, effect: (&'r str, &'r str)| {
                cells.get(&(level, effect.0, effect.1)).copied()
            };
            let mut header = Vec::new();
            let mut columns: Vec<Vec<String>> = Vec::new();
            for &effect in &effects {
                header.push(if several_equations {
                    format!("{}: {}", effect.0, effect.1)
                } else {
                    effect.1.to_string()
                });
                let values: Vec<f64> = levels
                    .iter()
                    .map(|l| cell(l, effect).map_or(f64::NAN, |r| r.value))
                    .collect();
                columns.push(format_column(&values, 5));
                if with_sd {
                    header.push(SD_HEADER.to_string());
                    let sds: Vec<f64> = levels
                        .iter()
                        .map(|l| cell(l, effect).and_then(|r| r.sd).unwrap_or(f64::NAN))
                        .collect();
                    columns.push(format_column(&sds, 5));
                }
            }
            let rows = levels
                .iter()
                .enumerate()
                .map(|(i, level)| {
                    let mut row = vec![level.to_string()];
                    row.extend(columns.iter().map(|c| c[i].clone()));
                    row
                })
                .collect();
            RanefTable {
                group: group.to_string(),
                header,
                rows,
            }
        })
        .collect()
}
