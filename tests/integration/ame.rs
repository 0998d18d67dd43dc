//! Average marginal effects (`ame(x)` in a definition) against R (tests/reference/ame.json,
//! frozen by tests/reference/scripts/ame.R, which writes the slopes out by hand and
//! differentiates numerically): a logistic GLMM with an interaction (the library's model file),
//! a probit and a logistic glm, a Poisson GLMM on the count scale and a Poisson glm with an
//! offset (estimate and delta SE; 1e-4
//! where glmer's vcov is the reference, 1e-6 for glm's), and the identity link, where the AME of
//! a main effect is its coefficient.

use crate::common::{self, assert_close, number};
use serde_json::Value;
use tandem::FitOptions;

/// The defined row `name` of a report.
fn defined<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["defined"]
        .as_array()
        .expect("defined")
        .iter()
        .find(|row| row["name"] == name)
        .unwrap_or_else(|| panic!("no defined row {name}"))
}

/// Estimate and SE of definition `ours` against the reference `key`/`effect`.
fn compare(report: &Value, ours: &str, key: &str, effect: &str, tolerance: f64) {
    let r = common::reference("ame.json", key);
    assert_close(
        &format!("{key} logLik"),
        number(&report["fit"]["loglik"]),
        number(&r["loglik"]),
        1e-6,
    );
    let row = defined(report, ours);
    let what = format!("{key} ame({effect})");
    assert_close(
        &format!("{what} estimate"),
        number(&row["estimate"]),
        number(&r[effect]["estimate"]),
        tolerance,
    );
    assert_close(
        &format!("{what} SE"),
        number(&row["se"]),
        number(&r[effect]["se"]),
        tolerance,
    );
}

#[test]
fn logistic_glmm_with_an_interaction_matches_r() {
    let path = common::root().join("models/glmm/contraception_urban.tandem");
    let report = common::fitted_value(&path, &FitOptions::default());
    compare(&report, "age_effect", "contraception_glmer", "age", 1e-4);
    compare(&report, "urban_effect", "contraception_glmer", "urb", 1e-4);
    // The Monte Carlo interval brackets the estimate.
    let row = defined(&report, "age_effect");
    assert!(number(&row["ci_lower"]) < number(&row["estimate"]));
    assert!(number(&row["estimate"]) < number(&row["ci_upper"]));
}

#[test]
fn glm_links_match_r() {
    let probit = common::fitted_text(
        "ame_probit",
        "factor livch reference \"0\"\nlet urb = urban == \"Y\"\n\
         use ~ 1 + age + urb + livch + age:urb\nfamily binomial(link = probit)\n\
         me := ame(age)\n",
        "mlmRev/contraception.csv",
        &FitOptions::default(),
    );
    compare(&probit, "me", "contraception_probit_glm", "age", 1e-6);
    let crying = common::fitted_text(
        "ame_crying",
        "cried ~ 1 + alliance + attachment_anxiety + attachment_avoidance\nfamily binomial\n\
         me_alliance := ame(alliance)\nme_anxiety := ame(attachment_anxiety)\n",
        "synthetic/crying_survey.csv",
        &FitOptions::default(),
    );
    compare(&crying, "me_alliance", "crying_glm", "alliance", 1e-6);
    compare(
        &crying,
        "me_anxiety",
        "crying_glm",
        "attachment_anxiety",
        1e-6,
    );
}

#[test]
fn poisson_glmm_effect_on_the_count_scale_matches_r() {
    let report = common::fitted_text(
        "ame_grouse",
        "factor YEAR reference \"95\"\n\
         TICKS ~ 1 + YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)\n\
         family poisson\nme := ame(cHEIGHT)\n",
        "lme4/grouseticks.csv",
        &FitOptions::default(),
    );
    compare(&report, "me", "grouseticks_glmer", "cHEIGHT", 1e-4);
    // With the family's offset (a log exposure) in each row's linear predictor.
    let report = common::fitted_text(
        "ame_grouse_offset",
        "factor YEAR reference \"95\"\nlet logH = log(HEIGHT)\n\
         TICKS ~ 1 + YEAR + cHEIGHT\nfamily poisson(offset = logH)\nme := ame(cHEIGHT)\n",
        "lme4/grouseticks.csv",
        &FitOptions::default(),
    );
    compare(&report, "me", "grouseticks_offset_glm", "cHEIGHT", 1e-6);
}

/// With the identity link the AME of a main effect is its coefficient, SE and all.
#[test]
fn identity_link_effect_is_the_coefficient() {
    let report = common::fitted_text(
        "ame_sleep",
        "Reaction ~ 1 + Days + (1 + Days | Subject)\nme := ame(Days)\n",
        "lme4/sleepstudy.csv",
        &FitOptions::default(),
    );
    let days = report["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["term"] == "Days")
        .expect("Days");
    let me = defined(&report, "me");
    assert_close(
        "estimate",
        number(&me["estimate"]),
        number(&days["estimate"]),
        1e-12,
    );
    assert_close("SE", number(&me["se"]), number(&days["se"]), 1e-10);
}
