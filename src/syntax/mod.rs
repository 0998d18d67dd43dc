//! Model-file syntax: the pest grammar (`grammar/tandem.pest`) and the typed AST built from it.
//!
//! Owns turning source text into an `ast::ModelFile` (and back, for round-trips). It must not
//! look at data or resolve names.

pub mod ast;
pub mod parse;

pub use parse::{parse, parse_bytes};
