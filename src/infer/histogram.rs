//! Binning a defined quantity's Monte Carlo draws or bootstrap replicates for a figure: equal-width
//! bins, their number chosen from how many values there are, over a range that a few extreme
//! values (a ratio such as the proportion mediated, whose denominator can come near zero) cannot
//! stretch until the rest is one bar.
//!
//! Owns the bin layout only; the caller hands it exactly the values its interval used. It must
//! not draw, and it must not decide which draws or replicates count.

use super::bootstrap::quantile;

/// Values binned into equal-width bins; values outside the binned range are counted, not drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lower: f64,
    pub width: f64,
    pub counts: Vec<usize>,
    /// Finite values left of `lower` / right of the last bin (only when the tails were cut).
    pub below: usize,
    pub above: usize,
    /// The right end of the binned range as chosen (`upper()` recomputes it from the bins and
    /// may differ in the last digit): a value above it is counted in `above`.
    cut: f64,
}

impl Histogram {
    /// Right edge of the last bin.
    pub fn upper(&self) -> f64 {
        self.lower + self.width * self.counts.len() as f64
    }

    /// Every finite value binned, whether in a bin or outside the range.
    pub fn total(&self) -> usize {
        self.counts.iter().sum::<usize>() + self.below + self.above
    }
}

/// Most bins a figure gets: at 800 px wide a bar is still ~10 px.
pub const MAX_BINS: usize = 60;
const MIN_BINS: usize = 10;

/// Share of each tail outside the central range that decides whether the tails are extreme.
pub const TAIL: f64 = 0.005;

/// Rice's rule, 2·n^(1/3) bins, between `MIN_BINS` and `MAX_BINS`: 2000 bootstrap replicates get
/// 26 bins, 20000 or more Monte Carlo draws 60.
pub fn bin_count(n: usize) -> usize {
    ((2.0 * (n as f64).cbrt()).ceil() as usize).clamp(MIN_BINS, MAX_BINS)
}

/// Bins the finite `values` (NaN and infinities are left out, as the intervals leave them out).
///
/// The range is the values' full range unless it is more than twice the central 99% range (for
/// 100000 normal draws it is about 1.7 times): then the range is the central 99% widened by a
/// quarter on each side, and what falls outside is counted in `below`/`above`.
pub fn histogram(values: &[f64]) -> Histogram {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
        return empty_histogram(0);
    };
    let (q_lo, q_hi) = (quantile(&sorted, TAIL), quantile(&sorted, 1.0 - TAIL));
    let mut h = layout(sorted.len(), min, max, q_lo, q_hi);
    for &v in &sorted {
        h.add(v);
    }
    h
}

/// No values: `bin_count(n)` bins over [0, 1).
pub fn empty_histogram(n: usize) -> Histogram {
    Histogram {
        lower: 0.0,
        width: 1.0,
        counts: vec![0; bin_count(n)],
        below: 0,
        above: 0,
        cut: 1.0,
    }
}

/// The empty bins for `n` finite values between `min` and `max` whose `TAIL` and `1 − TAIL`
/// quantiles are `q_lo` and `q_hi` (see `histogram`).
pub fn layout(n: usize, min: f64, max: f64, q_lo: f64, q_hi: f64) -> Histogram {
    let bins = bin_count(n);
    let central = q_hi - q_lo;
    let (lo, hi) = if central > 0.0 && max - min > 2.0 * central {
        (
            (q_lo - 0.25 * central).max(min),
            (q_hi + 0.25 * central).min(max),
        )
    } else {
        (min, max)
    };
    // A constant quantity still gets a visible bar.
    let (lower, upper) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    Histogram {
        lower,
        width: (upper - lower) / bins as f64,
        counts: vec![0; bins],
        below: 0,
        above: 0,
        cut: upper,
    }
}

impl Histogram {
    /// Counts `v` (finite values only; others are left out).
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let bins = self.counts.len();
        if v < self.lower {
            self.below += 1;
        } else if v > self.cut {
            self.above += 1;
        } else {
            let k = (((v - self.lower) / self.width) as usize).min(bins - 1);
            self.counts[k] += 1;
        }
    }

    /// Adds the counts of `other`, binned the same way.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.below += other.below;
        self.above += other.above;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_count_every_finite_value_once() {
        let values: Vec<f64> = (0..=40).map(f64::from).chain([f64::NAN]).collect();
        let h = histogram(&values);
        // 41 values: 2·41^(1/3) = 6.9, so the minimum of 10 bins over [0, 40].
        assert_eq!(h.counts.len(), 10);
        assert_eq!((h.lower, h.width), (0.0, 4.0));
        // [0,4), [4,8), ... and the maximum in the last bin.
        assert_eq!(h.counts[0], 4);
        assert_eq!(h.counts[9], 5);
        assert_eq!((h.below, h.above, h.total()), (0, 0, 41));
    }

    #[test]
    fn bin_count_follows_rices_rule() {
        assert_eq!(bin_count(0), 10);
        assert_eq!(bin_count(2000), 26);
        assert_eq!(bin_count(8000), 40);
        assert_eq!(bin_count(100_000), 60);
    }

    #[test]
    fn extreme_tails_are_counted_outside_the_range() {
        // 1000 values 0..1 evenly, plus one at 1000 and one at −500: the full range would put
        // everything in the first bar.
        let mut values: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0).collect();
        values.extend([1000.0, -500.0]);
        let h = histogram(&values);
        assert_eq!((h.below, h.above), (1, 1));
        assert_eq!(h.total(), 1002);
        // The central 99% is [q(0.005), q(0.995)] (quantile type 7 of the 1002 values:
        // 4/999 + 0.005/999 and 994/999 + 0.995/999); a quarter of its width either side.
        let (q_lo, q_hi) = (0.004009009, 0.995990991);
        let central = q_hi - q_lo;
        assert!((h.lower - (q_lo - 0.25 * central)).abs() < 1e-8, "{h:?}");
        assert!((h.upper() - (q_hi + 0.25 * central)).abs() < 1e-8, "{h:?}");
        assert_eq!(h.counts.iter().sum::<usize>(), 1000);
        // 2·1002^(1/3) = 20.01, so 21 bins: those within [0, 1] are all filled.
        assert_eq!(h.counts.len(), 21);
        assert!(h.counts[4..17].iter().all(|&c| c > 0), "{:?}", h.counts);
    }

    #[test]
    fn normal_looking_tails_are_not_cut() {
        // 2000 evenly spaced normal quantiles: the full range is 7σ, the central 99% 5.2σ.
        let normal = statrs::distribution::Normal::new(0.0, 1.0).unwrap();
        let values: Vec<f64> = (0..2000)
            .map(|i| {
                use statrs::distribution::ContinuousCDF;
                normal.inverse_cdf((i as f64 + 0.5) / 2000.0)
            })
            .collect();
        let h = histogram(&values);
        assert_eq!((h.below, h.above), (0, 0));
        assert_eq!(h.lower, values[0]);
    }

    #[test]
    fn a_constant_gets_one_visible_bar() {
        let h = histogram(&[2.0; 50]);
        assert_eq!(h.total(), 50);
        assert!(h.lower < 2.0 && h.upper() > 2.0);
        assert_eq!(h.counts.iter().filter(|&&c| c > 0).count(), 1);
    }

    #[test]
    fn no_finite_values_give_empty_bins() {
        let h = histogram(&[f64::NAN, f64::INFINITY]);
        assert_eq!(h.total(), 0);
    }
}
