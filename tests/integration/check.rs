//! The checker: every library model checks clean against its data's columns, the resolved specs
//! of representative models are snapshotted, every error class renders as expected, and the
//! data-dependent checks (`check_frame`, `variable_levels`) hold on the real data sets.

use std::path::{Path, PathBuf};

use tandem::check::{check, check_frame, variable_levels, Schema, VariableLevel};
use tandem::data::{read_csv, DataTable};
use tandem::diagnostics::Diagnostic;
use tandem::model::ModelSpec;
use tandem::pipeline::{prepare_model, prepare_model_file, FitOptions};
use tandem::prepare::AnalysisFrame;
use tandem::syntax::ast::{ModelFile, Statement};
use tandem::syntax::parse;

fn model_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            model_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "tandem") {
            out.push(path);
        }
    }
}

/// The columns of a data file as `tandem check` reads them.
fn schema_of(csv: &Path) -> Schema {
    let table = read_csv(csv).unwrap_or_else(|d| panic!("{}: {}", csv.display(), d.message));
    Schema::from_table(&table)
}

/// The data file a model names, relative to the model file.
fn data_path(model: &Path, file: &ModelFile) -> PathBuf {
    let data = file
        .statements
        .iter()
        .find_map(|s| match s {
            Statement::Data { path, .. } => Some(path.value.clone()),
            _ => None,
        })
        .expect("the model names its data");
    model.parent().unwrap().join(data)
}

fn parse_file(path: &Path) -> (String, ModelFile) {
    let text = std::fs::read_to_string(path).unwrap();
    let file = parse(&text).unwrap_or_else(|d| panic!("{}: {d:#?}", path.display()));
    (text, file)
}

fn checked_spec(model: &str) -> ModelSpec {
    let path = Path::new("models").join(model);
    let (_, file) = parse_file(&path);
    let schema = schema_of(&data_path(&path, &file));
    match check(&file, &schema) {
        Ok(checked) => checked.spec,
        Err(d) => panic!("{model}: {d:#?}"),
    }
}

/// The diagnostics as the user sees them (`tandem check` renders them the same way).
fn render(text: &str, diagnostics: &[Diagnostic]) -> String {
    let source = tandem::diagnostics::SourceFile {
        path: Path::new("model.tandem"),
        text,
    };
    tandem::diagnostics::render(diagnostics, Some(&source))
}

#[test]
fn every_library_model_checks_clean() {
    let mut files = Vec::new();
    model_files(Path::new("models"), &mut files);
    files.sort();
    assert!(files.len() >= 18, "found only {} model files", files.len());
    for path in files {
        let (text, file) = parse_file(&path);
        let schema = schema_of(&data_path(&path, &file));
        match check(&file, &schema) {
            Ok(checked) => assert!(
                checked.warnings.is_empty(),
                "{}:\n{}",
                path.display(),
                render(&text, &checked.warnings)
            ),
            Err(d) => panic!("{}:\n{}", path.display(), render(&text, &d)),
        }
    }
}

#[test]
fn sleepstudy_spec() {
    insta::assert_debug_snapshot!(checked_spec("lme4/sleepstudy.tandem"));
}

#[test]
fn pastes_nested_spec_has_batch_and_cask_in_batch() {
    let spec = checked_spec("lme4/pastes_nested.tandem");
    let names: Vec<&str> = spec.random.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["batch", "cask:batch"]);
    insta::assert_debug_snapshot!(spec);
}

#[test]
fn sleepstudy_uncorrelated_spec_has_two_terms() {
    let spec = checked_spec("lme4/sleepstudy_uncorrelated.tandem");
    assert_eq!(spec.random.len(), 2);
    assert!(spec
        .random
        .iter()
        .all(|t| t.effects.len() == 1 && !t.correlated));
    insta::assert_debug_snapshot!(spec);
}

#[test]
fn therapist_mediation_merges_one_block_per_patient() {
    let spec = checked_spec("seeds/therapist_ot_mediation.tandem");
    assert_eq!(spec.random.len(), 1);
    let effects: Vec<(usize, &str, Option<&str>)> = spec.random[0]
        .effects
        .iter()
        .map(|e| (e.equation, e.name.as_str(), e.label.as_deref()))
        .collect();
    // The reference's order: m intercept, a slope, y intercept, b slope.
    assert_eq!(
        effects,
        [
            (0, "(Intercept)", None),
            (0, "neg_w", Some("a")),
            (1, "(Intercept)", None),
            (1, "ot_w", Some("b")),
        ]
    );
    insta::assert_debug_snapshot!(spec);
}

#[test]
fn synchrony_random_coefficient_is_outcome_and_predictor() {
    let spec = checked_spec("seeds/ot_synchrony.tandem");
    insta::assert_debug_snapshot!(spec);
}

#[test]
fn error_fixtures() {
    insta::glob!("../fixtures/check_errors", "*.tandem", |path| {
        let (text, file) = parse_file(path);
        let schema = schema_of(&data_path(path, &file));
        let diagnostics = match check(&file, &schema) {
            Ok(_) => panic!("{} checked clean", path.display()),
            Err(d) => d,
        };
        insta::assert_snapshot!(render(&text, &diagnostics));
    });
}

/// A model given as text, checked against a data file of models/data.
fn spec_from_text(text: &str, csv: &Path) -> ModelSpec {
    let file = parse(text).unwrap_or_else(|d| panic!("{d:#?}"));
    match check(&file, &schema_of(csv)) {
        Ok(checked) => checked.spec,
        Err(d) => panic!("{}", render(text, &d)),
    }
}

/// A library model's checked spec and prepared rows, as `tandem fit` has them before its design
/// pass.
fn prepared_file(model: &str) -> (ModelSpec, AnalysisFrame) {
    let path = Path::new("models").join(model);
    match prepare_model_file(&path, &FitOptions::default()) {
        Ok(prepared) => (prepared.spec, prepared.frame),
        Err(d) => panic!("{model}: {d:#?}"),
    }
}

/// The first `n` rows of a table.
fn first_rows(table: DataTable, n: usize) -> DataTable {
    let rows: Vec<usize> = (0..n).collect();
    DataTable {
        columns: table.columns.iter().map(|c| c.select(&rows)).collect(),
        nrows: n,
        ..table
    }
}

#[test]
fn synchrony_levels_put_dyad_variables_at_the_dyad_level() {
    let (spec, frame) = prepared_file("seeds/ot_synchrony.tandem");
    assert_eq!(check_frame(&spec, &frame), Vec::<Diagnostic>::new());
    let levels = variable_levels(&spec, &frame);
    let level = |v: &str| VariableLevel {
        variable: v.to_string(),
        constant_within: vec!["dyad".to_string()],
    };
    let row = |v: &str| VariableLevel {
        variable: v.to_string(),
        constant_within: vec![],
    };
    assert_eq!(
        levels,
        [
            row("dt"),
            row("dp"),
            level("social_functioning"),
            level("reduction")
        ]
    );
}

#[test]
fn sleepstudy_passes_frame_checks() {
    let (spec, frame) = prepared_file("lme4/sleepstudy.tandem");
    assert_eq!(check_frame(&spec, &frame), Vec::<Diagnostic>::new());
}

#[test]
fn frame_errors() {
    let mut out = String::new();
    // Through the pipeline's preparation, whose frame checks refuse each of these.
    let mut run = |title: &str, text: &str, csv: &str, rows: Option<usize>| {
        let mut table = read_csv(Path::new(csv)).unwrap();
        if let Some(n) = rows {
            table = first_rows(table, n);
        }
        let diagnostics = match prepare_model("model.tandem", text, table, &FitOptions::default()) {
            Ok(_) => panic!("{title}: the frame checks found nothing"),
            Err(d) => d,
        };
        out.push_str(&format!("## {title}\n{}\n", render(text, &diagnostics)));
    };
    run(
        "a subject-level slope",
        "data \"x.csv\"\ndistance ~ 1 + age + (1 + Sex | Subject)\n",
        "models/data/lme4/orthodont.csv",
        None,
    );
    run(
        "one row per group",
        "data \"x.csv\"\nimprovement ~ 1 + alliance + (1 + alliance | respondent)\n",
        "models/data/synthetic/crying_survey.csv",
        None,
    );
    run(
        "one group left",
        "data \"x.csv\"\nReaction ~ 1 + Days + (1 + Days | Subject)\n",
        "models/data/lme4/sleepstudy.csv",
        Some(10),
    );
    run(
        "a group-level equation on a session-level variable",
        "data \"x.csv\"\nlet dp = ot_patient_post - ot_patient_pre\n\
         let dt = ot_therapist_post - ot_therapist_pre\ndt ~ 1 + sync*dp + (1 + sync | dyad)\nsync ~ 1 + a*dp\n\
         hrsd_end ~ 1 + b*sync + ot_patient_pre\nestimate ml\n",
        "models/data/synthetic/ot_dyads.csv",
        None,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn settings_and_defaults() {
    use tandem::model::IntervalChoice;
    use tandem::syntax::ast::Method;
    let sleep = Path::new("models/data/lme4/sleepstudy.csv");
    let spec = spec_from_text("data \"x.csv\"\nReaction ~ Days\n", sleep);
    assert_eq!(spec.method, Method::Reml);
    assert_eq!(spec.interval, None);
    assert_eq!(spec.vary, None);
    let interval = |text: &str| {
        spec_from_text(
            &format!("data \"x.csv\"\nReaction ~ Days\ninterval {text}\n"),
            sleep,
        )
        .interval
        .unwrap()
    };
    assert_eq!(
        interval("monte_carlo"),
        IntervalChoice::MonteCarlo {
            draws: 10_000,
            level: 0.95,
            seed: 1
        }
    );
    assert_eq!(
        interval("bootstrap(resample = Subject, level = 0.9)"),
        IntervalChoice::Bootstrap {
            draws: 1000,
            level: 0.9,
            seed: 1,
            resample: Some("Subject".into())
        }
    );
    assert_eq!(
        interval("parametric_bootstrap(draws = 50, seed = 7)"),
        IntervalChoice::ParametricBootstrap {
            draws: 50,
            level: 0.95,
            seed: 7
        }
    );
    assert_eq!(interval("delta"), IntervalChoice::Delta { level: 0.95 });
    let bootstrap = checked_spec("seeds/ot_synchrony_bootstrap.tandem");
    assert_eq!(
        bootstrap.interval,
        Some(IntervalChoice::Bootstrap {
            draws: 2000,
            level: 0.95,
            seed: 1,
            resample: Some("dyad".into())
        })
    );
    let facial = checked_spec("seeds/facial_dynamics.tandem");
    let vary = facial.vary.unwrap();
    assert_eq!(
        (vary.name.as_str(), vary.values),
        ("span", vec![1.0, 5.0, 10.0, 30.0])
    );
    let names: Vec<&str> = facial.random.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["patient", "session"]);
}

/// `x:x` is `x`, as R reads it (not x²), in fixed and random terms, with a warning at the term;
/// `x + x:x` is then the repeated-term error (issue 14 item 7).
#[test]
fn an_interaction_of_a_variable_with_itself_is_the_variable() {
    let sleep = Path::new("models/data/lme4/sleepstudy.csv");
    let text = "data \"x.csv\"\nReaction ~ 1 + Days:Days + (1 + Days:Days | Subject)\n";
    let checked = check(&parse(text).unwrap(), &schema_of(sleep)).unwrap();
    let equation = &checked.spec.equations[0];
    let fixed: Vec<&Vec<String>> = equation.terms.iter().map(|t| &t.variables).collect();
    assert_eq!(fixed, [&vec!["Days".to_string()]]);
    let slopes: Vec<&Vec<String>> = checked.spec.random[0]
        .effects
        .iter()
        .map(|e| &e.variables)
        .collect();
    assert_eq!(slopes, [&Vec::<String>::new(), &vec!["Days".to_string()]]);
    let messages: Vec<&str> = checked
        .warnings
        .iter()
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(
        messages,
        ["`Days:Days` is `Days`: a variable in an interaction with itself is the variable, as in R";
            2]
    );
    let text = "data \"x.csv\"\nReaction ~ 1 + Days + Days:Days\n";
    let errors = check(&parse(text).unwrap(), &schema_of(sleep)).unwrap_err();
    assert!(
        errors[0].message.contains("appears twice"),
        "{}",
        render(text, &errors)
    );
}

#[test]
fn intercepts_labels_and_fixed_values() {
    use tandem::model::Coefficient;
    let sleep = Path::new("models/data/lme4/sleepstudy.csv");
    let intercept = |formula: &str| {
        spec_from_text(&format!("data \"x.csv\"\nReaction ~ {formula}\n"), sleep).equations[0]
            .intercept
            .clone()
    };
    let free = Some(Coefficient::Free { label: None });
    assert_eq!(intercept("Days"), free);
    assert_eq!(intercept("1 + Days"), free);
    assert_eq!(intercept("0 + Days"), None);
    assert_eq!(intercept("Days - 1"), None);
    // The last intercept term decides, as in R; writing it twice is only a warning.
    assert_eq!(intercept("1 + Days - 1"), None);
    let text = "data \"x.csv\"\nReaction ~ 1 + Days + 1\n";
    let warned = check(&parse(text).unwrap(), &schema_of(sleep)).unwrap();
    assert_eq!(warned.warnings.len(), 1);
    assert_eq!(warned.warnings[0].message, "the intercept is written twice");
    assert_eq!(
        intercept("b0*1 + Days"),
        Some(Coefficient::Free {
            label: Some("b0".into())
        })
    );
    let spec = spec_from_text(
        "data \"x.csv\"\nReaction ~ b0*1 + 0.5*Days + (1 | Subject)\n",
        sleep,
    );
    assert_eq!(
        spec.equations[0].terms[0].coefficient,
        Coefficient::Fixed(0.5)
    );
    // The intercept's label names its random part.
    assert_eq!(spec.random[0].effects[0].label.as_deref(), Some("b0"));

    let apim = checked_spec("dyadic/apim_distinguishable.tandem");
    assert_eq!(apim.equations[0].intercept, None);
    let terms: Vec<&str> = apim.equations[0]
        .terms
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        terms,
        ["Gender_A", "Gender_A:OtherPos_A", "Gender_A:OtherPos_P"]
    );
    assert_eq!(apim.residual[0].by.as_deref(), Some("Gender_A"));
    assert_eq!(
        apim.residual[0].correlated_within.as_deref(),
        Some("CoupleID")
    );
}

#[test]
fn random_term_expansion_and_merging() {
    let pastes = Path::new("models/data/lme4/pastes.csv");
    let spec = spec_from_text(
        "data \"x.csv\"\nstrength ~ 1 + (1 | batch/cask/sample) + (1 | batch:cask)\n",
        pastes,
    );
    let terms: Vec<(&str, Vec<&str>)> = spec
        .random
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.grouping.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        terms,
        [
            ("batch", vec!["batch"]),
            ("cask:batch", vec!["cask", "batch"]),
            ("sample:(cask:batch)", vec!["sample", "cask", "batch"]),
            ("batch:cask", vec!["batch", "cask"]),
        ]
    );
    // `(x | g)` has an implicit intercept, `(0 + x | g)` none; `||` splits per effect.
    let sleep = Path::new("models/data/lme4/sleepstudy.csv");
    let effects = |random: &str| -> Vec<Vec<String>> {
        spec_from_text(
            &format!("data \"x.csv\"\nReaction ~ Days + {random}\n"),
            sleep,
        )
        .random
        .iter()
        .map(|t| t.effects.iter().map(|e| e.name.clone()).collect())
        .collect()
    };
    assert_eq!(effects("(Days | Subject)"), [["(Intercept)", "Days"]]);
    assert_eq!(effects("(0 + Days | Subject)"), [["Days"]]);
    assert_eq!(effects("(Days || Subject)"), [["(Intercept)"], ["Days"]]);
    // Two equations on one grouping share one block; `||` terms never merge.
    let csv = Path::new("models/data/synthetic/ot_sessions.csv");
    let spec = spec_from_text(
        "data \"x.csv\"\not_post ~ 1 + (1 | patient) + (1 | therapist)\n\
         hrsd ~ 1 + (1 | patient) + (0 + neg_emotion || patient)\n",
        csv,
    );
    let blocks: Vec<(&str, Vec<(usize, &str)>)> = spec
        .random
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.effects
                    .iter()
                    .map(|e| (e.equation, e.name.as_str()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        blocks,
        [
            ("patient", vec![(0, "(Intercept)"), (1, "(Intercept)")]),
            ("therapist", vec![(0, "(Intercept)")]),
            ("patient", vec![(1, "neg_emotion")]),
        ]
    );
}

#[test]
fn a_data_override_makes_the_data_statement_optional() {
    use tandem::check::{check_with, CheckOptions};
    let text = "Reaction ~ Days + (Days | Subject)\n";
    let file = parse(text).unwrap();
    let schema = schema_of(Path::new("models/data/lme4/sleepstudy.csv"));
    let missing = check(&file, &schema).unwrap_err();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].message, "the model file has no `data` statement");
    let options = CheckOptions {
        data_override: true,
    };
    assert!(check_with(&file, &schema, options).is_ok());
}

/// `family` fills the equation's family (its span the statement's), a non-Gaussian model is
/// fitted by ML when the file names no method, and `agq` reaches the spec.
#[test]
fn family_statements_fill_the_spec() {
    use tandem::model::{FamilyKind, Link, Method};
    let cbpp = Path::new("models/data/lme4/cbpp.csv");
    let text = "data \"cbpp.csv\"\nfactor period reference \"1\"\n\
                incidence ~ 1 + period + (1 | herd)\n\
                family incidence binomial(trials = size, link = probit)\n";
    let spec = spec_from_text(text, cbpp);
    let family = &spec.equations[0].family;
    assert_eq!(family.kind, FamilyKind::Binomial);
    assert_eq!(family.link, Link::Probit);
    assert_eq!(family.trials.as_deref(), Some("size"));
    assert_eq!(family.offset, None);
    let statement = text.find("family").unwrap();
    assert_eq!(family.span.map(|s| s.start), Some(statement));
    assert_eq!(spec.method, Method::Ml);
    assert_eq!(spec.agq, 1);

    let text = "data \"cbpp.csv\"\nincidence ~ 1 + (1 | herd)\n\
                family poisson(offset = size)\nestimate ml(agq = 25)\n";
    let spec = spec_from_text(text, cbpp);
    let family = &spec.equations[0].family;
    assert_eq!((family.kind, family.link), (FamilyKind::Poisson, Link::Log));
    assert_eq!(family.offset.as_deref(), Some("size"));
    assert_eq!(spec.agq, 25);

    // Without a family: Gaussian, identity, REML, Laplace (unused).
    let spec = spec_from_text("data \"cbpp.csv\"\nincidence ~ 1 + (1 | herd)\n", cbpp);
    assert!(spec.equations[0].family.is_gaussian());
    assert_eq!(spec.equations[0].family.span, None);
    assert_eq!((spec.method, spec.agq), (Method::Reml, 1));
}

/// The outcome checks on the prepared frame (`check::check_outcomes`): a Gaussian outcome that
/// is 0/1 or a count gets a warning suggesting its family; a binomial or Poisson outcome's
/// values are checked, the first offending data row named.
#[test]
fn outcome_values_are_checked_against_their_family() {
    insta::glob!("../fixtures/outcome_checks", "*.tandem", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let diagnostics = match prepare_model_file(path, &FitOptions::default()) {
            Ok(prepared) => prepared.frame.warnings,
            Err(errors) => errors,
        };
        assert!(!diagnostics.is_empty(), "{}", path.display());
        insta::assert_snapshot!(render(&text, &diagnostics));
    });
}
