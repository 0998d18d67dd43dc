//! Preparation (`group`, `order`, `factor`, `let`, `keep` in file order) against values worked
//! out by hand from small inline CSVs, and two real checks on the shipped synthetic data whose
//! expected row counts are computed independently in the test.
//!
//! ASTs are built with the small constructors below and lowered as `check` lowers them
//! (`lower_preparation`, without the checks), so that preparation's own errors show.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use tandem::check::{lower_preparation, Schema};
use tandem::data::{read_csv, Column, DataTable, MISSING_CODE};
use tandem::diagnostics::{Diagnostic, Location, Severity};
use tandem::prepare::{constant_within, prepare, AnalysisFrame};
use tandem::syntax::ast::{
    Arg, BinaryOp, Expr, ExprKind, FactorSpec, Ident, Literal, ModelFile, Span, Statement,
    StringLit, UnaryOp,
};

// ---- AST constructors ----------------------------------------------------------------------

fn span() -> Span {
    Span::default()
}
fn ex(kind: ExprKind) -> Expr {
    Expr { kind, span: span() }
}
fn at(mut e: Expr, start: usize, end: usize) -> Expr {
    e.span = Span::new(start, end);
    e
}
fn num(v: f64) -> Expr {
    ex(ExprKind::Number(v))
}
fn text(s: &str) -> Expr {
    ex(ExprKind::String(s.into()))
}
fn na() -> Expr {
    ex(ExprKind::Missing)
}
fn name(n: &str) -> Expr {
    ex(ExprKind::Name(n.into()))
}
fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    ex(ExprKind::Binary {
        op,
        lhs: Box::new(l),
        rhs: Box::new(r),
    })
}
fn not(e: Expr) -> Expr {
    ex(ExprKind::Unary {
        op: UnaryOp::Not,
        operand: Box::new(e),
    })
}
fn call(f: &str, args: Vec<Expr>) -> Expr {
    ex(ExprKind::Call {
        function: ident(f),
        args: args
            .into_iter()
            .map(|value| Arg { name: None, value })
            .collect(),
    })
}
fn ident(n: &str) -> Ident {
    Ident {
        name: n.into(),
        span: span(),
    }
}
fn lit(s: &str, start: usize, end: usize) -> StringLit {
    StringLit {
        value: s.into(),
        span: Span::new(start, end),
    }
}
fn let_(n: &str, value: Expr) -> Statement {
    Statement::Let {
        name: ident(n),
        value,
        span: span(),
    }
}
fn keep(condition: Expr) -> Statement {
    Statement::Keep {
        condition,
        span: span(),
    }
}
fn group(n: &str) -> Statement {
    Statement::Group {
        name: ident(n),
        span: span(),
    }
}
fn order(n: &str) -> Statement {
    Statement::Order {
        name: ident(n),
        span: span(),
    }
}
fn factor(column: &str, spec: FactorSpec) -> Statement {
    Statement::Factor {
        column: ident(column),
        spec,
        span: span(),
    }
}

// ---- running and reading results ---------------------------------------------------------------

fn temp_csv(label: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-prepare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{label}.csv"));
    std::fs::write(&path, contents).unwrap();
    path
}

fn run(
    label: &str,
    csv: &str,
    statements: Vec<Statement>,
    vary: &[(&str, f64)],
) -> Result<AnalysisFrame, Vec<Diagnostic>> {
    let table = read_csv(&temp_csv(label, csv)).unwrap();
    let vary: Vec<(String, f64)> = vary.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    lowered_and_prepared(statements, &table, &vary)
}

/// The statements (with a `vary` statement for each `vary` value given) lowered against the
/// table's columns, then prepared.
fn lowered_and_prepared(
    mut statements: Vec<Statement>,
    table: &DataTable,
    vary: &[(String, f64)],
) -> Result<AnalysisFrame, Vec<Diagnostic>> {
    for (n, value) in vary {
        statements.push(Statement::Vary {
            name: ident(n),
            values: vec![Literal::Number {
                value: *value,
                span: span(),
            }],
            span: span(),
        });
    }
    let plan = lower_preparation(&ModelFile { statements }, &Schema::from_table(table))?;
    prepare(&plan, table, vary)
}

fn ok(label: &str, csv: &str, statements: Vec<Statement>, vary: &[(&str, f64)]) -> AnalysisFrame {
    run(label, csv, statements, vary).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn errors(label: &str, csv: &str, statements: Vec<Statement>) -> Vec<Diagnostic> {
    run(label, csv, statements, &[]).expect_err("preparation should fail")
}

fn nums(frame: &AnalysisFrame, n: &str) -> Vec<f64> {
    match frame.column(n) {
        Some(Column::Numeric(v)) => v.clone(),
        other => panic!("{n} is not numeric: {other:?}"),
    }
}

/// Per-row strings of a text column (None = missing).
fn strings(frame: &AnalysisFrame, n: &str) -> Vec<Option<String>> {
    match frame.column(n) {
        Some(Column::Text { codes, levels }) => codes
            .iter()
            .map(|&c| (c != MISSING_CODE).then(|| levels[c as usize].clone()))
            .collect(),
        other => panic!("{n} is not text: {other:?}"),
    }
}

const NA: f64 = f64::NAN;

fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let same = (a.is_nan() && e.is_nan()) || (a - e).abs() <= 1e-12 * e.abs().max(1.0);
        assert!(same, "row {i}: {a} != {e} in {actual:?}");
    }
}

use BinaryOp::*;

// ---- group means over the kept rows ------------------------------------------------------------

const GROUPED: &str = "g,x,y\na,1,1\na,2,0\na,6,1\nb,10,1\nb,20,1\nb,NA,1\n";

#[test]
fn within_and_between_use_the_rows_kept_so_far() {
    let frame = ok(
        "grouped-keep",
        GROUPED,
        vec![
            group("g"),
            let_("all_w", call("within", vec![name("x")])),
            keep(bin(Eq, name("y"), num(1.0))),
            let_("xw", call("within", vec![name("x")])),
            let_("xb", call("between", vec![name("x")])),
        ],
        &[],
    );
    // Before the keep, group a's mean is (1+2+6)/3 = 3; the row with x = 2 is dropped after.
    assert_close(&nums(&frame, "all_w"), &[-2.0, 3.0, -5.0, 5.0, NA]);
    // After: a = (1+6)/2 = 3.5, b = (10+20)/2 = 15; between fills the row whose x is missing.
    assert_close(&nums(&frame, "xw"), &[-2.5, 2.5, -5.0, 5.0, NA]);
    assert_close(&nums(&frame, "xb"), &[3.5, 3.5, 15.0, 15.0, 15.0]);
    assert_eq!(frame.nrows, 5);
    assert_eq!(frame.source_rows, [1, 3, 4, 5, 6]);
    assert_eq!(frame.drops.rows_read, 6);
    assert_eq!(frame.drops.steps.len(), 1);
    assert_eq!(frame.drops.steps[0].reason, "keep y == 1");
    assert_eq!(frame.drops.steps[0].rows, 1);
}

#[test]
fn within_with_an_explicit_grouping_and_center() {
    let frame = ok(
        "grouped-explicit",
        GROUPED,
        vec![
            let_("xw", call("within", vec![name("x"), name("y")])),
            let_("xc", call("center", vec![name("x")])),
        ],
        &[],
    );
    // y = 1: x = 1, 6, 10, 20 → mean 9.25; y = 0: x = 2 → mean 2.
    assert_close(&nums(&frame, "xw"), &[-8.25, 0.0, -3.25, 0.75, 10.75, NA]);
    // Grand mean of 1, 2, 6, 10, 20 = 7.8.
    assert_close(&nums(&frame, "xc"), &[-6.8, -5.8, -1.8, 2.2, 12.2, NA]);
}

#[test]
fn scale_divides_by_the_n_minus_1_sd() {
    let frame = ok(
        "scale",
        "x\n1\n2\n3\n4\nNA\n",
        vec![let_("z", call("scale", vec![name("x")]))],
        &[],
    );
    // mean 2.5, sum of squares 5, sd = sqrt(5/3)
    let sd = (5.0f64 / 3.0).sqrt();
    assert_close(
        &nums(&frame, "z"),
        &[-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd, NA],
    );
}

#[test]
fn within_without_a_group_is_an_error_at_the_call() {
    let errs = errors(
        "within-nogroup",
        GROUPED,
        vec![let_("xw", at(call("within", vec![name("x")]), 10, 19))],
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].location, Location::Source(Span::new(10, 19)));
    assert!(errs[0].message.contains("no `group` statement"), "{errs:?}");
}

// ---- lag, lead, diff ------------------------------------------------------------------------

/// Two groups, shuffled: p1 has t = 1, 2, 3 with v = 11, 12, 13; p2 has v = 10, 20, 30.
const SERIES: &str = "id,t,v\np2,2,20\np1,3,13\np1,1,11\np2,1,10\np1,2,12\np2,3,30\n";

#[test]
fn lag_and_lead_follow_order_within_group_on_unsorted_rows() {
    let frame = ok(
        "series",
        SERIES,
        vec![
            group("id"),
            order("t"),
            let_("v_lag", call("lag", vec![name("v")])),
            let_("v_lead", call("lead", vec![name("v")])),
            let_("v_lag2", call("lag", vec![name("v"), num(2.0)])),
            let_("v_lagk", call("lag", vec![name("v"), name("k")])),
            let_("v_diff", call("diff", vec![name("v")])),
            let_("id_lag", call("lag", vec![name("id")])),
        ],
        &[("k", 2.0)],
    );
    assert_close(&nums(&frame, "v_lag"), &[10.0, 12.0, NA, NA, 11.0, 20.0]);
    assert_close(&nums(&frame, "v_lead"), &[30.0, NA, 12.0, 20.0, 13.0, NA]);
    assert_close(&nums(&frame, "v_lag2"), &[NA, 11.0, NA, NA, NA, 10.0]);
    assert_close(&nums(&frame, "v_lagk"), &[NA, 11.0, NA, NA, NA, 10.0]);
    assert_close(&nums(&frame, "v_diff"), &[10.0, 1.0, NA, NA, 1.0, 10.0]);
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        strings(&frame, "id_lag"),
        [s("p2"), s("p1"), None, None, s("p1"), s("p2")]
    );
}

#[test]
fn without_order_a_lag_follows_input_order_and_without_group_spans_all_rows() {
    let frame = ok(
        "series-input-order",
        SERIES,
        vec![
            let_("all_lag", call("lag", vec![name("v")])),
            group("id"),
            let_("v_lag", call("lag", vec![name("v")])),
        ],
        &[],
    );
    assert_close(
        &nums(&frame, "all_lag"),
        &[NA, 20.0, 13.0, 11.0, 10.0, 12.0],
    );
    // p1 in input order: 13, 11, 12; p2: 20, 10, 30.
    assert_close(&nums(&frame, "v_lag"), &[NA, NA, 13.0, 20.0, 11.0, 10.0]);
}

#[test]
fn a_bad_step_count_is_an_error_at_the_argument() {
    let errs = errors(
        "series-bad-k",
        SERIES,
        vec![let_(
            "v_lag",
            call("lag", vec![name("v"), at(num(1.5), 20, 23)]),
        )],
    );
    assert_eq!(errs[0].location, Location::Source(Span::new(20, 23)));
    assert!(errs[0].message.contains("whole number"), "{errs:?}");
}

// ---- missing values and logic -------------------------------------------------------------------

const MISSING: &str = "x,s\n1,a\nNA,b\n3,\n0,a\n";

#[test]
fn missing_values_propagate_through_arithmetic_and_comparisons() {
    let frame = ok(
        "missing",
        MISSING,
        vec![
            let_("plus", bin(Add, name("x"), num(1.0))),
            let_("plus_na", bin(Mul, name("x"), na())),
            let_("gt", bin(Gt, name("x"), num(0.5))),
            let_(
                "and_false",
                bin(And, bin(Gt, name("x"), num(0.5)), num(0.0)),
            ),
            let_("or_true", bin(Or, bin(Gt, name("x"), num(0.5)), num(1.0))),
            let_("negated", not(name("x"))),
            let_("miss", call("is_missing", vec![name("x")])),
            let_("comp", call("complete", vec![name("x"), name("s")])),
            let_(
                "pick",
                call("ifelse", vec![name("x"), num(10.0), num(20.0)]),
            ),
            let_("pow", bin(Pow, num(2.0), name("x"))),
        ],
        &[],
    );
    assert_close(&nums(&frame, "plus"), &[2.0, NA, 4.0, 1.0]);
    assert_close(&nums(&frame, "plus_na"), &[NA, NA, NA, NA]);
    assert_close(&nums(&frame, "gt"), &[1.0, NA, 1.0, 0.0]);
    // R: NA & FALSE is FALSE, NA | TRUE is TRUE.
    assert_close(&nums(&frame, "and_false"), &[0.0, 0.0, 0.0, 0.0]);
    assert_close(&nums(&frame, "or_true"), &[1.0, 1.0, 1.0, 1.0]);
    assert_close(&nums(&frame, "negated"), &[0.0, NA, 0.0, 1.0]);
    assert_close(&nums(&frame, "miss"), &[0.0, 1.0, 0.0, 0.0]);
    assert_close(&nums(&frame, "comp"), &[1.0, 0.0, 0.0, 1.0]);
    assert_close(&nums(&frame, "pick"), &[10.0, NA, 10.0, 20.0]);
    assert_close(&nums(&frame, "pow"), &[2.0, NA, 8.0, 1.0]);
    assert!(frame.warnings.is_empty(), "{:?}", frame.warnings);
}

#[test]
fn keep_drops_false_and_missing_conditions_and_counts_each_statement() {
    let frame = ok(
        "keep-counts",
        "x,s\n1,a\nNA,b\n3,\n0,a\n5,b\n",
        vec![
            keep(bin(Gt, name("x"), num(0.5))),
            keep(call("complete", vec![name("x"), name("s")])),
        ],
        &[],
    );
    // x > 0.5: rows 1, 3, 5 pass (row 2 is NA, row 4 is false); then row 3 has no s.
    assert_eq!(frame.source_rows, [1, 5]);
    assert_close(&nums(&frame, "x"), &[1.0, 5.0]);
    let steps: Vec<(&str, usize)> = frame
        .drops
        .steps
        .iter()
        .map(|s| (s.reason.as_str(), s.rows))
        .collect();
    assert_eq!(steps, [("keep x > 0.5", 2), ("keep complete(x, s)", 1)]);
    assert_eq!(frame.drops.rows_dropped(), 3);
}

#[test]
fn a_keep_that_drops_every_row_is_an_error() {
    let errs = errors(
        "keep-all",
        MISSING,
        vec![Statement::Keep {
            condition: bin(Gt, name("x"), num(100.0)),
            span: Span::new(3, 14),
        }],
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].location, Location::Source(Span::new(3, 14)));
    assert_eq!(
        errs[0].message,
        "`keep x > 100` drops every row (4 rows before it)"
    );
}

#[test]
fn log_of_non_positive_numbers_is_missing_with_a_warning() {
    let frame = ok(
        "log",
        "x\n1\n0\n-2\nNA\n",
        vec![let_("lx", at(call("log", vec![name("x")]), 8, 14))],
        &[],
    );
    assert_close(&nums(&frame, "lx"), &[0.0, NA, NA, NA]);
    assert_eq!(frame.warnings.len(), 1);
    let w = &frame.warnings[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.location, Location::Source(Span::new(8, 14)));
    assert_eq!(
        w.message,
        "`log(x)` is not a finite number in 2 rows, the first on line 3 (data row 2); they are \
         missing"
    );
}

// ---- text: comparisons, factor levels, stray cells ------------------------------------------------

const PEOPLE: &str = "sex,age\nMale,30\nFemale,40\n,50\nOther,60\nMale,70\n";

#[test]
fn strings_compare_with_text_columns() {
    let frame = ok(
        "strings",
        PEOPLE,
        vec![
            let_("male", bin(Eq, name("sex"), text("Male"))),
            let_("not_female", bin(Ne, text("Female"), name("sex"))),
            let_("nobody", bin(Eq, name("sex"), text("Unknown"))),
            let_(
                "grp",
                call("ifelse", vec![name("male"), text("m"), name("sex")]),
            ),
        ],
        &[],
    );
    assert_close(&nums(&frame, "male"), &[1.0, 0.0, NA, 0.0, 1.0]);
    assert_close(&nums(&frame, "not_female"), &[1.0, 0.0, NA, 1.0, 1.0]);
    assert_close(&nums(&frame, "nobody"), &[0.0, 0.0, NA, 0.0, 0.0]);
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        strings(&frame, "grp"),
        [s("m"), s("Female"), None, s("Other"), s("m")]
    );
}

#[test]
fn factor_reference_and_levels_reorder_codes() {
    let frame = ok(
        "factor",
        PEOPLE,
        vec![factor("sex", FactorSpec::Reference(lit("Male", 0, 6)))],
        &[],
    );
    let Some(Column::Text { codes, levels }) = frame.column("sex") else {
        panic!()
    };
    // Byte order was Female, Male, Other; Male moves first, the rest keep their order.
    assert_eq!(levels, &["Male", "Female", "Other"]);
    assert_eq!(codes, &[0, 1, MISSING_CODE, 2, 0]);

    let frame = ok(
        "factor-levels",
        PEOPLE,
        vec![factor(
            "sex",
            FactorSpec::Levels(vec![
                lit("Other", 0, 7),
                lit("Male", 9, 15),
                lit("Female", 17, 25),
            ]),
        )],
        &[],
    );
    let Some(Column::Text { codes, levels }) = frame.column("sex") else {
        panic!()
    };
    assert_eq!(levels, &["Other", "Male", "Female"]);
    assert_eq!(codes, &[1, 2, MISSING_CODE, 0, 1]);
}

#[test]
fn an_unknown_factor_level_is_reported_at_its_string() {
    let errs = errors(
        "factor-unknown",
        PEOPLE,
        vec![factor(
            "sex",
            FactorSpec::Levels(vec![
                lit("Male", 20, 26),
                lit("Femal", 28, 35),
                lit("Other", 37, 44),
            ]),
        )],
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].location, Location::Source(Span::new(28, 35)));
    assert_eq!(errs[0].message, "`sex` has no level \"Femal\"");
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean `Female`?"));
}

#[test]
fn a_stray_text_cell_is_named_when_the_column_is_used_as_a_number() {
    let errs = errors(
        "stray",
        "id,score\n1,10\n2,12\n3,n/a\n4,15\n",
        vec![let_(
            "double",
            bin(Mul, at(name("score"), 13, 18), num(2.0)),
        )],
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].message,
        "line 4 (data row 3), column `score`: `n/a` is not a number"
    );
    assert_eq!(errs[0].location, Location::Source(Span::new(13, 18)));
}

#[test]
fn errors_are_collected_and_failed_lets_are_not_reported_twice() {
    let errs = errors(
        "collect",
        PEOPLE,
        vec![
            let_("a", bin(Add, name("sex"), num(1.0))),
            let_("b", bin(Add, name("a"), num(1.0))),
            let_("age", num(1.0)),
            keep(bin(Lt, name("sex"), text("M"))),
        ],
    );
    let messages: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`sex` is a text column, not a number",
            "`let age` would redefine a data column",
            "text can be compared with `==` and `!=` only, not `<`",
        ]
    );
}

/// A call of a function `let` and `keep` do not have is reported when the file is lowered,
/// before any row is read.
#[test]
fn an_unknown_function_is_reported_when_lowered() {
    let errs = errors(
        "unknown-function",
        PEOPLE,
        vec![let_("c", call("scal", vec![name("age")]))],
    );
    let messages: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages, ["`scal` is not a function of `let` and `keep`"]);
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean `scale`?"));
}

// ---- constant_within ------------------------------------------------------------------------------

#[test]
fn constant_within_groups() {
    let frame = ok(
        "constant",
        "g,a,b,t\nx,1,1,u\nx,1,2,u\ny,2,NA,v\ny,NA,3,v\n,5,4,w\n",
        vec![],
        &[],
    );
    assert!(constant_within(&frame, "a", "g"));
    assert!(!constant_within(&frame, "b", "g"));
    assert!(constant_within(&frame, "t", "g"));
    assert!(constant_within(&frame, "a", "t"));
    assert!(!constant_within(&frame, "b", "t"));
    assert!(!constant_within(&frame, "nope", "g"));
}

// ---- real data ------------------------------------------------------------------------------------

/// Rows of a CSV as string maps, read without tandem (the independent side of the checks).
fn plain_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let unquote = |s: &str| s.trim_matches('"').to_string();
    let header: Vec<String> = lines.next().unwrap().split(',').map(unquote).collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(unquote))
                .collect()
        })
        .collect()
}

fn present(s: &str) -> bool {
    !s.is_empty() && s != "NA"
}

#[test]
fn ot_sessions_prepared_as_the_mediation_seed() {
    let path = Path::new("models/data/synthetic/ot_sessions.csv");
    let table = read_csv(path).unwrap();
    let statements = vec![
        group("patient"),
        order("session"),
        let_("ot_change", bin(Sub, name("ot_post"), name("ot_pre"))),
        let_("hrsd_next", call("lead", vec![name("hrsd")])),
        keep(call("complete", vec![name("ot_change"), name("hrsd_next")])),
        let_("neg_w", call("within", vec![name("neg_emotion")])),
        let_("ot_w", call("within", vec![name("ot_change")])),
        let_("hrsd_c", call("center", vec![name("hrsd")])),
    ];
    let frame = lowered_and_prepared(statements, &table, &[]).unwrap();

    // Independently: next session's hrsd within patient, then complete cases.
    let rows = plain_rows(path);
    let mut by_patient: BTreeMap<String, Vec<(f64, usize)>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_patient
            .entry(r["patient"].clone())
            .or_default()
            .push((r["session"].parse().unwrap(), i));
    }
    let mut next = vec![String::new(); rows.len()];
    for sessions in by_patient.values_mut() {
        sessions.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in sessions.windows(2) {
            next[w[0].1] = rows[w[1].1]["hrsd"].clone();
        }
    }
    let kept: Vec<usize> = (0..rows.len())
        .filter(|&i| {
            present(&rows[i]["ot_pre"]) && present(&rows[i]["ot_post"]) && present(&next[i])
        })
        .collect();
    let patients: HashSet<&str> = kept.iter().map(|&i| rows[i]["patient"].as_str()).collect();
    assert_eq!(kept.len(), 434);
    assert_eq!(patients.len(), 62);

    assert_eq!(frame.nrows, kept.len());
    assert_eq!(
        frame.source_rows,
        kept.iter().map(|i| i + 1).collect::<Vec<_>>()
    );
    let frame_patients: HashSet<Option<String>> = strings(&frame, "patient").into_iter().collect();
    assert_eq!(frame_patients.len(), 62);
    assert_eq!(frame.drops.rows_read, 992);
    assert_eq!(frame.drops.rows_dropped(), 992 - 434);
    let hrsd_next = nums(&frame, "hrsd_next");
    for (k, &i) in kept.iter().enumerate() {
        assert_eq!(hrsd_next[k], next[i].parse::<f64>().unwrap());
    }
    // Centred over the kept rows: the means are zero, overall and per patient.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&nums(&frame, "hrsd_c")).abs() < 1e-9);
    assert!(mean(&nums(&frame, "ot_w")).abs() < 1e-9);
}

#[test]
fn facial_lags_within_session_drop_span_rows_per_session() {
    let path = Path::new("models/data/synthetic/facial.csv");
    let rows = plain_rows(path);
    let mut per_session: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *per_session.entry(r["session"].as_str()).or_default() += 1;
        assert!(present(&r["therapist_expr"]) && present(&r["patient_expr"]));
    }
    for span in [1.0, 5.0] {
        let table = read_csv(path).unwrap();
        let statements = vec![
            group("session"),
            order("second"),
            let_(
                "t_lag",
                call("lag", vec![name("therapist_expr"), name("span")]),
            ),
            let_(
                "p_lag",
                call("lag", vec![name("patient_expr"), name("span")]),
            ),
            keep(call("complete", vec![name("t_lag"), name("p_lag")])),
        ];
        let frame = lowered_and_prepared(statements, &table, &[("span".into(), span)]).unwrap();
        // No missing values: every session loses exactly its first `span` seconds.
        let expected: usize = per_session
            .values()
            .map(|&n| n.saturating_sub(span as usize))
            .sum();
        assert_eq!(per_session.len(), 155);
        assert_eq!(frame.nrows, expected);
        assert_eq!(frame.nrows, 93000 - 155 * span as usize);
        assert_eq!(frame.drops.steps[0].reason, "keep complete(t_lag, p_lag)");
    }
}

#[test]
fn ties_keep_input_order_and_rows_without_group_get_no_lag() {
    let frame = ok(
        "ties",
        "id,t,v\na,1,1\na,1,2\n,1,5\na,2,3\nb,NA,4\nb,3,6\n",
        vec![
            // The grouping column may be a `let` defined after the `group` statement.
            group("gg"),
            order("t"),
            let_("gg", name("id")),
            let_("v_lag", call("lag", vec![name("v")])),
            let_("v_w", call("within", vec![name("v")])),
        ],
        &[],
    );
    // a: (t1, 1), (t1, 2), (t2, 3) in input order; the row without id has no group; b's row
    // with a missing order value is nobody's neighbour.
    assert_close(&nums(&frame, "v_lag"), &[NA, 1.0, NA, 2.0, NA, NA]);
    assert_close(&nums(&frame, "v_w"), &[-1.0, 0.0, NA, 1.0, -1.0, 1.0]);
}

#[test]
fn an_unknown_group_column_is_reported_once_at_the_group_statement() {
    let errs = errors(
        "unknown-group",
        SERIES,
        vec![
            Statement::Group {
                name: Ident {
                    name: "idd".into(),
                    span: Span::new(6, 9),
                },
                span: Span::new(0, 9),
            },
            let_("a", call("lag", vec![name("v")])),
            let_("b", call("lead", vec![name("v")])),
        ],
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].location, Location::Source(Span::new(6, 9)));
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean `id`?"));
}

/// The wording of preparation errors and warnings, reviewed as a whole.
#[test]
fn diagnostic_wording() {
    let show = |ds: &[Diagnostic]| -> String {
        ds.iter()
            .map(|d| {
                let mut line = format!("{:?}: {}", d.severity, d.message);
                if let Some(e) = &d.expected {
                    line += &format!("\n    expected: {e}");
                }
                if let Some(h) = &d.hint {
                    line += &format!("\n    hint: {h}");
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = String::new();
    let cases: Vec<(&str, &str, Vec<Statement>)> = vec![
        (
            "stray-cell",
            "id,score\n1,10\n2,n/a\n3,4\n",
            vec![let_("z", call("center", vec![name("score")]))],
        ),
        (
            "text-arith",
            PEOPLE,
            vec![let_("z", bin(Div, name("age"), name("sex")))],
        ),
        (
            "text-vs-number",
            PEOPLE,
            vec![keep(bin(Eq, name("sex"), num(1.0)))],
        ),
        (
            "unknown-name",
            PEOPLE,
            vec![let_("z", bin(Add, name("agee"), num(1.0)))],
        ),
        (
            "arity",
            PEOPLE,
            vec![let_("z", call("ifelse", vec![name("age"), num(1.0)]))],
        ),
        (
            "within-nogroup",
            PEOPLE,
            vec![let_("z", call("between", vec![name("age")]))],
        ),
        (
            // A numeric column becomes categorical; its levels are its values.
            "factor-numeric",
            PEOPLE,
            vec![factor("age", FactorSpec::Reference(lit("35", 0, 4)))],
        ),
        (
            "factor-incomplete",
            PEOPLE,
            vec![factor(
                "sex",
                FactorSpec::Levels(vec![lit("Male", 0, 6), lit("Male", 8, 14)]),
            )],
        ),
        ("keep-text", PEOPLE, vec![keep(name("sex"))]),
        (
            "warnings",
            "x\n0\n4\n",
            vec![
                let_("r", bin(Div, num(1.0), name("x"))),
                let_("s", call("scale", vec![bin(Mul, name("x"), num(0.0))])),
                let_("t", call("sqrt", vec![bin(Sub, name("x"), num(5.0))])),
                keep(bin(Gt, name("x"), num(10.0))),
            ],
        ),
    ];
    for (label, csv, statements) in cases {
        out += &format!("## {label}\n{}\n", show(&errors(label, csv, statements)));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn two_text_columns_compare_by_their_strings() {
    // Different level sets: codes differ, strings decide.
    let frame = ok(
        "text-text",
        "a,b,x\nu,u,1\nv,w,NA\n,u,0\nw,w,1\n",
        vec![
            let_("same", bin(Eq, name("a"), name("b"))),
            let_(
                "pick",
                call("ifelse", vec![name("x"), name("a"), text("none")]),
            ),
        ],
        &[],
    );
    assert_close(&nums(&frame, "same"), &[1.0, 0.0, NA, 1.0]);
    let s = |x: &str| Some(x.to_string());
    // Condition missing → missing; a missing `a` picked → missing.
    assert_eq!(strings(&frame, "pick"), [s("u"), None, s("none"), s("w")]);
    let Some(Column::Text { levels, .. }) = frame.column("pick") else {
        panic!()
    };
    // Only picked strings are levels ("v" was in `a` but never picked).
    assert_eq!(levels, &["none", "u", "w"]);
}
