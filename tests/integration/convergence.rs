//! The convergence campaign: 200 simulated data sets × {REML, ML} (random slopes, three
//! correlated effects, crossed and nested factors; predictors scaled by 1e-3 … 1e4 and left
//! unscaled), each compared with lme4's best optimum over four optimizers, frozen in
//! `tests/reference/campaign.json` by `tests/reference/scripts/campaign.R`.
//!
//! Per case: where lme4 refused, tandem refuses too; otherwise tandem's fit succeeds, reports
//! `converged`, and its log-likelihood is at least lme4's − 1e-6 (REML: the REML criterion at
//! most lme4's + 2e-6). Every failure is listed in one message. The summary table is printed by
//! `cargo run --release --example convergence_campaign`.

use crate::generator;

#[test]
fn generator_is_deterministic_and_spans_the_cases() {
    let a = generator::cases();
    let b = generator::cases();
    assert_eq!(a.len(), 2 * generator::DATASETS);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.id, y.id);
        assert_eq!(generator::csv(x), generator::csv(y));
    }
    for family in generator::FAMILIES {
        assert!(a.iter().filter(|c| c.family == family).count() >= 80);
    }
    let reml = a.iter().filter(|c| c.reml).count();
    assert_eq!(reml, generator::DATASETS);
}

#[test]
fn every_case_reaches_lme4s_optimum() {
    let results = generator::run_all();
    println!("{}", generator::summary(&results));
    let failures = generator::failures(&results);
    assert!(
        failures.is_empty(),
        "{} of {} cases fail (tandem's logLik < lme4's − 1e-6, not converged, or refusals \
         disagree):\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}
