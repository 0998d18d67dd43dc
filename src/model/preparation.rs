//! The preparation plan: the file's `group`, `order`, `factor`, `let` and `keep` statements as
//! `check` lowered them, in file order, for `prepare` to run over the rows.
//!
//! Owns the order of the steps and what each one carries (resolved expressions, the columns and
//! levels a `factor` names, the canonical text a `keep` is reported by). It must not evaluate
//! anything or read data.

use serde::Serialize;

use super::expression::{Expression, Name};
use crate::diagnostics::Span;

/// The preparation statements of a model file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Preparation {
    pub steps: Vec<Step>,
}

/// One preparation statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Step {
    /// `group g`: from here on, the default grouping of `within`, `between` and the shifts.
    Group(Variable),
    /// `order t`: from here on, the default order within a group of the shifts.
    Order(Variable),
    Factor(Factor),
    /// `let name = value`
    Let {
        name: String,
        name_span: Span,
        value: Expression,
        /// The whole statement.
        span: Span,
    },
    /// `keep condition`
    Keep {
        condition: Expression,
        /// The condition's canonical text: the drop report says `keep <text>`.
        text: String,
        span: Span,
    },
}

/// A column of the analysis frame named by a statement (`group`, `order`), with where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variable {
    pub name: Name,
    pub span: Span,
}

/// `factor column reference "a"` or `factor column levels "a", "b"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factor {
    pub column: String,
    pub column_span: Span,
    pub levels: FactorLevels,
    /// The whole statement.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FactorLevels {
    /// The reference (first) level; the others keep their order.
    Reference(Level),
    /// Every level in order; the first is the reference.
    Listed(Vec<Level>),
}

/// A level named in a `factor` statement, with where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Level {
    pub value: String,
    pub span: Span,
}

impl Preparation {
    /// The `factor` steps, in file order.
    pub fn factors(&self) -> impl Iterator<Item = &Factor> {
        self.steps.iter().filter_map(|s| match s {
            Step::Factor(f) => Some(f),
            _ => None,
        })
    }
}
