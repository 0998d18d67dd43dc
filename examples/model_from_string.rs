//! Build a model from a string and fit it to data held in memory: the library's way in for
//! programs that generate their own data or model text.
//!
//! Run with `cargo run --release --example model_from_string`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tandem::data::DataTable;
use tandem::pipeline::{fit_source, FitOptions};

fn main() {
    // 30 classes of 12 pupils: a random intercept and a random slope of `hours` per class.
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (mut class, mut hours, mut score) = (Vec::new(), Vec::new(), Vec::new());
    for c in 0..30 {
        let intercept = 50.0 + 5.0 * rng.sample::<f64, _>(StandardNormal);
        let slope = 2.0 + 0.5 * rng.sample::<f64, _>(StandardNormal);
        for _ in 0..12 {
            let h = rng.random_range(0.0..10.0);
            class.push(c as f64);
            hours.push(h);
            score.push(intercept + slope * h + 4.0 * rng.sample::<f64, _>(StandardNormal));
        }
    }
    let table = DataTable::from_numeric(
        "pupils (in memory)",
        vec![
            ("class".into(), class),
            ("hours".into(), hours),
            ("score".into(), score),
        ],
    );
    let model = "
        # the data come from the program, so the model names no file
        score ~ 1 + effort*hours + (1 + effort | class)
        estimate reml
    ";
    let outcome = fit_source("pupils.tandem", model, table, &FitOptions::default());
    print!("{}", outcome.stdout);
    eprint!("{}", outcome.stderr);
    std::process::exit(if outcome.success { 0 } else { 1 });
}
