//! tandem: multilevel, dyadic and within-person mediation models from a small model language.
//!
//! The pipeline runs one way (see ARCHITECTURE.md): `syntax` turns a model file into an AST,
//! `data` reads the CSV into columns, `prepare` runs the file's `let`/`keep` statements into an
//! analysis frame, `check` resolves names into a checked model, `design` accumulates the
//! sufficient statistics, `estimate` fits by ML/REML, `infer` derives tests and intervals, and
//! `report` renders text or JSON. `pipeline` drives the stages and returns typed values;
//! `cli` is the edge that renders them as the `tandem` command prints them (the binary in
//! `src/main.rs` is a thin shell over it).
//!
//! The typed way in is [`fit`]: model text and data in memory give a [`Fitted`] (one
//! [`FitReport`] per `vary` value, the model's warnings as [`Diagnostic`]s), or every
//! [`Diagnostic`] of the stage that failed. Nothing is printed; `diagnostics::render` turns
//! diagnostics into the command line's text.
//!
//! ```
//! use tandem::{fit, DataTable, FitOptions};
//!
//! // y = 2 + 0.5 x, with a residual of ±0.3 alternating over 40 rows.
//! let x: Vec<f64> = (0..40).map(f64::from).collect();
//! let y: Vec<f64> = (0..40)
//!     .map(|i| 2.0 + 0.5 * f64::from(i) + if i % 2 == 0 { 0.3 } else { -0.3 })
//!     .collect();
//! let table = DataTable::from_numeric("in memory", vec![("x".into(), x), ("y".into(), y)]);
//!
//! let fitted = fit("line.tandem", "y ~ 1 + x", table, &FitOptions::default()).unwrap();
//! let report = &fitted.fits[0].report;
//! assert!(report.fit.converged);
//! let slope = report.fixed.iter().find(|row| row.term == "x").unwrap();
//! assert!((slope.estimate - 0.5).abs() < 0.01);
//! assert_eq!(slope.df, 38.0); // OLS under REML: n − p
//!
//! // A misspelled variable is an error located in the model text, not a panic.
//! let table = DataTable::from_numeric("in memory", vec![("x".into(), vec![1.0, 2.0])]);
//! let errors = fit("bad.tandem", "y ~ 1 + x", table, &FitOptions::default()).unwrap_err();
//! assert!(errors[0].message.contains("`y`"));
//! ```

// `Diagnostic` is the error type of every stage and lives on cold paths; boxing it everywhere
// would only add noise.
#![allow(clippy::result_large_err)]

pub mod check;
pub mod cli;
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

pub use data::DataTable;
pub use diagnostics::Diagnostic;
pub use pipeline::{fit, FileFit, FitOptions, Fitted, Format, ValueFit, ValueOutcome};
pub use report::FitReport;
