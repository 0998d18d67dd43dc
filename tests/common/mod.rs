//! Test support for the engine: a tiny CSV → `AnalysisFrame` loader and a tiny lme4-formula →
//! `ModelSpec` builder, so engine tests do not depend on the checker or the preparation stage.
//! Not a product feature: it understands exactly the formulas the tests use.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use tandem::data::{Column, MISSING_CODE};
use tandem::model::{
    Coefficient, EquationSpec, FixedTermSpec, ModelSpec, OutcomeKind, RandomEffectSpec,
    RandomTermSpec, ResidualSpec,
};
use tandem::prepare::{AnalysisFrame, DropReport};
use tandem::syntax::ast::{Method, Span};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn reference(file: &str, key: &str) -> Value {
    reference_file(file)[key].clone()
}

/// A whole reference file of `tests/reference`.
pub fn reference_file(file: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/reference").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON number (NaN for null or anything else).
pub fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Numeric columns where every non-missing cell parses; others text with levels in byte order.
pub fn load_csv(relative: &str) -> AnalysisFrame {
    let path = root().join("models/data").join(relative);
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let names: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for record in reader.records() {
        let record = record.unwrap();
        for (i, cell) in record.iter().enumerate() {
            cells[i].push(cell.to_string());
        }
    }
    let nrows = cells.first().map_or(0, Vec::len);
    let missing = |s: &str| s.is_empty() || s == "NA";
    let columns = cells
        .into_iter()
        .map(|col| {
            if col.iter().all(|s| missing(s) || s.parse::<f64>().is_ok()) {
                Column::Numeric(
                    col.iter()
                        .map(|s| {
                            if missing(s) {
                                f64::NAN
                            } else {
                                s.parse().unwrap()
                            }
                        })
                        .collect(),
                )
            } else {
                let mut levels: Vec<String> = col.iter().filter(|s| !missing(s)).cloned().collect();
                levels.sort();
                levels.dedup();
                let codes = col
                    .iter()
                    .map(|s| {
                        if missing(s) {
                            MISSING_CODE
                        } else {
                            levels.binary_search(s).unwrap() as u32
                        }
                    })
                    .collect();
                Column::Text { codes, levels }
            }
        })
        .collect();
    AnalysisFrame {
        warnings: Vec::new(),
        names,
        columns,
        nrows,
        source_rows: (1..=nrows).collect(),
        drops: DropReport {
            rows_read: nrows,
            steps: Vec::new(),
        },
    }
}

/// `factor column reference "level"`: move `level` to the front of the level order.
pub fn set_reference(frame: &mut AnalysisFrame, column: &str, level: &str) {
    let i = frame.names.iter().position(|n| n == column).unwrap();
    if let Column::Text { codes, levels } = &mut frame.columns[i] {
        let r = levels.iter().position(|l| l == level).unwrap() as u32;
        let old = levels.clone();
        levels.remove(r as usize);
        levels.insert(0, old[r as usize].clone());
        for c in codes.iter_mut() {
            if *c == MISSING_CODE {
                continue;
            }
            *c = if *c == r {
                0
            } else if *c < r {
                *c + 1
            } else {
                *c
            };
        }
    }
}

pub fn add_numeric(frame: &mut AnalysisFrame, name: &str, values: Vec<f64>) {
    frame.names.push(name.to_string());
    frame.columns.push(Column::Numeric(values));
}

pub fn numeric<'a>(frame: &'a AnalysisFrame, name: &str) -> &'a [f64] {
    match frame.column(name).unwrap() {
        Column::Numeric(v) => v,
        _ => panic!("{name} is not numeric"),
    }
}

/// Keep the rows where `keep` is true.
pub fn filter_rows(frame: &AnalysisFrame, keep: &[bool]) -> AnalysisFrame {
    let pick = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| *x)
            .collect()
    };
    let columns = frame
        .columns
        .iter()
        .map(|c| match c {
            Column::Numeric(v) => Column::Numeric(pick(v)),
            Column::Text { codes, levels } => Column::Text {
                codes: codes
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| *x)
                    .collect(),
                levels: levels.clone(),
            },
        })
        .collect();
    let nrows = keep.iter().filter(|k| **k).count();
    AnalysisFrame {
        warnings: Vec::new(),
        names: frame.names.clone(),
        columns,
        nrows,
        source_rows: frame
            .source_rows
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| *x)
            .collect(),
        drops: frame.drops.clone(),
    }
}

fn split_top(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if ch == sep && depth == 0 {
            out.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(ch);
        }
    }
    out.push(cur.trim().to_string());
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

fn strip_parens(s: &str) -> &str {
    let s = s.trim();
    if s.starts_with('(') && s.ends_with(')') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Fixed part of one `+` piece: a variable, `a:b`, `a*b`, `(a + b)*c`.
fn expand_fixed(piece: &str) -> Vec<Vec<String>> {
    let factors: Vec<Vec<Vec<String>>> = split_top(piece, '*')
        .iter()
        .map(|f| {
            split_top(strip_parens(f), '+')
                .iter()
                .map(|t| t.split(':').map(|v| v.trim().to_string()).collect())
                .collect()
        })
        .collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for mask in 1u32..(1 << factors.len()) {
        let mut combos: Vec<Vec<String>> = vec![Vec::new()];
        for (i, f) in factors.iter().enumerate() {
            if mask & (1 << i) == 0 {
                continue;
            }
            combos = combos
                .iter()
                .flat_map(|c| {
                    f.iter().map(move |t| {
                        let mut c = c.clone();
                        c.extend(t.iter().cloned());
                        c
                    })
                })
                .collect();
        }
        out.extend(combos);
    }
    out
}

/// One lme4 formula into equation `equation`'s spec and its random terms.
fn parse_equation(formula: &str, equation: usize) -> (EquationSpec, Vec<RandomTermSpec>) {
    let (lhs, rhs) = formula.split_once('~').unwrap();
    let mut intercept = true;
    let mut fixed: Vec<Vec<String>> = Vec::new();
    let mut random = Vec::new();
    for piece in split_top(rhs, '+') {
        if piece == "1" {
            continue;
        }
        if piece == "0" || piece == "-1" {
            intercept = false;
            continue;
        }
        if piece.starts_with('(') && piece.contains('|') {
            random.extend(parse_random(strip_parens(&piece), equation));
            continue;
        }
        for t in expand_fixed(&piece) {
            if !fixed.contains(&t) {
                fixed.push(t);
            }
        }
    }
    fixed.sort_by_key(Vec::len);
    let eq = EquationSpec {
        outcome: lhs.trim().to_string(),
        outcome_kind: OutcomeKind::Variable,
        intercept: intercept.then_some(Coefficient::Free { label: None }),
        terms: fixed
            .into_iter()
            .map(|vars| FixedTermSpec {
                name: vars.join(":"),
                variables: vars,
                coefficient: Coefficient::Free { label: None },
                kind: tandem::model::TermKind::Variables,
                span: Span::default(),
            })
            .collect(),
        span: Span::default(),
    };
    (eq, random)
}

fn parse_random(inner: &str, equation: usize) -> Vec<RandomTermSpec> {
    let (correlated, (lhs, group)) = match inner.split_once("||") {
        Some(p) => (false, p),
        None => (true, inner.split_once('|').unwrap()),
    };
    let mut intercept = true;
    let mut slopes: Vec<Vec<String>> = Vec::new();
    for piece in split_top(lhs, '+') {
        match piece.as_str() {
            "1" => {}
            "0" | "-1" => intercept = false,
            v => slopes.push(v.split(':').map(String::from).collect()),
        }
    }
    let mut effects = Vec::new();
    if intercept {
        effects.push(RandomEffectSpec {
            equation,
            variables: Vec::new(),
            label: None,
            name: "(Intercept)".into(),
        });
    }
    for s in slopes {
        effects.push(RandomEffectSpec {
            equation,
            name: s.join(":"),
            variables: s,
            label: None,
        });
    }
    // `g1/g2` is `g1` and `g2:g1`; `g1:g2` is one factor.
    let parts: Vec<&str> = group.trim().split('/').map(str::trim).collect();
    let mut groupings: Vec<Vec<String>> = Vec::new();
    for i in 0..parts.len() {
        let mut g: Vec<String> = parts[..=i].iter().rev().map(|s| s.to_string()).collect();
        g = g
            .iter()
            .flat_map(|s| s.split(':').map(String::from))
            .collect();
        groupings.push(g);
    }
    let mut out = Vec::new();
    for g in groupings {
        let name = g.join(":");
        if correlated {
            out.push(RandomTermSpec {
                grouping: g,
                name,
                effects: effects.clone(),
                correlated: true,
                span: Span::default(),
            });
        } else {
            for e in &effects {
                out.push(RandomTermSpec {
                    grouping: g.clone(),
                    name: name.clone(),
                    effects: vec![e.clone()],
                    correlated: false,
                    span: Span::default(),
                });
            }
        }
    }
    out
}

/// A one-equation spec from an lme4 formula.
pub fn spec(formula: &str, method: Method) -> ModelSpec {
    spec_with_residual(formula, method, None)
}

pub fn spec_with_residual(formula: &str, method: Method, by: Option<&str>) -> ModelSpec {
    let (eq, random) = parse_equation(formula, 0);
    ModelSpec {
        equations: vec![eq],
        random,
        residual: vec![ResidualSpec {
            equation: 0,
            by: by.map(String::from),
            correlated_within: None,
        }],
        definitions: Vec::new(),
        method,
        interval: None,
        vary: None,
    }
}

/// Several equations fitted jointly; random terms of different equations on the same grouping
/// are merged into one correlated term (the IR's rule).
pub fn joint_spec(formulas: &[&str], method: Method) -> ModelSpec {
    let mut equations = Vec::new();
    let mut random: Vec<RandomTermSpec> = Vec::new();
    for (e, f) in formulas.iter().enumerate() {
        let (eq, terms) = parse_equation(f, e);
        equations.push(eq);
        for t in terms {
            match random
                .iter_mut()
                .find(|r| r.name == t.name && r.correlated && t.correlated)
            {
                Some(r) if r.effects.iter().all(|x| x.equation != e) => r.effects.extend(t.effects),
                _ => random.push(t),
            }
        }
    }
    let residual = (0..equations.len())
        .map(|equation| ResidualSpec {
            equation,
            by: None,
            correlated_within: None,
        })
        .collect();
    ModelSpec {
        equations,
        random,
        residual,
        definitions: Vec::new(),
        method,
        interval: None,
        vary: None,
    }
}

/// `f` run on a thread pool of its own with `threads` threads, for the tests that the digits do
/// not depend on the thread count.
pub fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// A model file (path relative to the repository) fitted through the typed library API
/// (`fit_model_file`, no rendering), with `method` and `--vary` values if given: the first
/// fitted value's report as the JSON contract (docs/json.md) has it. Every value must converge.
pub fn fitted_json(relative: &str, method: Option<Method>, vary: &[&str]) -> Value {
    let options = tandem::FitOptions {
        method,
        vary: vary.iter().map(|s| s.to_string()).collect(),
        ..tandem::FitOptions::default()
    };
    let path = root().join(relative);
    let fitted = tandem::pipeline::fit_model_file(&path, &options).unwrap_or_else(|errors| {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let source = tandem::diagnostics::SourceFile {
            path: &path,
            text: &text,
        };
        panic!(
            "{relative} failed:\n{}",
            tandem::diagnostics::render(&errors, Some(&source))
        )
    });
    let report = &fitted.fits[0].report;
    // As the command line's exit status does: a report that did not converge is a failure.
    assert!(
        fitted.fits.iter().all(|f| f.report.fit.converged),
        "{relative}: the optimizer did not converge:\n{:?}",
        report.fit.warnings
    );
    serde_json::to_value(report).unwrap()
}

/// Asserts |ours − theirs| ≤ relative·max(|theirs|, 1e-8), naming the quantity and both numbers.
pub fn assert_close(what: &str, ours: f64, theirs: f64, relative: f64) {
    let scale = theirs.abs().max(1e-8);
    assert!(
        (ours - theirs).abs() <= relative * scale,
        "{what}: tandem {ours} vs R {theirs} (relative difference {:.2e} > {relative:.0e})",
        (ours - theirs).abs() / scale
    );
}

/// |a − b| ≤ tol·max(|b|, floor): a relative tolerance that does not explode at zero.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-8)
}

#[allow(unused)]
pub const NO_CODE: u32 = MISSING_CODE;

/// A model file fitted through the typed library API with `options` (`fit_model_file`, no
/// rendering): each `vary` value's report, in order. Errors fail the test, shown as the command
/// line shows them; unless `options.report_anyway`, every report must have converged, as the
/// command's exit status requires.
pub fn fitted_reports(
    path: &std::path::Path,
    options: &tandem::FitOptions,
) -> Vec<tandem::FitReport> {
    let fitted = tandem::pipeline::fit_model_file(path, options).unwrap_or_else(|errors| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let source = tandem::diagnostics::SourceFile { path, text: &text };
        panic!(
            "{} failed:\n{}",
            path.display(),
            tandem::diagnostics::render(&errors, Some(&source))
        )
    });
    for value in &fitted.fits {
        assert!(
            options.report_anyway || value.report.fit.converged,
            "{}: the optimizer did not converge:\n{:?}",
            path.display(),
            value.report.fit.warnings
        );
    }
    fitted.fits.into_iter().map(|value| value.report).collect()
}

/// The first report of `fitted_reports` as the JSON contract (docs/json.md) has it.
pub fn fitted_value(path: &std::path::Path, options: &tandem::FitOptions) -> Value {
    serde_json::to_value(&fitted_reports(path, options)[0]).unwrap()
}

/// The errors of a model file that cannot be fitted, through the typed library API.
pub fn fit_errors(path: &std::path::Path, options: &tandem::FitOptions) -> Vec<tandem::Diagnostic> {
    match tandem::pipeline::fit_model_file(path, options) {
        Ok(_) => panic!("{} fitted, but errors were expected", path.display()),
        Err(errors) => errors,
    }
}
