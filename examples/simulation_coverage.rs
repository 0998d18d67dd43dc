//! A small simulation study: how often does the 95% interval of a defined quantity cover the
//! truth? Data sets are simulated from a two-level model with a random slope, each is fitted
//! through the library, and the Monte Carlo interval of `effect := 10*b` (the gain over ten
//! hours) is compared with the truth.
//!
//! Run with `cargo run --release --example simulation_coverage [-- replicates]` (default 100).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use tandem::data::DataTable;
use tandem::FitOptions;

const SLOPE: f64 = 2.0;

fn simulate(replicate: u64) -> DataTable {
    // Each data set has its own stream, so results do not depend on the thread count.
    let mut rng = ChaCha8Rng::seed_from_u64(1000 + replicate);
    let (mut group, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for g in 0..25 {
        let u0 = 3.0 * rng.sample::<f64, _>(StandardNormal);
        let u1 = 0.5 * rng.sample::<f64, _>(StandardNormal);
        for _ in 0..8 {
            let xi = rng.random_range(0.0..10.0);
            group.push(g as f64);
            x.push(xi);
            y.push(20.0 + u0 + (SLOPE + u1) * xi + 2.0 * rng.sample::<f64, _>(StandardNormal));
        }
    }
    DataTable::from_numeric(
        "simulated",
        vec![("g".into(), group), ("x".into(), x), ("y".into(), y)],
    )
}

fn main() {
    let replicates: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let model = "
        y ~ 1 + b*x + (1 + b | g)
        effect := 10*b
        estimate reml
        interval monte_carlo(draws = 2000, level = 0.95, seed = 1)
    ";
    let options = FitOptions::default();
    let truth = 10.0 * SLOPE;
    let covered: Vec<Option<bool>> = (0..replicates)
        .into_par_iter()
        .map(|r| {
            let fitted = tandem::fit("simulation.tandem", model, simulate(r), &options).ok()?;
            let report = &fitted.fits[0].report;
            if !report.fit.converged {
                return None;
            }
            let effect = report.defined.first()?;
            let (lo, hi) = (effect.ci_lower?, effect.ci_upper?);
            Some(lo <= truth && truth <= hi)
        })
        .collect();
    let fitted: Vec<bool> = covered.iter().flatten().copied().collect();
    let hits = fitted.iter().filter(|&&c| c).count();
    println!(
        "{} of {} data sets fitted; the 95% Monte Carlo interval of 10*b covered the truth ({truth}) in {} ({:.1}%)",
        fitted.len(),
        replicates,
        hits,
        100.0 * hits as f64 / fitted.len().max(1) as f64
    );
}
