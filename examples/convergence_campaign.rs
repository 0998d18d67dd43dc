//! The convergence campaign: 200 simulated data sets × {REML, ML} fitted through the library
//! and compared with lme4's best optimum over four optimizers (frozen in
//! `tests/reference/campaign.json`). `tests/integration/convergence.rs` asserts the same comparison.
//!
//! - `cargo run --release --example convergence_campaign` fits every case and prints how many
//!   are better than lme4 (by more than 1e-6 in log-likelihood; REML: the REML criterion), the
//!   same, worse, did not converge, or were refused, per family and in total, then the cases
//!   that fail the acceptance rule.
//! - `cargo run --release --example convergence_campaign -- write DIR` writes each data set's
//!   CSV and `manifest.csv` (id, csv, formula, REML, factors) for
//!   `tests/reference/scripts/campaign.R`.

#[path = "../tests/campaign/generator.rs"]
mod generator;

use std::path::PathBuf;

fn write(dir: PathBuf) -> std::io::Result<()> {
    std::fs::create_dir_all(&dir)?;
    let mut manifest = String::from("id,csv,formula,REML,factors\n");
    for case in generator::cases() {
        let file = format!("{}.csv", case.dataset);
        if case.reml {
            std::fs::write(dir.join(&file), generator::csv(&case))?;
        }
        manifest.push_str(&format!(
            "{},{},\"{}\",{},{}\n",
            case.id,
            file,
            case.formula,
            if case.reml { "TRUE" } else { "FALSE" },
            case.factors.join(";")
        ));
    }
    std::fs::write(dir.join("manifest.csv"), manifest)?;
    println!(
        "wrote {} data sets and manifest.csv to {}",
        generator::DATASETS,
        dir.display()
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("write") {
        let dir = args
            .get(1)
            .map(PathBuf::from)
            .unwrap_or_else(|| "campaign".into());
        if let Err(e) = write(dir) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let start = std::time::Instant::now();
    let results = generator::run_all();
    println!(
        "{} cases fitted in {:.1} s (wall)\n",
        results.len(),
        start.elapsed().as_secs_f64()
    );
    print!("{}", generator::summary(&results));
    let failures = generator::failures(&results);
    if failures.is_empty() {
        println!("\nevery case passes (logLik ≥ lme4's − 1e-6, converged, refusals agree)");
    } else {
        println!("\n{} cases fail the acceptance rule:", failures.len());
        for f in failures {
            println!("  {f}");
        }
    }
}
