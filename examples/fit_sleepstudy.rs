//! Using tandem as a library: fit the sleepstudy model file and read numbers off the typed
//! report (no JSON in between); errors come back as diagnostics, rendered here at the edge.
//!
//! Run with `cargo run --release --example fit_sleepstudy`.

use std::path::Path;

use tandem::diagnostics::{render, SourceFile};
use tandem::pipeline::fit_model_file;
use tandem::FitOptions;

fn main() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/lme4/sleepstudy.tandem");
    let fitted = match fit_model_file(&model, &FitOptions::default()) {
        Ok(fitted) => fitted,
        Err(errors) => {
            let text = std::fs::read_to_string(&model).unwrap_or_default();
            let source = SourceFile {
                path: &model,
                text: &text,
            };
            eprint!("{}", render(&errors, Some(&source)));
            std::process::exit(1);
        }
    };
    let report = &fitted.fits[0].report;
    println!("REML criterion: {}", report.fit.deviance);
    for row in &report.fixed {
        println!(
            "{:<12} {:>10.4} (SE {:.4}, df {:.2})",
            row.term, row.estimate, row.se, row.df
        );
    }
}
