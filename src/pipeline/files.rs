//! Model files on disk: a path's model files (a folder searched for `*.tandem`), reading and
//! parsing one (a data file passed in its place is named as such), and the data file its
//! `data` statement names (relative to the model file's folder). Owns `LoadedModel`, a model
//! file with its text and hash for messages and provenance; must not check or fit.

use std::path::{Path, PathBuf};

use crate::data::{self};
use crate::diagnostics::{Diagnostic, Location};
use crate::syntax::{
    self,
    ast::{ModelFile, Span, Statement, StringLit},
};

/// A model file read and parsed, with its text for locating messages.
pub(super) struct LoadedModel {
    pub(super) path: PathBuf,
    pub(super) text: String,
    pub(super) ast: ModelFile,
    /// SHA-256 of the bytes parsed, for the report's provenance.
    pub(super) sha256: String,
}

impl LoadedModel {
    /// The file's `data` statement: (path, missing codes, span).
    pub(super) fn data_statement(&self) -> Option<(&StringLit, &[StringLit], Span)> {
        self.ast.statements.iter().find_map(|s| match s {
            Statement::Data {
                path,
                missing,
                span,
            } => Some((path, missing.as_slice(), *span)),
            _ => None,
        })
    }
}

/// The model files a path names: itself, or every `*.tandem` under a folder (recursively),
/// sorted by path.
pub(super) fn model_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut folders = vec![path.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            Diagnostic::error(
                format!("cannot read the folder: {e}"),
                Location::File(folder.clone()),
            )
        })?;
        for entry in entries.filter_map(Result::ok) {
            let p = entry.path();
            if p.is_dir() {
                folders.push(p);
            } else if p.extension().is_some_and(|x| x == "tandem") {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Diagnostic::error(
            "no `*.tandem` model files in this folder",
            Location::File(path.into()),
        ));
    }
    Ok(files)
}

/// `a/b/../c` → `a/c`, so reports name the data file the way a reader would.
fn tidy_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Why a model file could not be opened: every diagnostic, with the file's text when it was read
/// (to show their places in it).
#[derive(Debug)]
pub(super) struct NotOpened {
    pub(super) path: PathBuf,
    pub(super) text: Option<String>,
    pub(super) diagnostics: Vec<Diagnostic>,
}

impl NotOpened {
    /// Diagnostics with no place in the model text.
    pub(super) fn plain(path: &Path, diagnostics: Vec<Diagnostic>) -> Self {
        NotOpened {
            path: path.into(),
            text: None,
            diagnostics,
        }
    }
}

impl LoadedModel {
    /// Diagnostics placed in this model file.
    pub(super) fn not_opened(&self, diagnostics: Vec<Diagnostic>) -> NotOpened {
        NotOpened {
            path: self.path.clone(),
            text: Some(self.text.clone()),
            diagnostics,
        }
    }
}

pub(super) fn load(path: &Path) -> Result<LoadedModel, NotOpened> {
    let bytes = std::fs::read(path).map_err(|e| {
        let cannot = Diagnostic::error(
            format!("cannot read the model file: {e}"),
            Location::File(path.into()),
        );
        NotOpened::plain(path, vec![cannot])
    })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let data_extension = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| DATA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    let parsed = syntax::parse_bytes(&bytes);
    // A data file passed where the model file goes: say so rather than report its first
    // character as a syntax error.
    if data_extension || (parsed.is_err() && looks_like_a_table(&text)) {
        return Err(NotOpened::plain(
            path,
            vec![Diagnostic::error(
                format!(
                    "`{}` looks like a data file, not a model file",
                    path.display()
                ),
                Location::File(path.into()),
            )
            .with_hint(format!(
                "pass a model file (`*.tandem`); it names its data with `data \"file.csv\"`, or \
             give the data with `--data {}`",
                path.display()
            ))],
        ));
    }
    match parsed {
        Ok(ast) => Ok(LoadedModel {
            path: path.into(),
            text,
            ast,
            sha256: data::sha256_hex(&bytes),
        }),
        Err(diagnostics) => Err(NotOpened {
            path: path.into(),
            text: Some(text),
            diagnostics,
        }),
    }
}

/// Extensions of data files, never of model files.
const DATA_EXTENSIONS: [&str; 7] = ["csv", "tsv", "parquet", "arrow", "feather", "gz", "xlsx"];

/// A table's start: the first two non-empty lines split into the same number (≥ 2) of fields by
/// one delimiter, with no model syntax (`~`, `:=`, a comment or a statement word) in them.
fn looks_like_a_table(text: &str) -> bool {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(2)
        .collect();
    if lines.len() < 2 {
        return false;
    }
    let modelish = |l: &str| {
        let t = l.trim_start();
        t.starts_with('#')
            || t.contains('~')
            || t.contains(":=")
            || t.split_whitespace()
                .next()
                .is_some_and(|w| syntax::parse::STATEMENT_KEYWORDS.contains(&w))
    };
    if lines.iter().any(|l| modelish(l)) {
        return false;
    }
    [',', ';', '\t'].iter().any(|d| {
        let n = lines[0].split(*d).count();
        n >= 2 && lines[1].split(*d).count() == n
    })
}

/// The data file a model reads: `--data` if given, else its `data` statement relative to the
/// model file's folder.
pub(super) fn data_path(model: &LoadedModel, override_path: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = override_path {
        return Some(p.to_path_buf());
    }
    let (path, _, _) = model.data_statement()?;
    let base = model.path.parent().unwrap_or(Path::new("."));
    Some(tidy_path(&base.join(&path.value)))
}

/// The `data` statement names a file that is not there: located at the statement, with the path
/// it resolved to (relative to the model file's folder, not the working directory).
pub(super) fn missing_data_file(model: &LoadedModel, resolved: &Path) -> Diagnostic {
    let span = model.data_statement().map(|(_, _, span)| span);
    let folder = model
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Diagnostic::error(
        format!("the data file `{}` does not exist", resolved.display()),
        span.map_or(Location::File(model.path.clone()), Location::Source),
    )
    .with_hint(format!(
        "a `data` path is relative to the model file's folder (`{}`), not to the working \
         directory; or pass the data with `--data FILE`",
        folder.display()
    ))
}
