//! Binned residuals of a 0/1 outcome (Gelman & Hill 2007, §5.6; `arm::binnedplot`): the
//! observations cut into bins of their fitted means, per bin the average fitted mean and the
//! average residual y − μ, with the band within which that average falls about 95% of the time
//! were the model true. A 0/1 outcome's Pearson residuals against fitted means are two curves
//! and show little; averaged over bins, a misfit shows.
//!
//! Owns the bins (arm's `binned.resids` rule, so R reproduces them) and the band; must not fit
//! or draw.

/// One bin: the averages of its observations and the half-width of its band.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualBin {
    /// The average fitted mean μ of the bin's observations.
    pub fitted: f64,
    /// The average residual y − μ.
    pub residual: f64,
    pub n: usize,
    /// The smallest and largest fitted mean in the bin.
    pub lowest: f64,
    pub highest: f64,
    /// 2 √(Σ μ(1 − μ)) / n: twice the standard deviation of the average residual if the model
    /// holds (given the conditional modes). arm draws 2 sd(residuals)/√n instead, which shrinks
    /// to nothing in a bin whose outcomes are all 0 (or all 1) however badly the model fits.
    pub band: f64,
}

/// `arm::binnedplot`'s number of bins for `n` observations: ⌊√n⌋ from 100 on, 10 from 11 to
/// 99, ⌊n/2⌋ up to 10.
pub fn bin_count(n: usize) -> usize {
    if n >= 100 {
        (n as f64).sqrt().floor() as usize
    } else if n > 10 {
        10
    } else {
        n / 2
    }
}

/// The bins of `fitted` means of a 0/1 outcome and their `residual`s y − μ (finite pairs only),
/// in order of the fitted means; bins arm's rule would leave empty are left out.
pub fn binned_residuals(fitted: &[f64], residual: &[f64]) -> Vec<ResidualBin> {
    let (x, y): (Vec<f64>, Vec<f64>) = fitted
        .iter()
        .zip(residual)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(&x, &y)| (x, y))
        .unzip();
    if x.len() < 2 {
        return Vec::new();
    }
    let breaks = breaks(&x, bin_count(x.len()));
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); breaks.len() + 1];
    for (i, &v) in x.iter().enumerate() {
        // R's `cut` (right-closed): the bin above every break below v.
        members[breaks.partition_point(|&b| b < v)].push(i);
    }
    (members.iter().filter(|m| !m.is_empty()))
        .map(|m| {
            let n = m.len() as f64;
            let variance: f64 = m.iter().map(|&i| x[i] * (1.0 - x[i])).sum();
            ResidualBin {
                fitted: m.iter().map(|&i| x[i]).sum::<f64>() / n,
                residual: m.iter().map(|&i| y[i]).sum::<f64>() / n,
                n: m.len(),
                lowest: m.iter().map(|&i| x[i]).fold(f64::INFINITY, f64::min),
                highest: m.iter().map(|&i| x[i]).fold(f64::NEG_INFINITY, f64::max),
                band: 2.0 * variance.max(0.0).sqrt() / n,
            }
        })
        .collect()
}

/// The finite breaks between bins, increasing, as `arm::binned.resids` places them: midway
/// between the sorted values either side of each ⌊n k/bins⌋-th; at a tie, below the tied
/// value's first occurrence (no break below the smallest value).
fn breaks(x: &[f64], bins: usize) -> Vec<f64> {
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let (min, max) = (sorted[0], sorted[n - 1]);
    let mut breaks = Vec::new();
    if bins <= 1 {
        // arm's one class is two bins, split midway across the range.
        breaks.push((min + max) / 2.0);
    }
    for k in 1..bins {
        let index = n * k / bins; // 1-based in R: sorted[index - 1] and sorted[index]
        let (mut lo, hi) = (sorted[index - 1], sorted[index]);
        if lo == hi {
            if lo == min {
                continue;
            }
            lo = sorted[..sorted.partition_point(|&v| v < lo)]
                .last()
                .copied()
                .unwrap_or(f64::NEG_INFINITY);
        }
        breaks.push((lo + hi) / 2.0);
    }
    breaks.dedup();
    breaks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_arms_rule() {
        assert_eq!(bin_count(720), 26);
        assert_eq!(bin_count(50), 10);
        assert_eq!(bin_count(7), 3);
        // 20 observations: 10 bins of 2, split midway between neighbours.
        let x: Vec<f64> = (0..20).map(|i| 0.02 + 0.045 * i as f64).collect();
        let y = vec![0.1; 20];
        let bins = binned_residuals(&x, &y);
        assert_eq!(bins.len(), 10);
        assert!(bins
            .iter()
            .all(|b| b.n == 2 && (b.residual - 0.1).abs() < 1e-12));
        let m = [x[0], x[1]];
        let want = 2.0 * (m[0] * (1.0 - m[0]) + m[1] * (1.0 - m[1])).sqrt() / 2.0;
        assert!((bins[0].band - want).abs() < 1e-15);
    }

    #[test]
    fn ties_stay_in_one_bin() {
        // Every value tied: no break below the smallest, so one bin.
        let bins = binned_residuals(&[0.3; 30], &[0.0; 30]);
        assert_eq!(bins.len(), 1);
        assert_eq!(bins[0].n, 30);
    }
}
