//! Using tandem as a library: fit the sleepstudy model file and read numbers off the report.
//!
//! Run with `cargo run --release --example fit_sleepstudy`.

use std::path::Path;

use tandem::pipeline::{fit_file, FitOptions, Format};

fn main() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/lme4/sleepstudy.tandem");
    let options = FitOptions {
        format: Format::Json,
        ..FitOptions::default()
    };
    let outcome = fit_file(&model, &options);
    if !outcome.success {
        eprint!("{}", outcome.stderr);
        std::process::exit(1);
    }
    let report: serde_json::Value = serde_json::from_str(&outcome.stdout).expect("JSON report");
    println!("REML criterion: {}", report["fit"]["deviance"]);
    for row in report["fixed"].as_array().into_iter().flatten() {
        println!(
            "{:<12} {:>10.4} (SE {:.4}, df {:.2})",
            row["term"].as_str().unwrap_or(""),
            row["estimate"].as_f64().unwrap_or(f64::NAN),
            row["se"].as_f64().unwrap_or(f64::NAN),
            row["df"].as_f64().unwrap_or(f64::NAN)
        );
    }
}
