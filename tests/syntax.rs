//! The model language's syntax: fixtures parse to the expected ASTs, mistakes render to the
//! expected messages, and parse → format → parse is the identity (spans aside).

use std::path::Path;

use tandem::syntax::parse;

fn model_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
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
fn every_library_model_parses() {
    let mut files = Vec::new();
    model_files(Path::new("models"), &mut files);
    assert!(files.len() >= 18);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if let Err(diagnostics) = parse(&text) {
            panic!("{}: {diagnostics:#?}", file.display());
        }
    }
}
