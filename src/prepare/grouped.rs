//! Computations over groups of rows: grand and group means (`center`, `scale`, `within`,
//! `between`) over the current rows, and the row that is `k` steps earlier or later in the same
//! group (`lag`, `lead`, `diff`). Owns the rules that a missing value never enters a mean, that
//! the sd divides by n - 1 (as R's `sd`), and that a shift never crosses a group and follows the
//! order column with a stable sort. It works on plain slices and must not know about expressions.

use std::collections::HashMap;

use crate::data::MISSING_CODE;

/// Marks a row without a group (missing grouping value) or without a source row (shift).
pub const NONE: u32 = u32::MAX;

/// A dense group index per row (`NONE` where the grouping value is missing).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupIds {
    pub ids: Vec<u32>,
    pub count: usize,
}

impl GroupIds {
    /// Groups of a text column: one per level that occurs.
    pub fn from_codes(codes: &[u32]) -> Self {
        // Codes are small and dense already; a table beats hashing on millions of rows.
        let size = codes
            .iter()
            .filter(|&&c| c != MISSING_CODE)
            .max()
            .map_or(0, |&m| m as usize + 1);
        let mut dense = vec![NONE; size];
        let mut count = 0u32;
        let ids = codes
            .iter()
            .map(|&c| {
                if c == MISSING_CODE {
                    return NONE;
                }
                let slot = &mut dense[c as usize];
                if *slot == NONE {
                    *slot = count;
                    count += 1;
                }
                *slot
            })
            .collect();
        GroupIds {
            ids,
            count: count as usize,
        }
    }

    /// Groups of a numeric column: one per distinct value.
    pub fn from_numbers(values: &[f64]) -> Self {
        let mut dense: HashMap<u64, u32> = HashMap::new();
        let ids = values
            .iter()
            .map(|&v| {
                if v.is_nan() {
                    NONE
                } else {
                    // -0.0 and 0.0 are one group.
                    let key = (v + 0.0).to_bits();
                    let next = dense.len() as u32;
                    *dense.entry(key).or_insert(next)
                }
            })
            .collect();
        GroupIds {
            ids,
            count: dense.len(),
        }
    }

    /// Everything in one group.
    pub fn single(n: usize) -> Self {
        GroupIds {
            ids: vec![0; n],
            count: 1,
        }
    }
}

/// Mean and sd (n - 1) of the non-missing values; `None` parts when there are too few values.
pub fn mean_sd(x: &[f64]) -> (Option<f64>, Option<f64>) {
    let (mut n, mut sum) = (0usize, 0.0);
    for &v in x.iter().filter(|v| !v.is_nan()) {
        n += 1;
        sum += v;
    }
    if n == 0 {
        return (None, None);
    }
    let mean = sum / n as f64;
    if n < 2 {
        return (Some(mean), None);
    }
    let ss: f64 = x
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| (v - mean) * (v - mean))
        .sum();
    (Some(mean), Some((ss / (n - 1) as f64).sqrt()))
}

/// Mean of the non-missing `x` in each group (NaN for a group without any).
pub fn group_means(x: &[f64], groups: &GroupIds) -> Vec<f64> {
    let mut sums = vec![0.0; groups.count];
    let mut counts = vec![0usize; groups.count];
    for (&v, &g) in x.iter().zip(&groups.ids) {
        if g != NONE && !v.is_nan() {
            sums[g as usize] += v;
            counts[g as usize] += 1;
        }
    }
    sums.iter()
        .zip(&counts)
        .map(|(&s, &c)| if c == 0 { f64::NAN } else { s / c as f64 })
        .collect()
}

/// `between(x)`: each row's group mean (missing where the row has no group or the group has no
/// value of `x`). A row whose own `x` is missing still gets its group's mean.
pub fn between(x: &[f64], groups: &GroupIds) -> Vec<f64> {
    let means = group_means(x, groups);
    groups
        .ids
        .iter()
        .map(|&g| {
            if g == NONE {
                f64::NAN
            } else {
                means[g as usize]
            }
        })
        .collect()
}

/// `within(x)`: `x` minus its group mean.
pub fn within(x: &[f64], groups: &GroupIds) -> Vec<f64> {
    let means = group_means(x, groups);
    x.iter()
        .zip(&groups.ids)
        .map(|(&v, &g)| {
            if g == NONE {
                f64::NAN
            } else {
                v - means[g as usize]
            }
        })
        .collect()
}

/// For each row, the row `k` places earlier (`lead == false`) or later in its group, in the
/// order of `order` (ties and no order: input order). Rows without a group or with a missing
/// order value get `NONE` and are nobody's neighbour.
pub fn shift_sources(groups: &GroupIds, order: Option<&[f64]>, k: usize, lead: bool) -> Vec<u32> {
    let n = groups.ids.len();
    let mut rows: Vec<u32> = (0..n as u32)
        .filter(|&i| {
            groups.ids[i as usize] != NONE && order.is_none_or(|o| !o[i as usize].is_nan())
        })
        .collect();
    // Stable: equal keys keep input order. Already-sorted input (the usual case) is one run.
    rows.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        groups.ids[a].cmp(&groups.ids[b]).then_with(|| match order {
            Some(o) => o[a].total_cmp(&o[b]),
            None => std::cmp::Ordering::Equal,
        })
    });
    let mut sources = vec![NONE; n];
    let mut start = 0;
    while start < rows.len() {
        let g = groups.ids[rows[start] as usize];
        let mut end = start + 1;
        while end < rows.len() && groups.ids[rows[end] as usize] == g {
            end += 1;
        }
        let run = &rows[start..end];
        for (p, &row) in run.iter().enumerate() {
            let source = if lead {
                p.checked_add(k)
            } else {
                p.checked_sub(k)
            };
            if let Some(&s) = source.and_then(|s| run.get(s)) {
                sources[row as usize] = s;
            }
        }
        start = end;
    }
    sources
}

/// Whether every group has at most one distinct non-missing value of `x` (given as per-row keys
/// where `None` is missing).
pub fn constant_within<T: PartialEq + Copy>(x: &[Option<T>], groups: &GroupIds) -> bool {
    let mut seen: Vec<Option<T>> = vec![None; groups.count];
    for (v, &g) in x.iter().zip(&groups.ids) {
        let (Some(v), true) = (v, g != NONE) else {
            continue;
        };
        match &mut seen[g as usize] {
            slot @ None => *slot = Some(*v),
            Some(first) if *first != *v => return false,
            Some(_) => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_within_groups_by_order() {
        // Groups a,b,a,b,a with order 3,1,1,2,2 → group a rows in order: 2 (o1), 4 (o2), 0 (o3).
        let groups = GroupIds::from_codes(&[0, 1, 0, 1, 0]);
        let order = [3.0, 1.0, 1.0, 2.0, 2.0];
        let lag1 = shift_sources(&groups, Some(&order), 1, false);
        assert_eq!(lag1, [4, NONE, NONE, 1, 2]);
        let lead1 = shift_sources(&groups, Some(&order), 1, true);
        assert_eq!(lead1, [NONE, 3, 4, NONE, 0]);
        let lag2 = shift_sources(&groups, Some(&order), 2, false);
        assert_eq!(lag2, [2, NONE, NONE, NONE, NONE]);
    }

    #[test]
    fn sd_divides_by_n_minus_one() {
        let (mean, sd) = mean_sd(&[1.0, 2.0, f64::NAN, 6.0]);
        assert_eq!(mean, Some(3.0));
        // ss = 4 + 1 + 9 = 14, / 2 = 7
        assert!((sd.unwrap() - 7f64.sqrt()).abs() < 1e-15);
    }
}
