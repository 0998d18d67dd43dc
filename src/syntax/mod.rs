//! Model-file syntax: the pest grammar (`grammar/tandem.pest`) and the typed AST built from it.
//!
//! Owns turning source text into an `ast::ModelFile` (`parse`) and back into canonical text
//! (`format`). It must not look at data or resolve names.

pub mod ast;
pub mod format;
pub mod parse;

pub use format::{format, format_expr};
pub use parse::{line_col, parse, parse_bytes};
