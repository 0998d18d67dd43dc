//! Monte Carlo summaries past `EXACT_DRAWS` draws, in memory that grows with the number of
//! definitions, not of draws: 10⁸ draws of one definition would otherwise hold 800 MB of values.
//!
//! Owns the streaming method; it must not decide levels, warnings or which draws count (the
//! caller asks for probabilities; non-finite draws are left out, as the exact path leaves them).
//!
//! The method is exact, not an approximation: the same order statistics and hence the same
//! quantiles as sorting every draw. Draws are a deterministic function of the seed and the chunk
//! index, so they can be made more than once:
//!
//! 1. **Pilot.** The first `EXACT_DRAWS` draws (the stream's own first chunks) give, per
//!    definition and probability p, a bracket [a, b] of values around the pilot's quantile,
//!    `BRACKET_SDS` binomial SDs of rank wide on each side.
//! 2. **One pass** over all draws, chunk batches in parallel and folded in chunk order: per
//!    definition the count of finite draws, their mean and sum of squared deviations (merged
//!    chunk by chunk with Chan, Golub and LeVeque's pairwise update), and per bracket the number
//!    of draws below a, the number equal to a or to b, and the draws strictly inside.
//! 3. **Order statistics.** Type 7 needs ranks ⌊(N − 1)p⌋ and ⌈(N − 1)p⌉ among the N finite
//!    draws; they fall in the bracket unless the pilot was off by more than eight SDs, which is
//!    checked by counting. A bracket that missed is widened eightfold and the pass repeated.
//!
//! The mean and SD are the same quantities as on the exact path, summed in another order (their
//! last digits differ); the quantiles are the same order statistics, interpolated as there.

use rayon::prelude::*;

use super::defined::DefinedQuantities;
use super::histogram::Histogram;
use super::monte_carlo::{
    draw_chunk, draw_values, finite_column, progress_bar, DrawFactor, CHUNK_DRAWS,
};

/// Up to this many draws every draw is kept and sorted (the exact path); past it, the stream.
pub const EXACT_DRAWS: usize = 1 << 20;

/// Chunks drawn at once, then folded in order: 64 × 4096 draws × 8 bytes per definition.
const BATCH_CHUNKS: usize = 64;

/// The bracket's half-width in binomial SDs of the pilot's rank.
const BRACKET_SDS: f64 = 8.0;

/// Two order statistics of the finite draws and the weight between them: the p-quantile is
/// (1 − h)·low + h·high, by whichever rounding the caller's convention uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderStatistics {
    pub low: f64,
    pub high: f64,
    pub h: f64,
}

/// One definition's draws, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedColumn {
    pub finite: usize,
    pub mean: f64,
    /// n − 1 divisor.
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    /// One per requested probability, in order.
    pub quantiles: Vec<OrderStatistics>,
}

/// Count, mean and sum of squared deviations of finite values.
#[derive(Debug, Clone, Copy)]
struct Moments {
    count: usize,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Moments {
    fn of(values: impl Iterator<Item = f64> + Clone) -> Moments {
        let finite = values.filter(|v| v.is_finite());
        let (count, sum) = finite
            .clone()
            .fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
        if count == 0 {
            return Moments {
                count,
                mean: 0.0,
                m2: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            };
        }
        let mean = sum / count as f64;
        let (m2, min, max) = finite.fold((0.0, f64::INFINITY, f64::NEG_INFINITY), |acc, v| {
            (acc.0 + (v - mean) * (v - mean), acc.1.min(v), acc.2.max(v))
        });
        Moments {
            count,
            mean,
            m2,
            min,
            max,
        }
    }

    /// Chan, Golub and LeVeque's pairwise combination.
    fn merge(self, other: Moments) -> Moments {
        if other.count == 0 {
            return self;
        }
        if self.count == 0 {
            return other;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        Moments {
            count: self.count + other.count,
            mean: self.mean + delta * other.count as f64 / n,
            m2: self.m2 + other.m2 + delta * delta * self.count as f64 * other.count as f64 / n,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }
}

/// What one pass keeps of one bracket [a, b].
#[derive(Debug, Clone, Default)]
struct Bracket {
    a: f64,
    b: f64,
    below: usize,
    at_a: usize,
    at_b: usize,
    inside: Vec<f64>,
}

impl Bracket {
    fn add(&mut self, v: f64) {
        if v < self.a {
            self.below += 1;
        } else if v == self.a {
            self.at_a += 1;
        } else if v < self.b {
            self.inside.push(v);
        } else if v == self.b {
            self.at_b += 1;
        }
    }

    fn merge(&mut self, other: Bracket) {
        self.below += other.below;
        self.at_a += other.at_a;
        self.at_b += other.at_b;
        self.inside.extend(other.inside);
    }

    /// The value of 0-based rank `rank` among the finite draws, if the bracket holds it
    /// (`inside` sorted).
    fn rank(&self, rank: usize) -> Option<f64> {
        let local = rank.checked_sub(self.below)?;
        if local < self.at_a {
            return Some(self.a);
        }
        let local = local - self.at_a;
        if let Some(&v) = self.inside.get(local) {
            return Some(v);
        }
        (local - self.inside.len() < self.at_b).then_some(self.b)
    }
}

/// Runs `per_chunk` on every chunk's draw-major values (in parallel batches) and `fold` on the
/// results in chunk order: the same digits for any number of threads.
fn for_each_chunk<T: Send>(
    quantities: &DefinedQuantities,
    factor: &DrawFactor,
    draws: usize,
    seed: u64,
    progress: bool,
    per_chunk: impl Fn(&[f64]) -> T + Sync,
    mut fold: impl FnMut(T),
) {
    let m = quantities.len();
    let chunks = draws.div_ceil(CHUNK_DRAWS);
    let bar = progress_bar(progress, draws);
    for start in (0..chunks).step_by(BATCH_CHUNKS) {
        let end = (start + BATCH_CHUNKS).min(chunks);
        let results: Vec<T> = (start..end)
            .into_par_iter()
            .map(|chunk| {
                let n = CHUNK_DRAWS.min(draws - chunk * CHUNK_DRAWS);
                let mut out = vec![0.0; n * m];
                draw_chunk(quantities, factor, seed, chunk, &mut out);
                bar.inc(n as u64);
                per_chunk(&out)
            })
            .collect();
        results.into_iter().for_each(&mut fold);
    }
    bar.finish_and_clear();
}

/// Brackets around each probability of `probabilities` from a sorted pilot sample, `width` SDs
/// of rank wide on each side.
fn brackets_from(pilot: &[f64], probabilities: &[f64], width: f64) -> Vec<Bracket> {
    let n = pilot.len();
    probabilities
        .iter()
        .map(|&p| {
            if n == 0 {
                return Bracket {
                    a: f64::NEG_INFINITY,
                    b: f64::INFINITY,
                    ..Bracket::default()
                };
            }
            let centre = p * (n - 1) as f64;
            let half = width * (p * (1.0 - p) * n as f64).sqrt() + 2.0;
            let a = if centre - half <= 0.0 {
                f64::NEG_INFINITY
            } else {
                pilot[(centre - half).floor() as usize]
            };
            let b = if centre + half >= (n - 1) as f64 {
                f64::INFINITY
            } else {
                pilot[(centre + half).ceil() as usize]
            };
            Bracket {
                a,
                b,
                ..Bracket::default()
            }
        })
        .collect()
}

/// Every definition's finite count, mean, SD, range and the order statistics at each of
/// `probabilities`, over `draws` draws (more than `EXACT_DRAWS`), exactly as sorting all of
/// them would give them.
pub fn summarise(
    quantities: &DefinedQuantities,
    factor: &DrawFactor,
    draws: usize,
    seed: u64,
    probabilities: &[f64],
    progress: bool,
) -> Vec<StreamedColumn> {
    let m = quantities.len();
    if m == 0 {
        return Vec::new();
    }
    let sorted_pilot = sorted_pilot(quantities, factor, draws, seed);
    let mut width = vec![BRACKET_SDS; m];
    loop {
        let brackets: Vec<Vec<Bracket>> = (0..m)
            .map(|k| brackets_from(&sorted_pilot[k], probabilities, width[k]))
            .collect();
        let (moments, mut kept) = count_pass(quantities, factor, draws, seed, progress, &brackets);
        let mut columns = Vec::with_capacity(m);
        let mut missed = false;
        for k in 0..m {
            let (column, misses) = order_statistics(moments[k], &mut kept[k], probabilities);
            // A bracket that missed its rank is widened eightfold for the next pass.
            for _ in 0..misses {
                width[k] *= 8.0;
            }
            missed |= misses > 0;
            columns.push(column);
        }
        if !missed {
            return columns;
        }
    }
}

/// Per definition, the finite values of the pilot's draws (the stream's first `EXACT_DRAWS`),
/// sorted.
fn sorted_pilot(
    quantities: &DefinedQuantities,
    factor: &DrawFactor,
    draws: usize,
    seed: u64,
) -> Vec<Vec<f64>> {
    let m = quantities.len();
    let pilot_draws = EXACT_DRAWS.min(draws);
    let pilot = draw_values(quantities, factor, pilot_draws, seed, false);
    (0..m)
        .map(|k| {
            let mut column = finite_column(&pilot, m, k);
            column.sort_by(f64::total_cmp);
            column
        })
        .collect()
}

/// One pass over all draws: per definition its moments (`None` without draws) and what each of
/// its `brackets` keeps, merged in chunk order.
fn count_pass(
    quantities: &DefinedQuantities,
    factor: &DrawFactor,
    draws: usize,
    seed: u64,
    progress: bool,
    brackets: &[Vec<Bracket>],
) -> (Vec<Option<Moments>>, Vec<Vec<Bracket>>) {
    let m = quantities.len();
    let mut moments: Vec<Option<Moments>> = vec![None; m];
    let mut kept = brackets.to_vec();
    for_each_chunk(
        quantities,
        factor,
        draws,
        seed,
        progress,
        |values: &[f64]| {
            (0..m)
                .map(|k| {
                    let column = values.iter().skip(k).step_by(m).copied();
                    let mut chunk_brackets = brackets[k].clone();
                    for v in column.clone().filter(|v| v.is_finite()) {
                        chunk_brackets.iter_mut().for_each(|b| b.add(v));
                    }
                    (Moments::of(column), chunk_brackets)
                })
                .collect::<Vec<_>>()
        },
        |chunk| {
            for (k, (chunk_moments, chunk_brackets)) in chunk.into_iter().enumerate() {
                moments[k] = Some(match moments[k] {
                    Some(so_far) => so_far.merge(chunk_moments),
                    None => chunk_moments,
                });
                for (b, c) in kept[k].iter_mut().zip(chunk_brackets) {
                    b.merge(c);
                }
            }
        },
    );
    (moments, kept)
}

/// One definition's summary from its pass (`kept`: one bracket per probability, sorted here),
/// and how many of its brackets missed their ranks (then the summary is incomplete).
fn order_statistics(
    moments: Option<Moments>,
    kept: &mut [Bracket],
    probabilities: &[f64],
) -> (StreamedColumn, usize) {
    let mo = moments.unwrap_or_else(|| Moments::of(std::iter::empty()));
    let mut quantiles = Vec::with_capacity(probabilities.len());
    let mut misses = 0;
    for (bracket, &p) in kept.iter_mut().zip(probabilities) {
        bracket.inside.sort_by(f64::total_cmp);
        if mo.count == 0 {
            quantiles.push(OrderStatistics {
                low: f64::NAN,
                high: f64::NAN,
                h: 0.0,
            });
            continue;
        }
        let index = (mo.count - 1) as f64 * p;
        let (lo, hi) = (
            index.floor() as usize,
            (index.ceil() as usize).min(mo.count - 1),
        );
        match (bracket.rank(lo), bracket.rank(hi)) {
            (Some(low), Some(high)) => quantiles.push(OrderStatistics {
                low,
                high,
                h: index - lo as f64,
            }),
            _ => misses += 1,
        }
    }
    let column = StreamedColumn {
        finite: mo.count,
        mean: if mo.count > 0 { mo.mean } else { f64::NAN },
        sd: (mo.m2 / (mo.count as f64 - 1.0)).sqrt(),
        min: mo.min,
        max: mo.max,
        quantiles,
    };
    (column, misses)
}

/// The histograms `histogram::histogram` would make of every definition's finite draws, from a
/// summary for the binned range and one more pass to count.
pub fn histograms(
    quantities: &DefinedQuantities,
    factor: &DrawFactor,
    draws: usize,
    seed: u64,
) -> Vec<Histogram> {
    use super::histogram::{empty_histogram, layout, TAIL};
    let m = quantities.len();
    if m == 0 {
        return Vec::new();
    }
    let summary = summarise(quantities, factor, draws, seed, &[TAIL, 1.0 - TAIL], false);
    let mut out: Vec<Histogram> = summary
        .iter()
        .map(|c| {
            if c.finite == 0 {
                return empty_histogram(0);
            }
            // As `bootstrap::quantile` interpolates.
            let q = |o: &OrderStatistics| o.low + o.h * (o.high - o.low);
            layout(
                c.finite,
                c.min,
                c.max,
                q(&c.quantiles[0]),
                q(&c.quantiles[1]),
            )
        })
        .collect();
    let empty = out.clone();
    for_each_chunk(
        quantities,
        factor,
        draws,
        seed,
        false,
        |values: &[f64]| {
            let mut chunk = empty.clone();
            for (k, h) in chunk.iter_mut().enumerate() {
                for v in values.iter().skip(k).step_by(m) {
                    h.add(*v);
                }
            }
            chunk
        },
        |chunk| {
            for (h, c) in out.iter_mut().zip(chunk) {
                h.merge(&c);
            }
        },
    );
    out
}
