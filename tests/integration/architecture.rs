//! The layering ARCHITECTURE.md writes down, read from the source (as rust-analyzer's `tidy`
//! tests do): a stage must not import a stage it must not know. The imports that break a rule
//! today are listed, file by file, as debts to pay (issue 15, item 2); the test fails on any
//! new one, naming the file, line and import, and on a listed one that is gone (so the list
//! only shrinks).

use std::path::{Path, PathBuf};

/// (stage, stages it must not import).
const RULES: &[(&str, &[&str])] = &[
    (
        "estimate",
        &["syntax", "infer", "data", "prepare", "pipeline", "report"],
    ),
    (
        "design",
        &["syntax", "estimate", "infer", "pipeline", "report"],
    ),
    ("infer", &["syntax", "pipeline", "report"]),
    (
        "prepare",
        &[
            "syntax", "design", "estimate", "infer", "pipeline", "report",
        ],
    ),
    ("report", &["syntax", "estimate", "pipeline"]),
    (
        "data",
        &[
            "syntax", "check", "prepare", "design", "estimate", "infer", "report", "pipeline",
        ],
    ),
];

/// Today's breaches: (file, imported stage). Each is to be removed, not added to.
const DEBTS: &[(&str, &str)] = &[
    ("src/design/columns.rs", "syntax"),
    ("src/infer/defined.rs", "syntax"),
    ("src/prepare/eval.rs", "syntax"),
    ("src/prepare/factor.rs", "syntax"),
    ("src/prepare/keep.rs", "syntax"),
    ("src/prepare/mod.rs", "syntax"),
    ("src/prepare/workspace.rs", "syntax"),
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
    let new: Vec<String> = found
        .iter()
        .filter(|b| !DEBTS.contains(&(b.file.as_str(), b.stage.as_str())))
        .map(|b| format!("{}:{}: imports `{}`: {}", b.file, b.line, b.stage, b.text))
        .collect();
    assert!(
        new.is_empty(),
        "stages import what ARCHITECTURE.md says they must not:\n{}",
        new.join("\n")
    );
    let paid: Vec<String> = DEBTS
        .iter()
        .filter(|(file, stage)| !found.iter().any(|b| b.file == *file && b.stage == *stage))
        .map(|(file, stage)| format!("{file} no longer imports `{stage}`: remove it from DEBTS"))
        .collect();
    assert!(paid.is_empty(), "{}", paid.join("\n"));
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
