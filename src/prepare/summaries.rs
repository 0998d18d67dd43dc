//! Summaries over all rows for `center`, `scale`, `within` and `between` when the rows come in
//! pieces (a data file read out of core): a first pass collects each call's sums piece by piece
//! (`SummaryMode::Collect`, the call's value meanwhile provisional), the pieces' sums are merged
//! in file order, and a second pass applies them (`SummaryMode::Apply`), so that every row gets
//! the value it would get with the whole file in memory.
//!
//! Owns the sums and how they merge. A grand mean is the total over the count; the sd combines
//! the pieces' sums of squares about their own means (Chan, Golub and LeVeque), which agrees with
//! the whole-file two-pass sd to rounding. Group means are per group value (a number or a text
//! level), summed in file order. It must not decide which rows are current: that is the
//! preparation's, which calls it at the same statement as it would with the whole file.

use std::collections::HashMap;

use crate::diagnostics::Span;

/// A summary call, by where it is written (the same file is read in every pass).
pub type CallKey = (usize, usize);

pub fn call_key(span: Span) -> CallKey {
    (span.start, span.end)
}

/// The value of a row's group: a number (by its bits, −0 as 0) or a text level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupKey {
    Number(u64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryMode {
    /// Record each call's sums over the piece's current rows; its value is provisional.
    Collect,
    /// Use the merged sums.
    Apply,
}

/// Count, sum and sum of squares about the mean of one call's non-missing values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GrandSums {
    pub n: usize,
    pub sum: f64,
    pub m2: f64,
}

impl GrandSums {
    pub fn of(x: &[f64]) -> Self {
        let (mut n, mut sum) = (0usize, 0.0);
        for &v in x.iter().filter(|v| !v.is_nan()) {
            n += 1;
            sum += v;
        }
        if n == 0 {
            return GrandSums::default();
        }
        let mean = sum / n as f64;
        let m2 = x
            .iter()
            .filter(|v| !v.is_nan())
            .map(|v| (v - mean) * (v - mean))
            .sum();
        GrandSums { n, sum, m2 }
    }

    fn merge(&mut self, other: &GrandSums) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let delta = other.sum / nb - self.sum / na;
        self.m2 += other.m2 + delta * delta * na * nb / (na + nb);
        self.n += other.n;
        self.sum += other.sum;
    }

    /// Mean and sd (n − 1), as `grouped::mean_sd` gives them for the whole column.
    pub fn mean_sd(&self) -> (Option<f64>, Option<f64>) {
        if self.n == 0 {
            return (None, None);
        }
        let mean = self.sum / self.n as f64;
        if self.n < 2 {
            return (Some(mean), None);
        }
        (
            Some(mean),
            Some((self.m2.max(0.0) / (self.n - 1) as f64).sqrt()),
        )
    }
}

/// Per group value: (sum, count) of the non-missing values.
pub type GroupSums = HashMap<GroupKey, (f64, usize)>;

#[derive(Debug, Clone)]
pub struct SampleSummaries {
    pub mode: SummaryMode,
    pub grand: HashMap<CallKey, GrandSums>,
    pub grouped: HashMap<CallKey, GroupSums>,
}

impl SampleSummaries {
    pub fn collecting() -> Self {
        SampleSummaries {
            mode: SummaryMode::Collect,
            grand: HashMap::new(),
            grouped: HashMap::new(),
        }
    }

    /// These summaries, applied.
    pub fn applied(mut self) -> Self {
        self.mode = SummaryMode::Apply;
        self
    }

    /// Add a later piece's sums (pieces merge in file order).
    pub fn merge(&mut self, other: &SampleSummaries) {
        for (key, sums) in &other.grand {
            self.grand.entry(*key).or_default().merge(sums);
        }
        for (key, groups) in &other.grouped {
            let mine = self.grouped.entry(*key).or_default();
            for (group, (sum, count)) in groups {
                let entry = mine.entry(group.clone()).or_insert((0.0, 0));
                entry.0 += sum;
                entry.1 += count;
            }
        }
    }

    pub fn record_grand(&mut self, key: CallKey, sums: GrandSums) {
        self.grand.entry(key).or_default().merge(&sums);
    }

    pub fn record_groups(&mut self, key: CallKey, x: &[f64], groups: &[Option<GroupKey>]) {
        let mine = self.grouped.entry(key).or_default();
        // Rows of one group are usually adjacent: add up a run before touching the map.
        let mut run: Option<(&GroupKey, f64, usize)> = None;
        for (v, g) in x.iter().zip(groups) {
            let Some(g) = g else { continue };
            if v.is_nan() {
                continue;
            }
            match &mut run {
                Some((k, sum, count)) if *k == g => {
                    *sum += v;
                    *count += 1;
                }
                _ => {
                    if let Some((k, sum, count)) = run.take() {
                        let entry = mine.entry(k.clone()).or_insert((0.0, 0));
                        entry.0 += sum;
                        entry.1 += count;
                    }
                    run = Some((g, *v, 1));
                }
            }
        }
        if let Some((k, sum, count)) = run {
            let entry = mine.entry(k.clone()).or_insert((0.0, 0));
            entry.0 += sum;
            entry.1 += count;
        }
    }

    /// The mean of group `g` for call `key` (NaN for a group without values).
    pub fn group_mean(&self, key: CallKey, g: &GroupKey) -> f64 {
        match self.grouped.get(&key).and_then(|m| m.get(g)) {
            Some(&(sum, count)) if count > 0 => sum / count as f64,
            _ => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_merge_to_the_whole_columns_mean_and_sd() {
        let x = [1.0, 2.5, f64::NAN, 6.0, -3.0, 4.25, 8.0, 0.5];
        let whole = crate::prepare::grouped::mean_sd(&x);
        let mut merged = GrandSums::default();
        for piece in [&x[..3], &x[3..4], &x[4..]] {
            merged.merge(&GrandSums::of(piece));
        }
        let (mean, sd) = merged.mean_sd();
        assert!((mean.unwrap() - whole.0.unwrap()).abs() < 1e-15);
        assert!((sd.unwrap() - whole.1.unwrap()).abs() < 1e-14);
    }
}
