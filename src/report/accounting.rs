//! The sentences every format prints about where the numbers come from: the data file and its
//! row accounting, the observations per equation, the groups, and the warnings. One wording
//! for text, Markdown and LaTeX, so that no format says less than another. It must not compute
//! anything the `FitReport` does not hold.

use super::results::FitReport;

/// "1 row" / "20 rows".
pub fn rows(n: usize) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{n} rows")
    }
}

/// `file (100 rows read, 80 used, 20 dropped)`: used means by at least one equation.
pub fn data_line(report: &FitReport) -> String {
    let d = &report.data;
    format!(
        "{} ({} read, {} used, {} dropped)",
        d.file,
        rows(d.rows_read),
        d.rows_used,
        d.rows_dropped
    )
}

/// One line per reason rows were lost: dropped from the whole model (`keep`, lags, rows that
/// miss a variable of every equation), or not used by one of several equations.
pub fn drop_lines(report: &FitReport) -> Vec<String> {
    report
        .data
        .drops
        .iter()
        .map(|drop| match &drop.equation {
            None => format!("{} dropped: {}", rows(drop.rows), drop.reason),
            Some(equation) => format!(
                "{} not used by the equation of `{equation}`: {}",
                rows(drop.rows),
                drop.reason
            ),
        })
        .collect()
}

/// What reading the data decided, one `note:` line each.
pub fn note_lines(report: &FitReport) -> Vec<String> {
    report
        .data
        .notes
        .iter()
        .map(|n| format!("note: {n}"))
        .collect()
}

/// The observations the likelihood counts: `180`, or with several equations the rows each
/// uses, `180 (100 for \`M\`, 80 for \`Y\`)`.
pub fn observations(report: &FitReport) -> String {
    let per = &report.data.rows_by_equation.0;
    if per.len() <= 1 {
        return report.fit.nobs.to_string();
    }
    let parts: Vec<String> = per
        .iter()
        .map(|(equation, n)| format!("{n} for `{equation}`"))
        .collect();
    format!("{} ({})", report.fit.nobs, parts.join(", "))
}

/// One line per coefficient that several terms share (a label repeated in the file).
pub fn constraint_lines(report: &FitReport) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for row in report.fixed.iter().filter(|r| !r.equal_to.is_empty()) {
        let mut places = vec![format!("{} ~ {}", row.equation, row.term)];
        places.extend(row.equal_to.iter().cloned());
        places.sort();
        let line = format!(
            "{} is one coefficient, shared by {}: a label used twice constrains its terms equal",
            row.label
                .as_deref()
                .map_or("this".to_string(), |l| format!("`{l}`")),
            places.join(" and ")
        );
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// `Subject, 18; Batch, 6`, or `None` without random terms.
pub fn groups(report: &FitReport) -> Option<String> {
    let groups: Vec<String> = report
        .fit
        .ngroups
        .0
        .iter()
        .map(|(g, n)| format!("{g}, {n}"))
        .collect();
    (!groups.is_empty()).then(|| groups.join("; "))
}

/// The fit's warnings, except the one the fixed-effects header already carries (how the
/// standard errors were computed), with control characters escaped (`diagnostics::visible`):
/// a warning may quote a data cell.
pub fn warnings(report: &FitReport) -> Vec<std::borrow::Cow<'_, str>> {
    let fit = &report.fit;
    let header_note = fit
        .standard_errors
        .as_ref()
        .map(|how| format!("standard errors: {how}"));
    fit.warnings
        .iter()
        .filter(|w| header_note.as_ref() != Some(&w.message))
        .map(|w| crate::diagnostics::visible(&w.message))
        .collect()
}
