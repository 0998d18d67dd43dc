//! The GLMM engine (`estimate::fit_glmm`) against R (tests/reference/glmm.json, frozen by
//! tests/reference/scripts/glmm.R): glm equivalence without random terms (1e-8), glmer's
//! Laplace and nAGQ = 25 fits (logLik 1e-5, fixed effects and SEs 1e-4, variance components
//! 1e-3), each model written in the language (`family`, `estimate ml(agq = N)`) and taken
//! through the real front end; the library's model files through the whole pipeline.

use crate::common::{self, assert_close, number};
use serde_json::Value;
use tandem::design;
use tandem::estimate::{fit_glmm, FamilyColumns, GlmmFit};

const CBPP: &str = "factor period reference \"1\"\nfactor herd reference \"1\"\n";

/// The model text (with its `family` statement) checked, prepared and fitted by the engine.
fn fitted(source: &str, data: &str) -> GlmmFit {
    let (spec, frame) = common::prepared(source, data);
    let family = spec.equations[0].family.clone();
    let design = design::build(&spec, &frame).expect("design");
    let rows = design::observation_rows(&spec, &frame).expect("rows");
    let at_rows = |name: &Option<String>| {
        name.as_ref().map(|n| {
            let values = common::numeric(&frame, n);
            rows.row.iter().map(|&r| values[r]).collect::<Vec<f64>>()
        })
    };
    let columns = FamilyColumns {
        trials: at_rows(&family.trials),
        offset: at_rows(&family.offset),
    };
    fit_glmm(&design, &rows, &family, spec.agq, columns).expect("fit")
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().map(number).collect(),
        other => vec![number(other)],
    }
}

/// R's β and SEs; for a badly scaled model (Contraception's I(age^2), grouseticks' HEIGHT) those
/// of the same model fitted well scaled and mapped back, where glmer's own stop short or lose
/// digits in the Hessian (see glmm.R).
fn reference_fixed(r: &Value) -> (Vec<f64>, Vec<f64>) {
    match (r.get("estimate_wellscaled"), r.get("se_wellscaled")) {
        (Some(b), Some(se)) => (numbers(b), numbers(se)),
        _ => (numbers(&r["estimate"]), numbers(&r["se"])),
    }
}

/// logLik, β and SEs against the reference `key` (relative tolerances).
fn compare(key: &str, fit: &GlmmFit, (ll, beta, se): (f64, f64, f64)) {
    let r = common::reference("glmm.json", key);
    let f = &fit.fit;
    assert!(f.converged, "{key}: {:?}", f.warnings);
    assert_close(&format!("{key} logLik"), f.loglik, number(&r["loglik"]), ll);
    let (estimates, ses) = reference_fixed(&r);
    assert_eq!(f.fixed.len(), estimates.len(), "{key}");
    for (i, fixed) in f.fixed.iter().enumerate() {
        assert_close(&format!("{key} β{i}"), fixed.estimate, estimates[i], beta);
        assert_close(&format!("{key} SE{i}"), fixed.se, ses[i], se);
    }
}

fn theta(key: &str, fit: &GlmmFit, tolerance: f64) {
    let r = common::reference("glmm.json", key);
    for (i, (ours, theirs)) in fit.fit.theta.iter().zip(numbers(&r["theta"])).enumerate() {
        assert_close(&format!("{key} θ{i}"), *ours, theirs, tolerance);
    }
}

/// `compare` for a report of the whole pipeline (JSON contract): logLik, β, SEs, random SDs.
fn compare_report(key: &str, report: &Value, loglik_key: &str) {
    let r = common::reference("glmm.json", key);
    assert_eq!(report["fit"]["converged"], Value::Bool(true), "{key}");
    assert_close(
        &format!("{key} logLik"),
        number(&report["fit"]["loglik"]),
        number(&r[loglik_key]),
        1e-5,
    );
    let fixed = report["fixed"].as_array().expect("fixed");
    let (estimates, ses) = reference_fixed(&r);
    assert_eq!(fixed.len(), estimates.len(), "{key}");
    for (i, row) in fixed.iter().enumerate() {
        assert_close(
            &format!("{key} β{i}"),
            number(&row["estimate"]),
            estimates[i],
            1e-4,
        );
        assert_close(&format!("{key} SE{i}"), number(&row["se"]), ses[i], 1e-4);
    }
    // Scalar random terms: each group's SD against VarCorr's, by group name.
    for vc in r["varcorr"].as_array().expect("varcorr") {
        let group = vc["group"].as_str().expect("group");
        let ours = report["random"]
            .as_array()
            .expect("random")
            .iter()
            .find(|row| row["group"] == group && row.get("sd").is_some())
            .unwrap_or_else(|| panic!("{key}: no SD for {group}"));
        assert_close(
            &format!("{key} SD {group}"),
            number(&ours["sd"]),
            number(&vc["sd"]),
            1e-3,
        );
    }
}

const CBPP_TRIALS: &str = "family binomial(trials = size)\nestimate ml\n";

#[test]
fn glm_equivalence_without_random_terms() {
    let cbpp = format!("{CBPP}incidence ~ 1 + period\n{CBPP_TRIALS}");
    compare(
        "cbpp_glm",
        &fitted(&cbpp, "lme4/cbpp.csv"),
        (1e-8, 1e-8, 1e-8),
    );
    let probit =
        format!("{CBPP}incidence ~ 1 + period\nfamily binomial(link = probit, trials = size)\n");
    compare(
        "cbpp_probit_glm",
        &fitted(&probit, "lme4/cbpp.csv"),
        (1e-8, 1e-8, 1e-8),
    );
    let poisson = format!(
        "{CBPP}let log_size = log(size)\nincidence ~ 1 + period\nfamily poisson(offset = log_size)\n"
    );
    let fit = fitted(&poisson, "lme4/cbpp.csv");
    compare("cbpp_poisson_offset_glm", &fit, (1e-8, 1e-8, 1e-8));
    let contraception = "factor livch reference \"0\"\nlet age2 = age^2\n\
        use ~ 1 + age + age2 + urban + livch\nfamily binomial\n";
    for (key, link) in [
        ("contraception_glm", "logit"),
        ("contraception_probit_glm", "probit"),
        ("contraception_cloglog_glm", "cloglog"),
    ] {
        let source = contraception.replace(
            "family binomial",
            &format!("family binomial(link = {link})"),
        );
        let fit = fitted(&source, "mlmRev/contraception.csv");
        compare(key, &fit, (1e-8, 1e-8, 1e-8));
    }
}

/// The seed model file through the whole pipeline, against R's `glm` (1e-8, SEs included: the
/// reference's are at the converged coefficients).
#[test]
fn crying_survey_logistic_regression_matches_glm() {
    let path = common::root().join("models/seeds/crying_who_cried.tandem");
    let report = common::fitted_value(&path, &tandem::FitOptions::default());
    let r = common::reference("glmm.json", "crying_who_cried_glm");
    assert_eq!(report["fit"]["family"], "binomial");
    assert_eq!(report["fit"]["link"], "logit");
    assert_close(
        "crying logLik",
        number(&report["fit"]["loglik"]),
        number(&r["loglik"]),
        1e-8,
    );
    let fixed = report["fixed"].as_array().expect("fixed");
    for (i, (row, (b, se))) in fixed
        .iter()
        .zip(numbers(&r["estimate"]).into_iter().zip(numbers(&r["se"])))
        .enumerate()
    {
        assert_close(&format!("crying β{i}"), number(&row["estimate"]), b, 1e-8);
        assert_close(&format!("crying SE{i}"), number(&row["se"]), se, 1e-8);
    }
}

/// lme4's nAGQ > 1 logLik of a binomial with trials leaves out the saturated model's constant;
/// tandem's is on the scale of the Laplace fit (`loglik_full`, the same optimum).
#[test]
fn cbpp_adaptive_quadrature_matches_glmer() {
    let source = format!(
        "{CBPP}incidence ~ 1 + period + (1 | herd)\nfamily binomial(trials = size)\nestimate ml(agq = 25)\n"
    );
    let fit = fitted(&source, "lme4/cbpp.csv");
    let r = common::reference("glmm.json", "cbpp_agq25");
    assert_close(
        "cbpp agq logLik",
        fit.fit.loglik,
        number(&r["loglik_full"]),
        1e-5,
    );
    for (i, fixed) in fit.fit.fixed.iter().enumerate() {
        assert_close(
            &format!("cbpp agq β{i}"),
            fixed.estimate,
            numbers(&r["estimate"])[i],
            1e-4,
        );
        assert_close(
            &format!("cbpp agq SE{i}"),
            fixed.se,
            numbers(&r["se"])[i],
            1e-4,
        );
    }
    theta("cbpp_agq25", &fit, 1e-3);
}

#[test]
fn logistic_random_slope_matches_glmer() {
    let source = "y ~ 1 + x + (1 + x | group)\nfamily binomial\n";
    let fit = fitted(source, "synthetic/logistic_slope.csv");
    compare("logistic_slope_laplace", &fit, (1e-5, 1e-4, 1e-4));
    theta("logistic_slope_laplace", &fit, 1e-3);
}

#[test]
fn cbpp_laplace_matches_glmer() {
    let path = common::root().join("models/glmm/cbpp.tandem");
    let report = common::fitted_value(&path, &tandem::FitOptions::default());
    compare_report("cbpp_laplace", &report, "loglik");
}

/// The model file at nAGQ = 25 (0/1 outcome: lme4's logLik needs no constant), and Laplace.
#[test]
fn contraception_matches_glmer() {
    let path = common::root().join("models/glmm/contraception.tandem");
    let report = common::fitted_value(&path, &tandem::FitOptions::default());
    compare_report("contraception_agq25", &report, "loglik");
    let source = std::fs::read_to_string(&path)
        .unwrap()
        .replace("ml(agq = 25)", "ml");
    let source = source.replace("data \"../data/mlmRev/contraception.csv\"\n", "");
    let fit = fitted(&source, "mlmRev/contraception.csv");
    compare("contraception_laplace", &fit, (1e-5, 1e-4, 1e-4));
    theta("contraception_laplace", &fit, 1e-3);
}

#[test]
fn grouseticks_matches_glmer() {
    let path = common::root().join("models/glmm/grouseticks.tandem");
    let report = common::fitted_value(&path, &tandem::FitOptions::default());
    compare_report("grouseticks_laplace", &report, "loglik");
}

/// `--ranef`: the conditional modes and their conditional SDs (lme4's `ranef(condVar = TRUE)`)
/// of the first herds, by level name (R's levels sort as text).
#[test]
fn cbpp_conditional_modes_match_glmer() {
    let path = common::root().join("models/glmm/cbpp.tandem");
    let options = tandem::FitOptions {
        ranef: true,
        ..tandem::FitOptions::default()
    };
    let report = common::fitted_value(&path, &options);
    let r = common::reference("glmm.json", "cbpp_laplace");
    let herd = &r["ranef"][0];
    let levels = herd["levels"].as_array().expect("levels");
    let rows = report["ranef"].as_array().expect("ranef");
    for (i, level) in levels.iter().enumerate() {
        let level = level.as_str().expect("level");
        let ours = rows
            .iter()
            .find(|row| row["group"] == "herd" && row["level"] == level)
            .unwrap_or_else(|| panic!("no mode for herd {level}"));
        let mode = number(&herd["mode"][0][i]);
        let sd = number(&herd["cond_sd"][0][i]);
        assert_close(&format!("mode {level}"), number(&ours["value"]), mode, 1e-3);
        assert_close(&format!("cond. SD {level}"), number(&ours["sd"]), sd, 1e-3);
    }
}
