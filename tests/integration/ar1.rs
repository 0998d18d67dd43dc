//! AR(1) residuals within series (`residual ar1 within COLUMN`, nlme's `corAR1`) end to end,
//! through the real front end: nlme's Ovary with random effects (`lme`, REML and ML) and without
//! (`gls`, REML and ML), and a simulated random-slope series model with dropped rows (REML and
//! ML), against tests/reference/ar1.json (tests/reference/scripts/ar1.R). Tolerances as the issue
//! sets them: logLik 1e-6 absolute, φ and fixed effects 1e-4 relative, SEs and variance
//! components 1e-3 relative. Also: the sums do not depend on where the rows are cut into chunks,
//! a series that crosses levels of a grouping factor is refused, located. It must not test other
//! residual structures.

use serde_json::Value;

use crate::common::{self, assert_close as close, number};
use tandem::syntax::ast::Method;

const OVARY: &str = "nlme/ovary.csv";
const SLOPE: &str = "synthetic/ar1_slope.csv";

const OVARY_LME: &str = "group Mare
order Time
let s = sin(2 * pi * Time)
let c = cos(2 * pi * Time)
follicles ~ 1 + s + c + (1 + s || Mare)
residual ar1 within Mare";

const OVARY_GLS: &str = "order Time
let s = sin(2 * pi * Time)
let c = cos(2 * pi * Time)
follicles ~ 1 + s + c
residual ar1 within Mare";

const SLOPE_LME: &str = "order t
y ~ 1 + x + (1 + x | id)
residual ar1 within id";

/// The model text with `estimate` for `method`, fitted to `data` through the library API: the
/// report as the JSON contract has it. It must converge.
fn fitted(source: &str, data: &str, method: Method) -> Value {
    let source = format!("{source}\n{}\n", common::estimate(method));
    let table = common::data_table(data);
    let fitted = tandem::fit("ar1.tandem", &source, table, &tandem::FitOptions::default())
        .unwrap_or_else(|e| panic!("{}", tandem::diagnostics::render(&e, None)));
    let report = &fitted.fits[0].report;
    assert!(report.fit.converged, "{:?}", report.fit.warnings);
    serde_json::to_value(report).unwrap()
}

/// Every number of the reference `key` that the model has: logLik, φ, σ, the fixed effects
/// (terms named as R names `sin(2 * pi * Time)`: ours are `s` and `c`), the random SDs and
/// correlation, and the counts.
fn check_against(ours: &Value, key: &str, names: &[(&str, &str)]) {
    let r = common::reference("ar1.json", key);
    let loglik = number(&ours["fit"]["loglik"]);
    let theirs = number(&r["logLik"]);
    assert!(
        (loglik - theirs).abs() < 1e-6,
        "{key} logLik: tandem {loglik} vs R {theirs}"
    );
    let residual = &ours["residual"][0];
    assert!(residual["ar1_within"].as_str().is_some(), "{residual}");
    close(
        &format!("{key} phi"),
        number(&residual["correlation"]),
        number(&r["phi"]),
        1e-4,
    );
    close(
        &format!("{key} sigma"),
        number(&residual["sd"]),
        number(&r["sigma"]),
        1e-3,
    );
    assert_eq!(ours["fit"]["nobs"], r["nobs"], "{key} nobs");
    let rename = |term: &str| {
        names
            .iter()
            .find(|(theirs, _)| *theirs == term)
            .map_or(term.to_string(), |(_, ours)| ours.to_string())
    };
    // nlme's ML `vcov` (lme and gls) scales by N/(N − p); tandem's ML standard errors use the
    // ML σ̂ as lme4's do (as tests/integration/dyadic.rs compares them too).
    let n = number(&r["nobs"]);
    let p = r["fixed"].as_array().unwrap().len() as f64;
    let se_scale = if r["method"] == "ML" {
        (n / (n - p)).sqrt()
    } else {
        1.0
    };
    for t in r["fixed"].as_array().unwrap() {
        let term = rename(t["term"].as_str().unwrap());
        let row = ours["fixed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["term"] == term.as_str())
            .unwrap_or_else(|| panic!("{key}: no fixed term {term}"));
        close(
            &format!("{key} {term}"),
            number(&row["estimate"]),
            number(&t["estimate"]),
            1e-4,
        );
        let se = number(&row["se"]) * se_scale;
        close(&format!("{key} {term} se"), se, number(&t["se"]), 1e-3);
    }
    if let Some(sds) = r["random_sd"].as_object() {
        for (term, sd) in sds {
            let term = rename(term);
            let row = ours["random"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["term1"] == term.as_str() && x["sd"].is_number())
                .unwrap_or_else(|| panic!("{key}: no random SD of {term}"));
            close(
                &format!("{key} sd {term}"),
                number(&row["sd"]),
                number(sd),
                1e-3,
            );
        }
    }
    if let Some(cor) = r["random_cor"].as_f64() {
        let row = ours["random"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["cor"].is_number())
            .unwrap_or_else(|| panic!("{key}: no random correlation"));
        close(&format!("{key} random cor"), number(&row["cor"]), cor, 1e-3);
    }
}

const OVARY_NAMES: &[(&str, &str)] = &[("sin(2 * pi * Time)", "s"), ("cos(2 * pi * Time)", "c")];

#[test]
fn ovary_lme_matches_nlme_reml_and_ml() {
    check_against(
        &fitted(OVARY_LME, OVARY, Method::Reml),
        "ovary_ar1_reml",
        OVARY_NAMES,
    );
    check_against(
        &fitted(OVARY_LME, OVARY, Method::Ml),
        "ovary_ar1_ml",
        OVARY_NAMES,
    );
}

#[test]
fn ovary_gls_matches_nlme_reml_and_ml() {
    check_against(
        &fitted(OVARY_GLS, OVARY, Method::Reml),
        "ovary_gls_reml",
        OVARY_NAMES,
    );
    check_against(
        &fitted(OVARY_GLS, OVARY, Method::Ml),
        "ovary_gls_ml",
        OVARY_NAMES,
    );
}

#[test]
fn random_slope_series_with_dropped_rows_matches_nlme() {
    check_against(
        &fitted(SLOPE_LME, SLOPE, Method::Reml),
        "ar1_slope_reml",
        &[],
    );
    check_against(&fitted(SLOPE_LME, SLOPE, Method::Ml), "ar1_slope_ml", &[]);
}

/// The same model without AR(1): the reference's independent-residual logLik (what AR(1) gains).
#[test]
fn ovary_without_ar1_is_the_independent_fit() {
    let source = OVARY_LME.replace("residual ar1 within Mare", "");
    let ours = fitted(&source, OVARY, Method::Reml);
    let theirs = number(&common::reference("ar1.json", "ovary_iid_reml")["logLik"]);
    assert!((number(&ours["fit"]["loglik"]) - theirs).abs() < 1e-6);
}

/// Pairs of consecutive rows across a chunk boundary count once: the deviance from chunks of 7
/// rows is the one-chunk deviance (to rounding of the sums' order), for any thread count.
#[test]
fn chunk_boundaries_do_not_change_the_sums() {
    let (spec, frame) = common::prepared(&format!("{SLOPE_LME}\nestimate reml"), SLOPE);
    let whole = tandem::design::build_in_chunks(&spec, &frame, 1 << 20).unwrap();
    let cut = tandem::design::build_in_chunks(&spec, &frame, 7).unwrap();
    let a = whole.stats.ar1.as_ref().unwrap();
    let b = cut.stats.ar1.as_ref().unwrap();
    assert_eq!(a.nseries, 40);
    assert_eq!(a.nseries, b.nseries);
    for (x, y) in a.xy.iter().flatten().zip(b.xy.iter().flatten()) {
        assert!(common::close(*y, *x, 1e-12), "{x} vs {y}");
    }
    let dw = tandem::estimate::ProfiledDeviance::new(&whole, Method::Reml);
    let dc = tandem::estimate::ProfiledDeviance::new(&cut, Method::Reml);
    let x = [0.9, 0.1, 0.3, 0.5];
    assert!(common::close(dc.deviance(&x), dw.deviance(&x), 1e-12));
    let (one, two) = (
        common::on_threads(1, || cut.stats.clone()),
        common::on_threads(2, || {
            tandem::design::build_in_chunks(&spec, &frame, 7)
                .unwrap()
                .stats
        }),
    );
    assert_eq!(one, two);
}

/// The exact gradient (ρ included) agrees with central differences of the criterion.
#[test]
fn gradient_includes_phi_exactly() {
    for method in [Method::Reml, Method::Ml] {
        let (spec, frame) =
            common::prepared(&format!("{SLOPE_LME}\n{}", common::estimate(method)), SLOPE);
        let design = tandem::design::build(&spec, &frame).unwrap();
        let dev = tandem::estimate::ProfiledDeviance::new(&design, method);
        let x = [0.8, 0.15, 0.25, 0.6];
        let (_, g) = dev.criterion_gradient(&x).unwrap();
        for i in 0..x.len() {
            let h = 1e-5;
            let (mut up, mut down) = (x, x);
            up[i] += h;
            down[i] -= h;
            let numeric = (dev.deviance(&up) - dev.deviance(&down)) / (2.0 * h);
            assert!(
                (g[i] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
                "parameter {i}: exact {} vs numeric {numeric}",
                g[i]
            );
        }
    }
}

/// A series that moves from one level of a grouping factor to another is refused, located at the
/// random term, naming the series column and the factor.
#[test]
fn a_series_crossing_levels_is_refused() {
    let source = "let half = Time > 0.5
follicles ~ 1 + Time + (1 | half)
residual ar1 within Mare
estimate reml";
    let table = common::data_table(OVARY);
    let errors = match tandem::fit(
        "cross.tandem",
        source,
        table,
        &tandem::FitOptions::default(),
    ) {
        Ok(_) => panic!("fitted"),
        Err(e) => e,
    };
    let text = tandem::diagnostics::render(&errors, None);
    assert!(
        text.contains("a series of `Mare` has rows in two levels of `half`"),
        "{text}"
    );
    assert!(matches!(
        errors[0].location,
        tandem::diagnostics::Location::Source(_)
    ));
}

/// The library model prints nlme's numbers (REML).
#[test]
fn library_model_ovary_ar1() {
    let ours = common::fitted_json("models/nlme/ovary_ar1.tandem", None, &[]);
    check_against(&ours, "ovary_ar1_reml", OVARY_NAMES);
}
