//! The design stage: R's column names and treatment coding, shared labels, fixed values as
//! offsets, missing-value accounting, residual classes, and "not supported yet" diagnostics.
//! Expected names are R 4.2.2's `colnames(model.matrix(...))` on the same data.

mod common;

use common::*;
use tandem::design::{self, Design};
use tandem::estimate::fit;
use tandem::model::{Coefficient, ModelSpec, OutcomeKind};
use tandem::prepare::AnalysisFrame;
use tandem::syntax::ast::Method;

fn orthodont() -> AnalysisFrame {
    let mut frame = load_csv("lme4/orthodont.csv");
    set_reference(&mut frame, "Sex", "Male");
    frame
}

fn names(design: &Design) -> Vec<&str> {
    design.fixed.iter().map(|f| f.term()).collect()
}

fn build(spec: &ModelSpec, frame: &AnalysisFrame) -> Design {
    design::build(spec, frame).expect("design")
}

#[test]
fn treatment_coding_follows_r() {
    let frame = orthodont();
    let cases: [(&str, &[&str]); 5] = [
        (
            "distance ~ age * Sex",
            &["(Intercept)", "age", "SexFemale", "age:SexFemale"],
        ),
        (
            "distance ~ age + age:Sex",
            &["(Intercept)", "age", "age:SexFemale"],
        ),
        ("distance ~ 0 + age + Sex", &["age", "SexMale", "SexFemale"]),
        (
            "distance ~ 0 + Sex + age:Sex",
            &["SexMale", "SexFemale", "SexMale:age", "SexFemale:age"],
        ),
        (
            "distance ~ Sex:age",
            &["(Intercept)", "SexMale:age", "SexFemale:age"],
        ),
    ];
    for (formula, want) in cases {
        let design = build(&spec(formula, Method::Reml), &frame);
        assert_eq!(names(&design), want, "{formula}");
    }
}

#[test]
fn equal_labels_share_one_parameter() {
    // y ~ a*Days + a*x with x = Days is y ~ 2a*Days: the shared parameter's column is the sum.
    let mut frame = load_csv("lme4/sleepstudy.csv");
    let days = numeric(&frame, "Days").to_vec();
    add_numeric(&mut frame, "x", days);
    let mut shared = spec("Reaction ~ Days + x", Method::Ml);
    for t in &mut shared.equations[0].terms {
        t.coefficient = Coefficient::Free {
            label: Some("a".into()),
        };
    }
    let design = build(&shared, &frame);
    assert_eq!(design.fixed.len(), 2);
    assert_eq!(
        design.fixed[1].columns,
        [(0, "Days".into()), (0, "x".into())]
    );
    assert_eq!(design.fixed[1].label.as_deref(), Some("a"));
    let plain = fit(
        &build(&spec("Reaction ~ Days", Method::Ml), &frame),
        Method::Ml,
    )
    .unwrap();
    let labelled = fit(&design, Method::Ml).unwrap();
    assert!(close(
        labelled.fixed[1].estimate * 2.0,
        plain.fixed[1].estimate,
        1e-10
    ));
    assert!(close(labelled.loglik, plain.loglik, 1e-12));
}

#[test]
fn fixed_values_are_an_offset() {
    // Reaction ~ 1 + 10*Days is Reaction − 10·Days ~ 1.
    let mut frame = load_csv("lme4/sleepstudy.csv");
    let shifted: Vec<f64> = numeric(&frame, "Reaction")
        .iter()
        .zip(numeric(&frame, "Days"))
        .map(|(r, d)| r - 10.0 * d)
        .collect();
    add_numeric(&mut frame, "shifted", shifted);
    let mut fixed = spec("Reaction ~ Days + (1 | Subject)", Method::Reml);
    fixed.equations[0].terms[0].coefficient = Coefficient::Fixed(10.0);
    let design = build(&fixed, &frame);
    assert_eq!(names(&design), ["(Intercept)"]);
    let a = fit(&design, Method::Reml).unwrap();
    let b = fit(
        &build(&spec("shifted ~ 1 + (1 | Subject)", Method::Reml), &frame),
        Method::Reml,
    )
    .unwrap();
    assert!(close(a.fixed[0].estimate, b.fixed[0].estimate, 1e-10));
    assert!(close(a.loglik, b.loglik, 1e-12));
}

#[test]
fn missing_values_drop_observations_and_are_counted() {
    let frame = load_csv("synthetic/crying_survey.csv");
    let design = build(
        &spec(
            "improvement ~ positive_after_crying + alliance",
            Method::Reml,
        ),
        &frame,
    );
    let eq = &design.equations[0];
    assert_eq!((eq.used, eq.dropped), (73, 51));
    assert_eq!(eq.missing[1], ("positive_after_crying".into(), 51));
    assert_eq!(design.nobs(), 73);
}

#[test]
fn residual_classes_follow_level_order() {
    let frame = orthodont();
    let design = build(
        &spec_with_residual("distance ~ age + (1 | Subject)", Method::Reml, Some("Sex")),
        &frame,
    );
    let classes: Vec<_> = design
        .classes
        .iter()
        .map(|c| (c.level.clone().unwrap(), c.nobs))
        .collect();
    assert_eq!(classes, [("Male".into(), 64), ("Female".into(), 44)]);
}

#[test]
fn nested_terms_get_lme4_names_and_level_counts() {
    let frame = load_csv("lme4/pastes.csv");
    let design = build(
        &spec("strength ~ 1 + (1 | batch/cask)", Method::Reml),
        &frame,
    );
    let terms: Vec<_> = design
        .random
        .iter()
        .map(|t| (t.name.as_str(), t.levels.len()))
        .collect();
    assert_eq!(terms, [("batch", 10), ("cask:batch", 30)]);
    assert_eq!(design.random[1].levels[0], "a:A");
}

#[test]
fn unsupported_parameters_are_diagnostics() {
    let frame = load_csv("lme4/sleepstudy.csv");
    let mut s = spec("Reaction ~ Days + (Days | Subject)", Method::Reml);
    s.residual[0].correlated_within = Some("Subject".into());
    let errors = design::build(&s, &frame).unwrap_err();
    let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        ["`correlated within Subject` together with random terms is not supported yet"]
    );

    // A random-coefficient outcome whose label names no random effect (the checker prevents
    // this; the design still says so rather than panicking).
    let mut s = spec("Reaction ~ Days + (Days | Subject)", Method::Reml);
    s.equations[0].outcome_kind = OutcomeKind::RandomCoefficient;
    let errors = design::build(&s, &frame).unwrap_err();
    let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`Reaction` labels no random effect",
            "a random effect in a group-level equation is not supported yet"
        ]
    );

    let frame = orthodont();
    let errors = design::build(
        &spec("distance ~ age + (Sex | Subject)", Method::Reml),
        &frame,
    )
    .unwrap_err();
    assert_eq!(
        errors[0].message,
        "a random slope of the text column `Sex` is not supported yet"
    );
}

#[test]
fn unknown_columns_and_empty_data_are_diagnostics() {
    let frame = load_csv("lme4/sleepstudy.csv");
    let errors = design::build(
        &spec("Reaction ~ Dayz + (1 | Subjekt)", Method::Reml),
        &frame,
    )
    .unwrap_err();
    let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages.contains(&"no column `Dayz` in the analysis frame"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"no grouping column `Subjekt` in the analysis frame"),
        "{messages:?}"
    );

    let keep = vec![false; frame.nrows];
    let empty = filter_rows(&frame, &keep);
    let errors = design::build(&spec("Reaction ~ Days", Method::Reml), &empty).unwrap_err();
    assert!(errors[0].message.starts_with("no observations"));
}

#[test]
fn rank_deficient_fixed_design_is_a_diagnostic() {
    let mut frame = load_csv("lme4/sleepstudy.csv");
    let days = numeric(&frame, "Days").to_vec();
    add_numeric(&mut frame, "days_again", days);
    let design = build(&spec("Reaction ~ Days + days_again", Method::Reml), &frame);
    let errors = fit(&design, Method::Reml).unwrap_err();
    assert!(errors[0].message.contains("rank deficient"), "{errors:?}");
}

#[test]
fn groups_without_observations_are_not_counted() {
    // lme4 builds its factors from the model frame: a subject whose every row misses the outcome
    // is no group at all.
    let mut frame = load_csv("lme4/sleepstudy.csv");
    let subject: Vec<f64> = numeric(&frame, "Subject").to_vec();
    let reaction: Vec<f64> = numeric(&frame, "Reaction")
        .iter()
        .zip(&subject)
        .map(|(r, s)| if *s == 308.0 { f64::NAN } else { *r })
        .collect();
    add_numeric(&mut frame, "reaction_missing", reaction);
    let design = build(
        &spec("reaction_missing ~ Days + (Days | Subject)", Method::Reml),
        &frame,
    );
    assert_eq!(design.random[0].levels.len(), 17);
    assert!(!design.random[0].levels.contains(&"308".to_string()));
    assert_eq!(design.stats.factors[0].nlevels, 17);
    let fit = fit(&design, Method::Reml).unwrap();
    assert_eq!(fit.ngroups, [("Subject".to_string(), 17)]);
}

#[test]
fn unused_levels_are_dropped_as_r_does() {
    // Every row of sample A misses the outcome: R's model frame drops the level, and B becomes
    // the reference (lm(y ~ sample) gives sampleC … sampleF).
    let mut frame = load_csv("lme4/penicillin.csv");
    let sample = match frame.column("sample").unwrap() {
        tandem::data::Column::Text { codes, .. } => codes.clone(),
        _ => panic!("sample is text"),
    };
    let y: Vec<f64> = numeric(&frame, "diameter")
        .iter()
        .zip(&sample)
        .map(|(d, s)| if *s == 0 { f64::NAN } else { *d })
        .collect();
    add_numeric(&mut frame, "y", y);
    let design = build(&spec("y ~ sample", Method::Reml), &frame);
    assert_eq!(
        names(&design),
        ["(Intercept)", "sampleC", "sampleD", "sampleE", "sampleF"]
    );
    assert!(fit(&design, Method::Reml).is_ok());
}

#[test]
fn no_fixed_effects_and_exact_fits_do_not_panic() {
    // Without fixed effects REML and ML coincide.
    let frame = load_csv("lme4/sleepstudy.csv");
    let reml = fit(
        &build(&spec("Reaction ~ 0 + (1 | Subject)", Method::Reml), &frame),
        Method::Reml,
    )
    .unwrap();
    let ml = fit(
        &build(&spec("Reaction ~ 0 + (1 | Subject)", Method::Ml), &frame),
        Method::Ml,
    )
    .unwrap();
    assert!(reml.fixed.is_empty());
    assert!(
        (reml.loglik - ml.loglik).abs() < 1e-6,
        "{} {}",
        reml.loglik,
        ml.loglik
    );

    let mut frame = frame;
    let n = frame.nrows;
    add_numeric(&mut frame, "constant", vec![3.0; n]);
    let errors = fit(
        &build(
            &spec("constant ~ Days + (1 | Subject)", Method::Reml),
            &frame,
        ),
        Method::Reml,
    )
    .unwrap_err();
    assert!(errors[0].message.contains("fitted exactly"), "{errors:?}");
}

#[test]
fn random_coefficient_predictor_is_not_supported_yet() {
    // `Reaction ~ b*slope` where `slope` labels Subject's random Days slope.
    let frame = load_csv("lme4/sleepstudy.csv");
    let mut s = spec("Reaction ~ Days + (Days | Subject)", Method::Reml);
    s.random[0].effects[1].label = Some("slope".into());
    s.equations[0].terms[0].variables = vec!["slope".into()];
    let errors = design::build(&s, &frame).unwrap_err();
    assert_eq!(
        errors[0].message,
        "a random coefficient (`slope`) as a predictor is not supported yet"
    );
}
