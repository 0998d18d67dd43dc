//! Build a model from a string and fit it to data held in memory: the library's way in for
//! programs that generate their own data or model text. The results are typed values; the
//! errors are diagnostics, rendered here at the edge as the command line would.
//!
//! Run with `cargo run --release --example model_from_string`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tandem::data::DataTable;
use tandem::diagnostics::{render, SourceFile};
use tandem::{fit, FitOptions};

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
    let fitted = match fit("pupils.tandem", model, table, &FitOptions::default()) {
        Ok(fitted) => fitted,
        Err(errors) => {
            let path = std::path::Path::new("pupils.tandem");
            let source = SourceFile { path, text: model };
            eprint!("{}", render(&errors, Some(&source)));
            std::process::exit(1);
        }
    };
    let report = &fitted.fits[0].report;
    for warning in &report.fit.warnings {
        eprintln!("warning: {}", warning.message);
    }
    println!(
        "{} fit, log-likelihood {:.3}, converged: {}",
        report.fit.method, report.fit.loglik, report.fit.converged
    );
    for row in &report.fixed {
        println!(
            "{:<14} {:>10.4} (SE {:.4}, df {:.2}, p {:.4})",
            row.term, row.estimate, row.se, row.df, row.p
        );
    }
    std::process::exit(if report.fit.converged { 0 } else { 1 });
}
