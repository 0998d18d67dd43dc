//! The design stage: R's column names and treatment coding, shared labels, fixed values as
//! offsets, missing-value accounting, residual classes, and "not supported yet" diagnostics.
//! Expected names are R 4.2.2's `colnames(model.matrix(...))` on the same data.

use crate::common;

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
    // Refused before optimizing, naming the column (the estimator could only say "rank
    // deficient").
    let errors =
        design::build(&spec("Reaction ~ Days + days_again", Method::Reml), &frame).unwrap_err();
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
    let errors = design::build(
        &spec("constant ~ Days + (1 | Subject)", Method::Reml),
        &frame,
    )
    .unwrap_err();
    assert!(
        errors[0]
            .message
            .contains("the outcome `constant` is fitted exactly"),
        "{errors:?}"
    );
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
    let frame = orthodont();
    let s = spec_with_residual(
        "distance ~ age + (age | Subject)",
        Method::Reml,
        Some("Sex"),
    );
    chunked_equals_whole(&s, &frame);
    // Crossed terms (cross blocks between two factors).
    let frame = load_csv("lme4/penicillin.csv");
    chunked_equals_whole(
        &spec("diameter ~ 1 + (1 | plate) + (1 | sample)", Method::Reml),
        &frame,
    );
    // Residuals correlated within couples (units split across chunks).
    let frame = load_csv("dyadic/acitelli_pairwise.csv");
    let mut s = spec_with_residual(
        "Satisfaction_A ~ Tension_A + SelfPos_P",
        Method::Reml,
        Some("Gender_A"),
    );
    s.residual[0].correlated_within = Some("CoupleID".into());
    chunked_equals_whole(&s, &frame);
    // One class: a couple's two rows share it, and their sums meet across a chunk boundary.
    let mut s = spec("Satisfaction_A ~ Tension_A + SelfPos_P", Method::Reml);
    s.residual[0].correlated_within = Some("CoupleID".into());
    chunked_equals_whole(&s, &frame);
}
