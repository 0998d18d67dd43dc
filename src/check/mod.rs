//! Name resolution and checks: a `ModelFile` plus the data's column names and kinds become a
//! `CheckedModel` (the `model::ModelSpec` that later stages fit), or every diagnostic found.
//!
//! Owns resolving each name against data columns, earlier `let`s, labels, grouping factors and
//! `vary` names, with "did you mean" hints; collecting every error instead of stopping at the
//! first. It must not evaluate data: what needs values (a variable's level) is decided on the
//! prepared frame by `levels`.
