//! The design stage: R's column names and treatment coding, shared labels, fixed values as
//! offsets, missing-value accounting, residual classes, and "not supported yet" diagnostics.
//! Expected names are R 4.2.2's `colnames(model.matrix(...))` on the same data.

use crate::common;

use common::*;
use tandem::data::DataTable;
use tandem::design::{self, Design};
use tandem::estimate::fit;
use tandem::model::{ModelSpec, OutcomeKind};
use tandem::prepare::AnalysisFrame;
use tandem::syntax::ast::Method;

/// Orthodont with Male as Sex's reference level, and `model` (equations and settings).
fn orthodont(model: &str) -> (ModelSpec, AnalysisFrame) {
    prepared(
        &format!("factor Sex reference \"Male\"\n{model}\n"),
        "lme4/orthodont.csv",
    )
}

fn sleepstudy(model: &str) -> (ModelSpec, AnalysisFrame) {
    prepared(model, "lme4/sleepstudy.csv")
}

fn names(design: &Design) -> Vec<&str> {
    design.fixed.iter().map(|f| f.term()).collect()
}

fn build(spec: &ModelSpec, frame: &AnalysisFrame) -> Design {
    design::build(spec, frame).expect("design")
}

/// The design of `model` on its prepared rows.
fn built((spec, frame): (ModelSpec, AnalysisFrame)) -> Design {
    build(&spec, &frame)
}

#[test]
fn treatment_coding_follows_r() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "distance ~ age + Sex + age:Sex",
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
    for (equation, want) in cases {
        let design = built(orthodont(equation));
        assert_eq!(names(&design), want, "{equation}");
    }
}

#[test]
fn equal_labels_share_one_parameter() {
    // y ~ a*Days + a*x with x = Days is y ~ 2a*Days: the shared parameter's column is the sum.
    let design = built(sleepstudy(
        "let x = Days\nReaction ~ a*Days + a*x\nestimate ml",
    ));
    assert_eq!(design.fixed.len(), 2);
    assert_eq!(
        design.fixed[1].columns,
        [(0, "Days".into()), (0, "x".into())]
    );
    assert_eq!(design.fixed[1].label.as_deref(), Some("a"));
    let plain = fit(
        &built(sleepstudy("Reaction ~ Days\nestimate ml")),
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
    let design = built(sleepstudy("Reaction ~ 10*Days + (1 | Subject)"));
    assert_eq!(names(&design), ["(Intercept)"]);
    let a = fit(&design, Method::Reml).unwrap();
    let b = fit(
        &built(sleepstudy(
            "let shifted = Reaction - 10*Days\nshifted ~ 1 + (1 | Subject)",
        )),
        Method::Reml,
    )
    .unwrap();
    assert!(close(a.fixed[0].estimate, b.fixed[0].estimate, 1e-10));
    assert!(close(a.loglik, b.loglik, 1e-12));
}

#[test]
fn missing_values_drop_observations_and_are_counted() {
    let design = built(prepared(
        "improvement ~ positive_after_crying + alliance",
        "synthetic/crying_survey.csv",
    ));
    let eq = &design.equations[0];
    assert_eq!((eq.used, eq.dropped), (73, 51));
    assert_eq!(eq.missing[1], ("positive_after_crying".into(), 51));
    assert_eq!(design.nobs(), 73);
}

#[test]
fn residual_classes_follow_level_order() {
    let design = built(orthodont("distance ~ age + (1 | Subject)\nresidual by Sex"));
    let classes: Vec<_> = design
        .classes
        .iter()
        .map(|c| (c.level.clone().unwrap(), c.nobs))
        .collect();
    assert_eq!(classes, [("Male".into(), 64), ("Female".into(), 44)]);
}

#[test]
fn nested_terms_get_lme4_names_and_level_counts() {
    let design = built(prepared(
        "strength ~ 1 + (1 | batch/cask)",
        "lme4/pastes.csv",
    ));
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
    // The specs are edited after the checker: what they ask for is refused before the design
    // pass, which still says so rather than panicking.
    let (mut s, frame) = sleepstudy("Reaction ~ Days + (1 + Days | Subject)");
    s.residual[0].correlated_within = Some("Subject".into());
    let errors = design::build(&s, &frame).unwrap_err();
    let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        ["`correlated within Subject` together with random terms is not supported yet"]
    );

    // A random-coefficient outcome whose label names no random effect (the checker prevents
    // this; the design still says so rather than panicking).
    let (mut s, frame) = sleepstudy("Reaction ~ Days + (1 + Days | Subject)");
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

    // A random slope of the text column `Sex` (the frame checks refuse it first: `Sex` is
    // constant within `Subject`).
    let (mut s, frame) = orthodont("distance ~ age + (1 + age | Subject)");
    let slope = &mut s.random[0].effects[1];
    slope.variables = vec!["Sex".into()];
    slope.name = "Sex".into();
    let errors = design::build(&s, &frame).unwrap_err();
    assert_eq!(
        errors[0].message,
        "a random slope of the text column `Sex` is not supported yet"
    );
}

#[test]
fn unknown_columns_and_empty_data_are_diagnostics() {
    // Names the checker would refuse, put into a checked spec: the design pass says so too.
    let (mut s, frame) = sleepstudy("Reaction ~ Days + (1 | Subject)");
    let days = &mut s.equations[0].terms[0];
    days.variables = vec!["Dayz".into()];
    days.name = "Dayz".into();
    s.random[0].grouping = vec!["Subjekt".into()];
    s.random[0].name = "Subjekt".into();
    let errors = design::build(&s, &frame).unwrap_err();
    let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages.contains(&"no column `Dayz` in the analysis frame"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"no grouping column `Subjekt` in the analysis frame"),
        "{messages:?}"
    );

    let empty = DataTable::from_numeric(
        "empty.csv",
        vec![("Reaction".into(), Vec::new()), ("Days".into(), Vec::new())],
    );
    let (s, empty) = prepared_table("Reaction ~ Days", empty);
    let errors = design::build(&s, &empty).unwrap_err();
    assert!(errors[0].message.starts_with("no observations"));
}

#[test]
fn rank_deficient_fixed_design_is_a_diagnostic() {
    let (s, frame) = sleepstudy("let days_again = Days\nReaction ~ Days + days_again");
    // Refused before optimizing, naming the column (the estimator could only say "rank
    // deficient").
    let errors = design::build(&s, &frame).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains(
            "the column `days_again` of the `Reaction` equation is constant, a copy or a \
             combination of the columns before it (`(Intercept)`, `Days`)"
        ),
        "{errors:?}"
    );
}

#[test]
fn groups_without_observations_are_not_counted() {
    // lme4 builds its factors from the model frame: a subject whose every row misses the outcome
    // is no group at all.
    let design = built(sleepstudy(
        "let reaction_missing = ifelse(Subject == 308, NA, Reaction)\n\
         reaction_missing ~ Days + (1 + Days | Subject)",
    ));
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
    let design = built(prepared(
        "let y = ifelse(sample == \"A\", NA, diameter)\ny ~ sample",
        "lme4/penicillin.csv",
    ));
    assert_eq!(
        names(&design),
        ["(Intercept)", "sampleC", "sampleD", "sampleE", "sampleF"]
    );
    assert!(fit(&design, Method::Reml).is_ok());
}

#[test]
fn no_fixed_effects_and_exact_fits_do_not_panic() {
    // Without fixed effects REML and ML coincide.
    let reml = fit(
        &built(sleepstudy("Reaction ~ 0 + (1 | Subject)\nestimate reml")),
        Method::Reml,
    )
    .unwrap();
    let ml = fit(
        &built(sleepstudy("Reaction ~ 0 + (1 | Subject)\nestimate ml")),
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

    let (s, frame) = sleepstudy("let constant = 3\nconstant ~ Days + (1 | Subject)");
    let errors = design::build(&s, &frame).unwrap_err();
    assert!(
        errors[0]
            .message
            .contains("the outcome `constant` is fitted exactly"),
        "{errors:?}"
    );
}

#[test]
fn random_coefficient_predictor_is_not_supported_yet() {
    // `Reaction ~ b*slope` where `slope` labels Subject's random Days slope (edited into a
    // checked spec: the checker has its own word on it).
    let (mut s, frame) = sleepstudy("Reaction ~ Days + (1 + Days | Subject)");
    s.random[0].effects[1].label = Some("slope".into());
    s.equations[0].terms[0].variables = vec!["slope".into()];
    let errors = design::build(&s, &frame).unwrap_err();
    assert_eq!(
        errors[0].message,
        "a random coefficient (`slope`) as a predictor is not supported yet"
    );
}

/// `a` and `b` agree to rounding (sums taken in a different order).
fn close_slices(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-10 * (1.0 + y.abs()),
            "{what}: {x} vs {y}"
        );
    }
}

/// The design built from many small chunks of rows (merged in order) equals the one-pass design:
/// same classes, levels and observation counts, the same sums up to rounding, the same fit.
fn chunked_equals_whole(spec: &ModelSpec, frame: &AnalysisFrame) {
    let whole = build(spec, frame);
    for chunk_rows in [1, 7, 50] {
        let chunked = design::build_in_chunks(spec, frame, chunk_rows).expect("design");
        assert_eq!(
            chunked.classes, whole.classes,
            "classes, chunks of {chunk_rows}"
        );
        assert_eq!(chunked.equations, whole.equations);
        assert_eq!(chunked.random, whole.random);
        let (a, b) = (&chunked.stats, &whole.stats);
        assert_eq!(a.n, b.n);
        for (x, y) in a.xy.iter().zip(&b.xy) {
            close_slices("xy", x, y);
        }
        assert_eq!(a.factors.len(), b.factors.len());
        for (f, g) in a.factors.iter().zip(&b.factors) {
            assert_eq!(f.level_start, g.level_start);
            for (x, y) in f.blocks.iter().zip(&g.blocks) {
                assert_eq!(x.class, y.class);
                close_slices("zz", &x.zz, &y.zz);
                close_slices("zxy", &x.zxy, &y.zxy);
            }
        }
        assert_eq!(a.cross.len(), b.cross.len());
        for (c, d) in a.cross.iter().zip(&b.cross) {
            assert_eq!((c.a, c.b, c.blocks.len()), (d.a, d.b, d.blocks.len()));
            for (x, y) in c.blocks.iter().zip(&d.blocks) {
                assert_eq!(
                    (x.level_a, x.level_b, x.class),
                    (y.level_a, y.level_b, y.class)
                );
                close_slices("cross zz", &x.zz, &y.zz);
            }
        }
        assert_eq!(a.within.is_some(), b.within.is_some());
        if let (Some(u), Some(v)) = (&a.within, &b.within) {
            assert_eq!((u.nunits, u.sizes.len()), (v.nunits, v.sizes.len()));
            for (s, t) in u.sizes.iter().zip(&v.sizes) {
                assert_eq!((s.size, s.units), (t.size, t.units));
                for (x, y) in s.outer.iter().zip(&t.outer) {
                    close_slices("within outer", x, y);
                }
            }
        }
        let (f1, f2) = (
            fit(&chunked, spec.method).unwrap(),
            fit(&whole, spec.method).unwrap(),
        );
        assert!(
            (f1.loglik - f2.loglik).abs() < 1e-8,
            "{} vs {}",
            f1.loglik,
            f2.loglik
        );
    }
}

#[test]
fn design_pass_in_chunks_equals_one_pass() {
    // Random slopes with a residual variance per class (blocks per level and class).
    let (s, frame) = orthodont("distance ~ age + (1 + age | Subject)\nresidual by Sex");
    chunked_equals_whole(&s, &frame);
    // Crossed terms (cross blocks between two factors).
    let (s, frame) = prepared(
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        "lme4/penicillin.csv",
    );
    chunked_equals_whole(&s, &frame);
    // Residuals correlated within couples (units split across chunks).
    let couples = |residual: &str| {
        prepared(
            &format!("Satisfaction_A ~ Tension_A + SelfPos_P\n{residual}"),
            "dyadic/acitelli_pairwise.csv",
        )
    };
    let (s, frame) = couples("residual by Gender_A correlated within CoupleID");
    chunked_equals_whole(&s, &frame);
    // One class: a couple's two rows share it, and their sums meet across a chunk boundary.
    let (s, frame) = couples("residual correlated within CoupleID");
    chunked_equals_whole(&s, &frame);
}
