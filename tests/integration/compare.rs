//! `tandem compare` (lme4's `anova(m1, m2)`) against R (tests/reference/compare.json, frozen by
//! tests/reference/scripts/compare.R): sleepstudy's random intercept against its correlated
//! random slope (REML fits refitted by ML, and kept with `--no-refit`) and its uncorrelated one
//! (χ̄² of 0 and 1 df), the uncorrelated against the correlated slope (no mixture), two fixed parts with the
//! same random part, and a GLMM pair (cbpp with and without period). logLik, AIC, BIC and
//! deviance to 1e-6 relative, χ² to 1e-5, p-values (and the χ̄² mixture's, from its formula) to
//! 1e-4; through the library's typed entry (`pipeline::compare_files`) and once through the
//! binary. The refusals (other rows, another data file, other outcomes, mixed families, `vary`)
//! are snapshotted as the command prints them.

use crate::cli::run;
use std::path::PathBuf;

use crate::common::{self, assert_close, number};
use serde_json::Value;
use tandem::pipeline::{compare_files, CompareOptions};
use tandem::report::ComparisonReport;

const INTERCEPT: &str = "models/lme4/sleepstudy_intercept.tandem";
const SLOPE: &str = "models/lme4/sleepstudy.tandem";
const FIXTURES: &str = "tests/fixtures/compare";

fn compared(files: &[&str], refit: bool) -> ComparisonReport {
    let paths: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    let comparison = compare_files(&paths, &CompareOptions { refit });
    let errors: Vec<String> = (comparison.files.iter())
        .flat_map(|f| f.errors.iter().map(|d| d.message.clone()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    comparison.report.expect("a comparison")
}

/// Each row against R's, in R's order (by npar).
fn against_r(report: &ComparisonReport, key: &str, mixture: bool) {
    let reference = common::reference("compare.json", key);
    let rows = reference["rows"].as_array().expect("rows");
    assert_eq!(report.comparisons.len(), rows.len(), "{key}");
    for (k, (ours, theirs)) in report.comparisons.iter().zip(rows).enumerate() {
        let what = |q: &str| format!("{key} row {k} {q}");
        assert!(ours.converged, "{}", what("converged"));
        assert_eq!(
            ours.npar as f64,
            number(&theirs["npar"]),
            "{}",
            what("npar")
        );
        assert_close(
            &what("logLik"),
            ours.loglik,
            number(&theirs["loglik"]),
            1e-6,
        );
        assert_close(&what("AIC"), ours.aic, number(&theirs["aic"]), 1e-6);
        assert_close(&what("BIC"), ours.bic, number(&theirs["bic"]), 1e-6);
        let deviance = number(&theirs["deviance"]);
        assert_close(&what("deviance"), ours.deviance, deviance, 1e-6);
        if k == 0 {
            assert!(ours.chisq.is_none() && ours.df.is_none() && ours.p.is_none());
            continue;
        }
        let chisq = ours.chisq.expect("χ²");
        assert_close(&what("χ²"), chisq, number(&theirs["chisq"]), 1e-5);
        assert_eq!(ours.df.map(|d| d as f64), Some(number(&theirs["df"])));
        assert_close(&what("p"), ours.p.expect("p"), number(&theirs["p"]), 1e-4);
        match (mixture, ours.p_mixture) {
            (true, Some(p)) => assert_close(&what("p χ̄²"), p, number(&theirs["p_mixture"]), 1e-4),
            (false, None) => {}
            (_, p) => panic!("{}: {p:?}", what("the mixture p-value")),
        }
    }
}

#[test]
fn random_slope_against_random_intercept_refitted_by_ml() {
    // Given in the other order: the table is ordered by npar, as lme4 orders it.
    let report = compared(&[SLOPE, INTERCEPT], true);
    assert!(report.refitted);
    assert_eq!(report.method, "ML");
    assert_eq!(
        report.notes[0],
        "refitting model(s) with ML (instead of REML)"
    );
    assert_eq!(report.comparisons[0].model, INTERCEPT);
    assert!(report
        .comparisons
        .iter()
        .all(|r| r.refitted && r.method == "ML"));
    assert_eq!(
        report.comparisons[1].mixture.as_deref(),
        Some("0.5 chi2(1) + 0.5 chi2(2)")
    );
    against_r(&report, "sleepstudy_slope", true);
}

#[test]
fn an_uncorrelated_slope_is_half_the_naive_p_and_a_covariance_has_no_mixture() {
    let uncorrelated = "models/lme4/sleepstudy_uncorrelated.tandem";
    let report = compared(&[INTERCEPT, uncorrelated], true);
    assert_eq!(
        report.comparisons[1].mixture.as_deref(),
        Some("0.5 chi2(0) + 0.5 chi2(1)")
    );
    against_r(&report, "sleepstudy_uncorrelated", true);
    // The correlated slope adds only a covariance to the uncorrelated one: naive p alone.
    let report = compared(&[SLOPE, uncorrelated], true);
    against_r(&report, "sleepstudy_covariance", false);
}

#[test]
fn reml_criteria_compared_without_refit() {
    let report = compared(&[INTERCEPT, SLOPE], false);
    assert!(!report.refitted);
    assert_eq!(report.method, "REML");
    against_r(&report, "sleepstudy_slope_no_refit", true);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn different_fixed_parts_refitted_by_ml_without_a_mixture() {
    let no_days = format!("{FIXTURES}/sleepstudy_no_days.tandem");
    let report = compared(&[SLOPE, &no_days], true);
    against_r(&report, "sleepstudy_fixed", false);
    // Kept as REML fits, their criteria are not comparable: said so.
    let kept = compared(&[SLOPE, &no_days], false);
    assert!(
        kept.warnings.iter().any(|w| w.contains("not comparable")),
        "{:?}",
        kept.warnings
    );
}

#[test]
fn glmm_pair_compared_by_their_laplace_likelihoods() {
    let null = format!("{FIXTURES}/cbpp_null.tandem");
    let report = compared(&["models/glmm/cbpp.tandem", &null], true);
    assert!(!report.refitted, "a GLMM is fitted by ML already");
    against_r(&report, "cbpp", false);
}

#[test]
fn the_command_prints_the_comparisons_as_json_and_text() {
    let (code, stdout, stderr) = run(&["compare", INTERCEPT, SLOPE, "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["refitted"], Value::Bool(true));
    let rows = json["comparisons"].as_array().expect("comparisons");
    let reference = common::reference("compare.json", "sleepstudy_slope");
    let theirs = &reference["rows"][1];
    assert!(rows[0]["chisq"].is_null() && rows[0].get("p_mixture").is_none());
    assert_close(
        "χ²",
        number(&rows[1]["chisq"]),
        number(&theirs["chisq"]),
        1e-5,
    );
    assert_eq!(rows[1]["df"], theirs["df"]);
    assert_close("p", number(&rows[1]["p"]), number(&theirs["p"]), 1e-4);
    let mixture = number(&rows[1]["p_mixture"]);
    assert_close("p χ̄²", mixture, number(&theirs["p_mixture"]), 1e-4);
    let (_, text, _) = run(&["compare", INTERCEPT, SLOPE]);
    insta::assert_snapshot!("compare_sleepstudy_text", text);
    for format in ["text", "markdown", "latex"] {
        let (code, stdout, stderr) = run(&["compare", INTERCEPT, SLOPE, "--format", format]);
        assert_eq!(code, 0, "{format}: {stderr}");
        assert!(
            stdout.contains("1751.94") && stdout.contains("42.139"),
            "{stdout}"
        );
        assert!(stdout.contains("refitting model(s) with ML"), "{stdout}");
    }
}

#[test]
fn incomparable_models_are_refused_with_located_messages() {
    let cases = [
        ("other_rows", SLOPE, "sleepstudy_some_days"),
        ("other_data", SLOPE, "dyestuff_yield"),
        ("other_outcome", SLOPE, "sleepstudy_days_outcome"),
        ("mixed_families", "models/glmm/cbpp.tandem", "cbpp_gaussian"),
        ("vary", SLOPE, "sleepstudy_vary"),
    ];
    for (name, first, second) in cases {
        let second = format!("{FIXTURES}/{second}.tandem");
        let (code, stdout, stderr) = run(&["compare", first, &second]);
        assert_eq!(code, 1, "{name}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{name}: {stdout}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        insta::assert_snapshot!(format!("compare_refused_{name}"), stderr);
    }
}
