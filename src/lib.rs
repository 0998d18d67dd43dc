//! tandem: multilevel, dyadic and within-person mediation models from a small model language.
//!
//! The pipeline runs one way (see ARCHITECTURE.md): `syntax` turns a model file into an AST,
//! `data` reads the CSV into columns, `prepare` runs the file's `let`/`keep` statements into an
//! analysis frame, `check` resolves names into a checked model, `design` accumulates the
//! sufficient statistics, `estimate` fits by ML/REML, `infer` derives tests and intervals, and
//! `report` renders text or JSON. The binary in `src/main.rs` is a thin CLI over this library.

// `Diagnostic` is the error type of every stage and lives on cold paths; boxing it everywhere
// would only add noise.
#![allow(clippy::result_large_err)]

pub mod check;
pub mod data;
pub mod design;
pub mod diagnostics;
pub mod estimate;
pub mod functions;
pub mod infer;
pub mod model;
pub mod numeric_derivatives;
pub mod out_of_core;
pub mod parameters;
pub mod pipeline;
pub mod prepare;
pub mod report;
pub mod syntax;
