//! Dyadic models end to end: residuals correlated within couples (compound symmetry, nlme's
//! `gls(correlation = corCompSymm(~ 1 | CoupleID))`), alone and with a residual variance per
//! partner (`varIdent`). References: tests/reference/reference_extra.json (nlme 3.1-162, REML),
//! and for ML and for mixed unit sizes nlme's numbers computed for these tests (the R calls are
//! quoted beside them). Tolerances are the project's: loglik 1e-6 absolute, estimates, SEs,
//! residual SD, correlation and variance ratio 1e-4 relative.

use std::path::Path;

use crate::common::{self, assert_close as close, number};
use serde_json::Value;
use tandem::cli::fit_file;
use tandem::pipeline::FitOptions;
use tandem::syntax::ast::Method;

fn fit_json(relative: &str, method: Option<Method>) -> Value {
    common::fitted_json(relative, method, &[])
}

fn fixed(ours: &Value, term: &str) -> (f64, f64) {
    let row = ours["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["term"] == term)
        .unwrap_or_else(|| panic!("no fixed term `{term}` in {}", ours["fixed"]));
    (number(&row["estimate"]), number(&row["se"]))
}

fn residual<'a>(ours: &'a Value, class: Option<&str>) -> &'a Value {
    ours["residual"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["class"].as_str() == class)
        .unwrap_or_else(|| panic!("no residual row {class:?} in {}", ours["residual"]))
}

fn check_loglik(ours: &Value, theirs: f64) {
    let l = number(&ours["fit"]["loglik"]);
    assert!(
        (l - theirs).abs() < 1e-6,
        "loglik: tandem {l} vs R {theirs}"
    );
}

/// Estimates and SEs of every reference fixed effect, and no extra ones.
fn check_fixed(ours: &Value, r: &Value) {
    let theirs = r["fixed"].as_array().unwrap();
    assert_eq!(ours["fixed"].as_array().unwrap().len(), theirs.len());
    for t in theirs {
        let term = t["term"].as_str().unwrap();
        let (estimate, se) = fixed(ours, term);
        close(
            &format!("{term} estimate"),
            estimate,
            number(&t["estimate"]),
            1e-4,
        );
        close(&format!("{term} se"), se, number(&t["se"]), 1e-4);
    }
}

#[test]
fn apim_indistinguishable_matches_nlme() {
    let r = common::reference("reference_extra.json", "apim_indistinguishable");
    let ours = fit_json("models/dyadic/apim_indistinguishable.tandem", None);
    assert_eq!(ours["fit"]["method"], "REML");
    assert_eq!(ours["fit"]["converged"], true);
    check_loglik(&ours, number(&r["logLik"]));
    check_fixed(&ours, &r);
    let row = residual(&ours, None);
    close("sigma", number(&row["sd"]), number(&r["sigma"]), 1e-4);
    close("rho", number(&row["correlation"]), number(&r["rho"]), 1e-4);
    assert_eq!(row["correlated_within"], "CoupleID");
    // gls's t tests use n − p df.
    let df = number(&ours["fixed"][0]["df"]);
    assert_eq!(df, 296.0 - 3.0);
}

#[test]
fn apim_distinguishable_matches_nlme() {
    let r = common::reference("reference_extra.json", "apim_distinguishable");
    let ours = fit_json("models/dyadic/apim_distinguishable.tandem", None);
    assert_eq!(ours["fit"]["converged"], true);
    check_loglik(&ours, number(&r["logLik"]));
    check_fixed(&ours, &r);
    let wife = residual(&ours, Some("Wife"));
    let husband = residual(&ours, Some("Husband"));
    close("sigma", number(&wife["sd"]), number(&r["sigma"]), 1e-4);
    let ratio = number(&husband["sd"]) / number(&wife["sd"]);
    close(
        "variance ratio (Husband)",
        ratio,
        number(&r["variance_ratio"]["Husband"]),
        1e-4,
    );
    // One correlation for the couple, reported on both partners' rows.
    for row in [wife, husband] {
        close("rho", number(&row["correlation"]), number(&r["rho"]), 1e-4);
    }
}

#[test]
fn apim_distinguishable_ml_matches_nlme() {
    // R: gls(Satisfaction_A ~ 0 + Gender_A + Gender_A:OtherPos_A + Gender_A:OtherPos_P,
    //        method = "ML", correlation = corCompSymm(form = ~ 1 | CoupleID),
    //        weights = varIdent(form = ~ 1 | Gender_A)), Gender_A levels Wife, Husband.
    let ours = fit_json(
        "models/dyadic/apim_distinguishable.tandem",
        Some(Method::Ml),
    );
    assert_eq!(ours["fit"]["method"], "ML");
    check_loglik(&ours, -137.803519026406);
    // nlme's ML `vcov` for gls scales by N/(N − p) (REML-like); tandem's ML standard errors use
    // σ̂²_ML as lme4 and lavaan do, so R's SEs are rescaled by √((N − p)/N), N = 296, p = 6.
    let ml_scale = (290.0_f64 / 296.0).sqrt();
    for (term, estimate, se) in [
        ("Gender_AWife", 0.611248457555821, 0.4128195455081844),
        ("Gender_AHusband", 0.690458879951975, 0.3429034037096563),
        (
            "Gender_AWife:OtherPos_A",
            0.377699959158618,
            0.0739221664817519,
        ),
        (
            "Gender_AHusband:OtherPos_A",
            0.424386632895013,
            0.0677156819789325,
        ),
        (
            "Gender_AWife:OtherPos_P",
            0.321478178577121,
            0.0815225417884425,
        ),
        (
            "Gender_AHusband:OtherPos_P",
            0.261649769517549,
            0.0614025250790410,
        ),
    ] {
        let (e, s) = fixed(&ours, term);
        close(&format!("{term} estimate"), e, estimate, 1e-4);
        close(&format!("{term} se"), s, se * ml_scale, 1e-4);
    }
    let wife = residual(&ours, Some("Wife"));
    let husband = residual(&ours, Some("Husband"));
    close("sigma", number(&wife["sd"]), 0.450838132650327, 1e-4);
    close("rho", number(&wife["correlation"]), 0.475109363760098, 1e-4);
    close(
        "variance ratio",
        number(&husband["sd"]) / number(&wife["sd"]),
        0.830637520535856,
        1e-4,
    );
}

#[test]
fn units_of_different_sizes_match_nlme() {
    // R: gls(Satisfaction_A ~ Tension_A + SelfPos_P,
    //        data = subset(d, !(CoupleID < 40 & Gender_A == "Husband")),
    //        correlation = corCompSymm(form = ~ 1 | CoupleID))   # REML, 289 rows
    let ours = fit_json("tests/fixtures/dyadic/apim_singletons.tandem", None);
    assert_eq!(number(&ours["fit"]["nobs"]), 289.0);
    check_loglik(&ours, -138.481967613295);
    for (term, estimate, se) in [
        ("(Intercept)", 4.7344129853144805, 0.2411503142995025),
        ("Tension_A", -0.3480603549042941, 0.0333996041685922),
        ("SelfPos_P", -0.0681556137969627, 0.0526438189149365),
    ] {
        let (e, s) = fixed(&ours, term);
        close(&format!("{term} estimate"), e, estimate, 1e-4);
        close(&format!("{term} se"), s, se, 1e-4);
    }
    let row = residual(&ours, None);
    close("sigma", number(&row["sd"]), 0.407993502047427, 1e-4);
    close("rho", number(&row["correlation"]), 0.476201236729577, 1e-4);
}

#[test]
fn correlation_with_random_terms_is_reported_as_not_supported() {
    let dir = std::env::temp_dir().join(format!("tandem-dyadic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/data/dyadic/acitelli_pairwise.csv");
    let model = dir.join("mixed.tandem");
    std::fs::write(
        &model,
        format!(
            "data \"{}\"\n\nSatisfaction_A ~ 1 + Tension_A + (1 | CoupleID)\nresidual correlated within CoupleID\n",
            data.display()
        ),
    )
    .unwrap();
    let outcome = fit_file(&model, &FitOptions::default());
    assert!(!outcome.success);
    assert!(
        outcome.stderr.contains(
            "`correlated within CoupleID` together with random terms is not supported yet"
        ),
        "{}",
        outcome.stderr
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn parametric_bootstrap_with_correlated_residuals_is_declined() {
    let dir = std::env::temp_dir().join(format!("tandem-dyadic-pb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/data/dyadic/acitelli_pairwise.csv");
    let model = dir.join("pb.tandem");
    std::fs::write(
        &model,
        format!(
            "data \"{}\"\n\nSatisfaction_A ~ 1 + Tension_A\nresidual correlated within CoupleID\n\
             interval parametric_bootstrap(draws = 20, seed = 1)\n",
            data.display()
        ),
    )
    .unwrap();
    let outcome = fit_file(&model, &FitOptions::default());
    assert!(!outcome.success);
    assert!(
        outcome.stderr.contains(
            "a parametric bootstrap with residuals correlated within `CoupleID` is not supported yet"
        ),
        "{}",
        outcome.stderr
    );
    std::fs::remove_dir_all(&dir).ok();
}
