//! The layering ARCHITECTURE.md writes down, read from the source (as rust-analyzer's `tidy`
//! tests do): a stage must not import a stage it must not know. The test fails on any such
//! import, naming the file, line and import; there is no list of exceptions.

use std::path::{Path, PathBuf};

/// (stage, stages it must not import). `cli` is the edge: no stage imports it.
const RULES: &[(&str, &[&str])] = &[
    (
        "syntax",
        &[
            "check", "prepare", "design", "estimate", "infer", "pipeline", "report", "data", "cli",
        ],
    ),
    (
        "functions",
        &[
            "syntax", "model", "check", "prepare", "design", "estimate", "infer", "pipeline",
            "report", "data", "cli",
        ],
    ),
    (
        "model",
        &[
            "syntax", "check", "prepare", "design", "estimate", "infer", "pipeline", "report",
            "data", "cli",
        ],
    ),
    (
        "parameters",
        &[
            "syntax", "check", "prepare", "design", "estimate", "infer", "pipeline", "report",
            "data", "cli",
        ],
    ),
    (
        "check",
        &["design", "estimate", "infer", "pipeline", "report", "cli"],
    ),
    (
        "prepare",
        &[
            "syntax", "check", "design", "estimate", "infer", "pipeline", "report", "cli",
        ],
    ),
    (
        "design",
        &[
            "syntax", "check", "estimate", "infer", "pipeline", "report", "cli",
        ],
    ),
    (
        "estimate",
        &[
            "syntax", "check", "infer", "data", "prepare", "pipeline", "report", "cli",
        ],
    ),
    ("infer", &["syntax", "check", "pipeline", "report", "cli"]),
    (
        "report",
        &["syntax", "check", "estimate", "pipeline", "cli"],
    ),
    ("pipeline", &["cli"]),
    (
        "data",
        &[
            "syntax", "check", "prepare", "design", "estimate", "infer", "report", "pipeline",
            "cli",
        ],
    ),
];

/// One import of a stage a rule forbids: where, and what.
#[derive(Debug, PartialEq)]
struct Breach {
    file: String,
    line: usize,
    stage: String,
    text: String,
}

/// The breaches of `rules` in one file of `stage` (its text given).
fn breaches(file: &str, stage: &str, text: &str, rules: &[(&str, &[&str])]) -> Vec<Breach> {
    let Some((_, forbidden)) = rules.iter().find(|(s, _)| *s == stage) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // `use crate::{a::X, b::Y}` names several.
            let names: Vec<String> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or("").to_string())
                    .collect(),
                None => vec![name],
            };
            for name in names {
                if forbidden.contains(&name.as_str()) {
                    out.push(Breach {
                        file: file.to_string(),
                        line: k + 1,
                        stage: name,
                        text: line.trim().to_string(),
                    });
                }
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn stages_import_only_what_they_may() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<Breach> = Vec::new();
    for (stage, _) in RULES {
        let mut files = Vec::new();
        rust_files(&root.join("src").join(stage), &mut files);
        let single = root.join("src").join(format!("{stage}.rs"));
        if single.exists() {
            files.push(single);
        }
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            found.extend(breaches(&relative, stage, &text, RULES));
        }
    }
    let found: Vec<String> = found
        .iter()
        .map(|b| format!("{}:{}: imports `{}`: {}", b.file, b.line, b.stage, b.text))
        .collect();
    assert!(
        found.is_empty(),
        "stages import what ARCHITECTURE.md says they must not:\n{}",
        found.join("\n")
    );
}

/// The checker names the file, line and import of a breach, grouped imports included.
#[test]
fn a_breach_is_named() {
    let text = "use crate::diagnostics::Diagnostic;\n\
                // crate::syntax in a comment is not an import\n\
                use crate::{report::FitReport, syntax::ast::Method};\n";
    let found = breaches("src/estimate/x.rs", "estimate", text, RULES);
    assert_eq!(
        found,
        vec![
            Breach {
                file: "src/estimate/x.rs".into(),
                line: 3,
                stage: "report".into(),
                text: "use crate::{report::FitReport, syntax::ast::Method};".into(),
            },
            Breach {
                file: "src/estimate/x.rs".into(),
                line: 3,
                stage: "syntax".into(),
                text: "use crate::{report::FitReport, syntax::ast::Method};".into(),
            },
        ]
    );
}

/// Functions of `src/` longer than this many lines: at most `MOST_LONG` of them (issue 15).
const LONG: usize = 80;
const MOST_LONG: usize = 10;
/// No function of `src/` is longer than this.
const LONGEST: usize = 120;

/// (name, first line, lines from `fn` to its closing brace) of each function with a body in
/// `text`, read from rustfmt's layout: the body closes at the signature's indentation.
fn function_lengths(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let mut rest = trimmed;
        for prefix in ["pub(crate) ", "pub(super) ", "pub ", "const ", "unsafe "] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        let Some(signature) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = signature
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = (i..lines.len()).find(|&k| {
            let l = lines[k].trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        }) else {
            continue;
        };
        let end = lines[open].trim_end();
        if end.ends_with(';') {
            continue;
        }
        let close = if end.ends_with('}') {
            Some(open)
        } else {
            (open + 1..lines.len()).find(|&k| lines[k].strip_prefix(indent) == Some("}"))
        };
        if let Some(close) = close {
            out.push((name, i + 1, close - i + 1));
        }
    }
    out
}

/// Numerical functions are cut along the algorithm's seams: none over `LONGEST` lines and at
/// most `MOST_LONG` over `LONG`. Prints the figure.
#[test]
fn functions_stay_short() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut long: Vec<(usize, String)> = Vec::new();
    let mut count = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        for (name, line, length) in function_lengths(&text) {
            count += 1;
            if length > LONG {
                long.push((length, format!("{relative}:{line} {name}")));
            }
        }
    }
    long.sort_by(|a, b| b.cmp(a));
    let listed: Vec<String> = long.iter().map(|(n, f)| format!("{n:>4} {f}")).collect();
    let over = long.iter().filter(|(n, _)| *n > LONGEST).count();
    println!(
        "{count} functions in src/: {} over {LONG} lines, {over} over {LONGEST}\n{}",
        long.len(),
        listed.join("\n")
    );
    assert!(
        over == 0 && long.len() <= MOST_LONG,
        "{} functions over {LONG} lines (at most {MOST_LONG}), {over} over {LONGEST} (none):\n{}",
        long.len(),
        listed.join("\n")
    );
}

/// The length counter reads a body to its closing brace at the signature's indentation, skips
/// declarations without a body and counts a one-line function as one line.
#[test]
fn function_lengths_follow_the_layout() {
    let text = "pub fn a(\n    x: f64,\n) -> f64 {\n    if x > 0.0 {\n        x\n    } else {\n        0.0\n    }\n}\n\
                trait T {\n    fn b(&self);\n    fn c(&self) -> u8 { 1 }\n}\n\
                impl S {\n    pub(super) fn d(&self) {\n        let _ = 1;\n    }\n}\n";
    assert_eq!(
        function_lengths(text),
        vec![
            ("a".to_string(), 1, 9),
            ("c".to_string(), 12, 1),
            ("d".to_string(), 15, 3),
        ]
    );
}
