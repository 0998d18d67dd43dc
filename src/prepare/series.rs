//! The rows of an analysis frame put in series order for AR(1) residuals: each series' rows
//! together (series in order of first appearance) and, within a series, by the file's `order`
//! column (ties, and every row without `order`, keep file order; a missing order value sorts
//! last). AR(1)'s positions are then consecutive rows of the frame. A frame already in that
//! order is returned as it is. It must not fit anything.

use std::collections::HashMap;

use crate::data::Column;

use super::AnalysisFrame;

/// `frame` with its rows in series order (see the module's doc).
pub fn order_series(frame: AnalysisFrame, series: &str, order: Option<&str>) -> AnalysisFrame {
    let Some(series_column) = frame.column(series) else {
        return frame;
    };
    let mut first_seen: HashMap<u64, usize> = HashMap::new();
    let series_rank: Vec<usize> = (0..frame.nrows)
        .map(|row| {
            let key = match series_column {
                Column::Numeric(v) => v[row].to_bits(),
                Column::Text { codes, .. } => u64::from(codes[row]),
            };
            let next = first_seen.len();
            *first_seen.entry(key).or_insert(next)
        })
        .collect();
    let order_values: Option<&[f64]> = match order.and_then(|o| frame.column(o)) {
        Some(Column::Numeric(v)) => Some(v),
        _ => None,
    };
    let key = |row: usize| {
        let t = order_values.map_or(0.0, |v| v[row]);
        (series_rank[row], if t.is_nan() { f64::INFINITY } else { t })
    };
    let sorted = (1..frame.nrows).all(|r| {
        let (a, b) = (key(r - 1), key(r));
        a.0 < b.0 || (a.0 == b.0 && a.1 <= b.1)
    });
    if sorted {
        return frame;
    }
    let mut rows: Vec<usize> = (0..frame.nrows).collect();
    // Stable: equal keys keep file order.
    rows.sort_by(|&a, &b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    let columns = frame
        .columns
        .iter()
        .map(|c| match c {
            Column::Numeric(v) => Column::Numeric(rows.iter().map(|&r| v[r]).collect()),
            Column::Text { codes, levels } => Column::Text {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                levels: levels.clone(),
            },
        })
        .collect();
    let source_rows = rows.iter().map(|&r| frame.source_rows[r]).collect();
    AnalysisFrame {
        columns,
        source_rows,
        ..frame
    }
}
