//! The integration tests, one binary (a cold `cargo test` links the library once): one module
//! per area, the shared support in `../common` (also used by the benches) and `fuzz`, the
//! convergence campaign's generator in `../campaign` (also used by an example).

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/fuzz.rs"]
mod fuzz;
#[path = "../campaign/generator.rs"]
mod generator;

mod ame;
mod ar1;
mod architecture;
mod check;
mod cli;
mod compare;
mod convergence;
mod data;
mod defined;
mod defined_cli;
mod design;
mod dyadic;
mod engine;
mod figures;
mod formats;
mod glmm;
mod glmm_figures;
mod information;
mod mediation;
mod models;
mod prepare;
mod robust;
mod synchrony;
mod syntax;
