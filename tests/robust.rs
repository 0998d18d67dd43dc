//! Robust inference: CR0/CR2 cluster-robust SEs against clubSandwich (tests/reference/robust.json),
//! and the bootstraps' reproducibility.

mod common;

use common::{close, load_csv, reference, set_reference, spec};
use tandem::design::{self, observation_rows};
use tandem::estimate;
use tandem::infer::cluster_robust::{cluster_robust, Adjustment, ClusterRobust};
use tandem::prepare::AnalysisFrame;
use tandem::syntax::ast::Method;

fn robust(frame: &AnalysisFrame, formula: &str, adjustment: Adjustment) -> ClusterRobust {
    let spec = spec(formula, Method::Reml);
    let design = design::build(&spec, frame).unwrap();
    let fit = estimate::fit(&design, Method::Reml).unwrap();
    let rows = observation_rows(&spec, frame).unwrap();
    let names: Vec<String> = design.random.iter().map(|t| t.name.clone()).collect();
    cluster_robust(&rows, &fit, &names, adjustment).unwrap()
}

fn check_se(result: &ClusterRobust, key: &str) {
    let expected = reference("robust.json", key);
    let se = result.se();
    let want: Vec<f64> = expected["se"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(se.len(), want.len(), "{key}");
    for (i, (got, want)) in se.iter().zip(&want).enumerate() {
        eprintln!(
            "{key} se[{i}]: {got} vs {want} (rel {:.1e})",
            (got - want).abs() / want
        );
        assert!(close(*got, *want, 1e-3), "{key} se[{i}]: {got} vs {want}");
    }
}

fn orthodont() -> AnalysisFrame {
    let mut frame = load_csv("lme4/orthodont.csv");
    set_reference(&mut frame, "Sex", "Male");
    frame
}

const SLEEPSTUDY: &str = "Reaction ~ Days + (Days | Subject)";
const ORTHODONT: &str = "distance ~ age * Sex + (age | Subject)";

#[test]
fn sleepstudy_cr2_matches_club_sandwich() {
    let frame = load_csv("lme4/sleepstudy.csv");
    let result = robust(&frame, SLEEPSTUDY, Adjustment::Cr2);
    assert_eq!(result.cluster, "Subject");
    assert_eq!(result.clusters, 18);
    check_se(&result, "sleepstudy_reml_CR2");
}

#[test]
fn sleepstudy_cr0_matches_club_sandwich() {
    let frame = load_csv("lme4/sleepstudy.csv");
    check_se(
        &robust(&frame, SLEEPSTUDY, Adjustment::Cr0),
        "sleepstudy_reml_CR0",
    );
}

#[test]
fn orthodont_cr2_matches_club_sandwich() {
    check_se(
        &robust(&orthodont(), ORTHODONT, Adjustment::Cr2),
        "orthodont_reml_CR2",
    );
}

/// clubSandwich's Satterthwaite df, from R (clubSandwich 0.5.8):
/// `coef_test(fit, vcov = "CR2", test = "Satterthwaite")$df_Satt`.
#[test]
fn cr2_satterthwaite_df_matches_club_sandwich() {
    let frame = load_csv("lme4/sleepstudy.csv");
    let sleep = robust(&frame, SLEEPSTUDY, Adjustment::Cr2);
    for df in &sleep.df {
        assert!(close(*df, 17.0, 1e-6), "sleepstudy df {df}");
    }
    let ortho = robust(&orthodont(), ORTHODONT, Adjustment::Cr2);
    let want = [15.0, 15.0, 21.65346535, 21.65346535];
    for (got, want) in ortho.df.iter().zip(want) {
        assert!(close(*got, want, 1e-6), "orthodont df {got} vs {want}");
    }
}

/// `tandem fit --se cr2 --format json` on the model file: the JSON's SEs are clubSandwich's CR2
/// and its warnings say so.
#[test]
fn fit_with_se_cr2_reports_cr2() {
    use tandem::pipeline::{fit_file, FitOptions, Format};
    let options = FitOptions {
        format: Format::Json,
        robust_se: true,
        ..FitOptions::default()
    };
    let outcome = fit_file(
        &common::root().join("models/lme4/orthodont.tandem"),
        &options,
    );
    assert!(outcome.success, "{}", outcome.stderr);
    let json: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
    let expected = reference("robust.json", "orthodont_reml_CR2");
    let fixed = json["fixed"].as_array().unwrap();
    assert_eq!(fixed.len(), 4);
    for (row, (term, se)) in fixed.iter().zip(
        expected["term"]
            .as_array()
            .unwrap()
            .iter()
            .zip(expected["se"].as_array().unwrap()),
    ) {
        assert_eq!(row["term"], *term);
        let (got, want) = (row["se"].as_f64().unwrap(), se.as_f64().unwrap());
        assert!(close(got, want, 1e-3), "{term}: {got} vs {want}");
    }
    let warnings = json["fit"]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("CR2 cluster-robust over Subject")),
        "{warnings:?}"
    );
}
