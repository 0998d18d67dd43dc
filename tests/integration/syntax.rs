//! The model language's syntax: fixtures parse to the expected ASTs, mistakes render to the
//! expected messages, and parse → format → parse is the identity (spans aside).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem::diagnostics::{render, SourceFile};
use tandem::syntax::ast::{BinaryOp, Expr, ExprKind, ModelFile, Statement, UnaryOp};
use tandem::syntax::{format, parse, parse_bytes};

use crate::fuzz;

/// The AST as JSON with every span written compactly as `"start..end"`.
fn ast_json(file: &ModelFile) -> Value {
    fn compact(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                if map.len() == 2 && map.contains_key("start") && map.contains_key("end") {
                    return Value::String(format!("{}..{}", map["start"], map["end"]));
                }
                Value::Object(map.into_iter().map(|(k, v)| (k, compact(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(compact).collect()),
            other => other,
        }
    }
    compact(serde_json::to_value(file).unwrap())
}

/// The AST as JSON with every span removed: equal values mean equal trees.
fn without_spans(file: &ModelFile) -> Value {
    fn strip(value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| k != "span")
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
            other => other,
        }
    }
    strip(serde_json::to_value(file).unwrap())
}

fn rendered_errors(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let diagnostics = match parse_bytes(&bytes) {
        Ok(file) => panic!("{} parsed but should not: {file:?}", path.display()),
        Err(diagnostics) => diagnostics,
    };
    let text = String::from_utf8_lossy(&bytes);
    let name = PathBuf::from(path.file_name().unwrap());
    render(
        &diagnostics,
        Some(&SourceFile {
            path: &name,
            text: &text,
        }),
    )
}

fn assert_round_trip(path: &Path, text: &str) {
    let first = parse(text).unwrap_or_else(|d| panic!("{}: {d:#?}", path.display()));
    let formatted = format(&first);
    let second = parse(&formatted).unwrap_or_else(|d| {
        panic!(
            "{}: formatted text does not parse: {d:#?}\n{formatted}",
            path.display()
        )
    });
    assert_eq!(
        without_spans(&first),
        without_spans(&second),
        "{}: the round trip changed the AST; formatted:\n{formatted}",
        path.display()
    );
    // Canonical text is a fixed point.
    assert_eq!(format(&second), formatted, "{}", path.display());
}

#[test]
fn fixtures_parse_to_the_expected_ast() {
    insta::glob!("../fixtures/syntax", "*.tandem", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let file = parse(&text).unwrap_or_else(|d| panic!("{}: {d:#?}", path.display()));
        insta::assert_snapshot!(serde_json::to_string_pretty(&ast_json(&file)).unwrap());
    });
}

#[test]
fn fixtures_format_canonically() {
    insta::glob!("../fixtures/syntax", "*.tandem", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let file = parse(&text).unwrap();
        insta::assert_snapshot!(format(&file));
    });
}

#[test]
fn mistakes_render_to_located_messages() {
    insta::glob!("../fixtures/syntax_errors", "*.tandem", |path| {
        insta::assert_snapshot!(rendered_errors(path));
    });
}

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

#[test]
fn every_fixture_and_library_model_round_trips() {
    let mut files = Vec::new();
    model_files(Path::new("models"), &mut files);
    let library = files.len();
    assert!(library >= 18, "only {library} model files found");
    model_files(Path::new("tests/fixtures/syntax"), &mut files);
    assert!(files.len() > library + 15);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        assert_round_trip(&path, &text);
    }
}

#[test]
fn empty_and_comment_only_files_have_no_statements() {
    assert_eq!(parse("").unwrap().statements, vec![]);
    assert_eq!(parse("# only\n\n  # comments").unwrap().statements, vec![]);
    assert_eq!(parse_bytes(b"").unwrap().statements, vec![]);
}

#[test]
fn invalid_utf8_is_located_at_its_byte() {
    let errors = parse_bytes(b"y ~ 1 + x\n\xffz").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].location,
        tandem::diagnostics::Location::Source(tandem::syntax::ast::Span::new(10, 11))
    );
}

#[test]
fn several_mistakes_are_all_reported() {
    let errors = parse("foo bar\ny = x\nz ~ 1\nqux\n").unwrap_err();
    let messages: Vec<_> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`foo` does not start a statement",
            "`=` used instead of `~`",
            "`qux` does not start a statement"
        ]
    );
}

// ------------------------------------------------------------------------------------------------
// Expression precedence, checked against trees built by hand.

fn let_value(source: &str) -> Expr {
    match parse(&format!("let v = {source}"))
        .unwrap()
        .statements
        .remove(0)
    {
        Statement::Let { value, .. } => value,
        other => panic!("not a let: {other:?}"),
    }
}

/// A tree written as a small s-expression: names, numbers, `(op a b)`, `(neg a)`, `(not a)`.
fn shape(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Number(v) => format!("{v}"),
        ExprKind::Name(n) => n.clone(),
        ExprKind::String(s) => format!("{s:?}"),
        ExprKind::Missing => "NA".into(),
        ExprKind::Unary { op, operand } => {
            let op = if *op == UnaryOp::Neg { "neg" } else { "not" };
            format!("({op} {})", shape(operand))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.symbol(), shape(lhs), shape(rhs))
        }
        ExprKind::Call { function, args } => {
            let args: Vec<_> = args.iter().map(|a| shape(&a.value)).collect();
            format!("({} {})", function.name, args.join(" "))
        }
    }
}

#[test]
fn power_binds_tighter_than_unary_minus() {
    assert_eq!(shape(&let_value("-x^2")), "(neg (^ x 2))");
    assert_eq!(shape(&let_value("(-x)^2")), "(^ (neg x) 2)");
    assert_eq!(shape(&let_value("2^-1")), "(^ 2 (neg 1))");
}

#[test]
fn power_is_right_associative_and_the_rest_left() {
    assert_eq!(shape(&let_value("2^3^2")), "(^ 2 (^ 3 2))");
    assert_eq!(shape(&let_value("a - b - c")), "(- (- a b) c)");
    assert_eq!(shape(&let_value("a / b * c")), "(* (/ a b) c)");
    assert_eq!(shape(&let_value("a - b * c")), "(- a (* b c))");
}

#[test]
fn logic_binds_looser_than_comparison() {
    assert_eq!(shape(&let_value("!a & b | c")), "(| (& (not a) b) c)");
    assert_eq!(shape(&let_value("a | b & c")), "(| a (& b c))");
    assert_eq!(shape(&let_value("!x == 1")), "(not (== x 1))");
    assert_eq!(
        shape(&let_value("x + 1 < y * 2 & !is_missing(z)")),
        "(& (< (+ x 1) (* y 2)) (not (is_missing z)))"
    );
}

#[test]
fn comparisons_do_not_chain() {
    let errors = parse("keep a < b < c").unwrap_err();
    assert_eq!(errors[0].message, "comparisons cannot be chained");
}

#[test]
fn format_parenthesizes_exactly_where_needed() {
    for (source, canonical) in [
        ("-x^2", "-x^2"),
        ("(-x)^2", "(-x)^2"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("(a ^ b) ^ c", "(a^b)^c"),
        ("a ^ (b ^ c)", "a^b^c"),
        ("!(a & b)", "!(a & b)"),
        ("(!a) & b", "!a & b"),
        ("(a < b) == c", "(a < b) == c"),
        ("-(-x)", "-(-x)"),
        ("a * -b", "a * -b"),
        ("f(x = (1), y)", "f(x = 1, y)"),
        ("\"a\\\"b\"", "\"a\\\"b\""),
        ("1e-7 + 0.5 + 100000", "1e-7 + 0.5 + 100000"),
    ] {
        let value = let_value(source);
        assert_eq!(tandem::syntax::format_expr(&value), canonical, "{source}");
    }
    // And the formatted text reads back as the same tree.
    let value = let_value("((a | b) & !c) == d");
    assert_eq!(
        shape(&let_value(&tandem::syntax::format_expr(&value))),
        shape(&value)
    );
    assert!(matches!(
        let_value("a | b").kind,
        ExprKind::Binary {
            op: BinaryOp::Or,
            ..
        }
    ));
}

#[test]
fn pathological_nesting_is_an_error_not_a_crash() {
    for source in [
        format!("let x = {}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("let x = {}1", "-".repeat(100_000)),
        format!("let x = {}1", "!".repeat(100_000)),
        format!("let x = {}2", "2^".repeat(50_000)),
        format!("let x = {}", "f(".repeat(50_000)),
        format!("y ~ {}", "(".repeat(100_000)),
    ] {
        let errors = parse(&source).unwrap_err();
        assert!(!errors.is_empty());
    }
}

#[test]
fn long_flat_input_is_fine() {
    let source = format!("let x = 1{}", " + 1".repeat(100));
    let file = parse(&source).unwrap();
    assert_eq!(file.statements.len(), 1);
    let source = format!("let x = {}1{}", "(".repeat(100), ")".repeat(100));
    parse(&source).unwrap();
    let source = format!("let x = 1{}", " + 1".repeat(100_000));
    parse(&source).unwrap_err();
    let terms: Vec<String> = (0..5_000).map(|i| format!("x{i}")).collect();
    let source = format!("y ~ 1 + {}", terms.join(" + "));
    assert_round_trip(Path::new("generated"), &source);
}

#[test]
fn render_data_file_and_unlocated_diagnostics() {
    use tandem::diagnostics::{Diagnostic, Location};
    let diagnostics = [
        Diagnostic::error(
            "`score` is not a number",
            Location::Data {
                path: "data/x.csv".into(),
                row: Some(12),
                line: Some(14),
                column: Some("score".into()),
            },
        )
        .with_expected("a number or an empty cell"),
        Diagnostic::error("cannot read the file", Location::File("data/y.csv".into())),
        Diagnostic::warning("the optimizer did not converge", Location::None)
            .with_hint("try `estimate ml`"),
        Diagnostic::at("a spanned error", tandem::syntax::ast::Span::new(4, 9)),
    ];
    insta::assert_snapshot!(render(&diagnostics, None), @r"
    error: `score` is not a number
     --> data/x.csv, line 14 (data row 12), column `score`
      = expected: a number or an empty cell

    error: cannot read the file
     --> data/y.csv

    warning: the optimizer did not converge
      = hint: try `estimate ml`

    error: a spanned error
     --> model file, bytes 4..9
    ");
}

#[test]
fn render_clips_a_multiline_span_and_counts_columns_in_chars() {
    use tandem::diagnostics::Diagnostic;
    let text = "# é\nlet ü = (a +\n  b)\n";
    let start = text.find('(').unwrap();
    let diagnostic = Diagnostic::at(
        "spans lines",
        tandem::syntax::ast::Span::new(start, text.len() - 1),
    );
    let path = PathBuf::from("m.tandem");
    let rendered = render(&[diagnostic], Some(&SourceFile { path: &path, text }));
    insta::assert_snapshot!(rendered, @r"
    error: spans lines
     --> m.tandem:2:9
      |
    2 | let ü = (a +
      |         ^^^^
    ");
}

/// A seeded mutation fuzzer over the model language (issue 14): every library model file,
/// mutated by byte flips, deletions, duplications, splices and tokens of the language, goes
/// through parse, check against its own data, prepare, the design pass and (for what parses)
/// format and render, which must return values, never panic. A bounded run in the suite
/// (`TANDEM_FUZZ_ITERATIONS` runs longer); a failing input is written to
/// `target/fuzz-failures/` to be kept as a fixture (`tests/fixtures/syntax_errors/` or
/// `tests/fixtures/check_errors/`).
#[test]
fn mutated_model_files_never_panic() {
    use rand::{Rng, SeedableRng};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    const TOKENS: &[&str] = &[
        "~",
        "+",
        "-",
        "*",
        ":",
        "/",
        "|",
        "||",
        "(",
        ")",
        "1",
        "0",
        "-0",
        ":=",
        "=",
        ",",
        "\"",
        "`",
        "#",
        "\n",
        " ",
        "é",
        "\u{0}",
        "lag(",
        "center(",
        "keep ",
        "let ",
        "vary ",
        "interval ",
        "residual by ",
        "data ",
        "factor ",
        "group ",
        "order ",
        "estimate ml\n",
        "1e308",
        "1e999",
        "-1",
        "99999999999999999999",
        "NaN",
        "(1 |",
        "x:x",
        "Days:Days",
    ];
    let iterations: usize = std::env::var("TANDEM_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut corpus: Vec<(PathBuf, Vec<u8>, Option<tandem::data::DataTable>)> = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("models")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "tandem") {
                let bytes = std::fs::read(&path).unwrap();
                let table = parse_bytes(&bytes).ok().and_then(|ast| {
                    ast.statements.iter().find_map(|s| match s {
                        Statement::Data { path: data, .. } => {
                            tandem::data::read_csv(&path.parent().unwrap().join(&data.value)).ok()
                        }
                        _ => None,
                    })
                });
                corpus.push((path, bytes, table));
            }
        }
    }
    corpus.sort_by(|a, b| a.0.cmp(&b.0));
    // Big data files (the facial design) make each design pass slow; their models still parse.
    for entry in &mut corpus {
        if entry.2.as_ref().is_some_and(|t| t.nrows > 20_000) {
            entry.2 = None;
        }
    }
    let donors: Vec<&[u8]> = corpus.iter().map(|(_, b, _)| b.as_slice()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let mut failures = Vec::new();
    for i in 0..iterations {
        let (path, original, table) = &corpus[rng.random_range(0..corpus.len())];
        let mut bytes = original.clone();
        let tokens: Vec<&[u8]> = TOKENS.iter().map(|t| t.as_bytes()).collect();
        fuzz::mutate(&mut bytes, &mut rng, 3, 20, &donors, &tokens);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let source = SourceFile {
                path: Path::new("fuzz.tandem"),
                text: &text,
            };
            let ast = match parse_bytes(&bytes) {
                Ok(ast) => ast,
                Err(d) => {
                    render(&d, Some(&source));
                    return;
                }
            };
            let _ = parse(&format(&ast));
            let Some(table) = table else {
                return;
            };
            let schema = tandem::check::Schema::from_table(table);
            let checked = match tandem::check::check(&ast, &schema) {
                Ok(c) => c,
                Err(d) => {
                    render(&d, Some(&source));
                    return;
                }
            };
            let Some(vary) = checked
                .spec
                .vary
                .as_ref()
                .map(|v| (v.name.clone(), v.values[0]))
            else {
                if let Ok(frame) = tandem::prepare::prepare(&checked.preparation, table, &[]) {
                    let _ = tandem::design::build(&checked.spec, &frame);
                }
                return;
            };
            if let Ok(frame) = tandem::prepare::prepare(&checked.preparation, table, &[vary]) {
                let _ = tandem::design::build(&checked.spec, &frame);
            }
        }));
        if outcome.is_err() {
            let name = format!("{}-{i}.tandem", path.file_stem().unwrap().to_string_lossy());
            let kept = fuzz::keep_failure(&name, &bytes);
            failures.push(format!("{kept} (from {})", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {iterations} mutated files panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
