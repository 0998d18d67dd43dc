//! The typed abstract syntax tree of a model file.
//!
//! Owns the shape of every statement as the user wrote it, with the byte span of every node so
//! that later stages can point at the source. It must not resolve names, read data or decide
//! meaning: `x` in an equation may turn out to be a column, a `let` or a label; that is `check`'s
//! business. Spans are byte offsets into the source text of one file.

use serde::Serialize;

// Where every stage may name them without importing the syntax: a span is a place in a model
// file (diagnostics); the estimation method, the operators and how a name is written are the
// model's (its lowered expressions share them).
pub use crate::diagnostics::Span;
pub use crate::model::expression::{source_name, BinaryOp, UnaryOp};
pub use crate::model::Method;

/// A name as written (backquotes removed), with where it was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// The name an `ident` token stands for: its text without enclosing backquotes.
pub fn unquoted_name(token: &str) -> &str {
    token
        .strip_prefix('`')
        .and_then(|t| t.strip_suffix('`'))
        .unwrap_or(token)
}

/// A string literal (quotes removed, escapes resolved).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StringLit {
    pub value: String,
    pub span: Span,
}

/// A whole model file: its statements in file order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFile {
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Statement {
    /// `data "path.csv"`, optionally `missing "-999", "."`: cells read as missing besides the
    /// empty cell and `NA`.
    Data {
        path: StringLit,
        missing: Vec<StringLit>,
        span: Span,
    },
    /// `group patient`: default grouping for within(), between(), lag(), lead(), diff().
    Group { name: Ident, span: Span },
    /// `order session`: default order within a group for lag(), lead(), diff().
    Order { name: Ident, span: Span },
    /// `factor Sex reference "Male"` or `factor Gender_A levels "Wife", "Husband"`.
    Factor {
        column: Ident,
        spec: FactorSpec,
        span: Span,
    },
    /// `let name = expr`
    Let {
        name: Ident,
        value: Expr,
        span: Span,
    },
    /// `keep expr` (a condition, or `complete(x, y)`).
    Keep { condition: Expr, span: Span },
    /// `y ~ terms`
    Equation(Equation),
    /// `residual [equation] [by column] [correlated within unit]`
    Residual(ResidualSpec),
    /// `name := expr`
    Define {
        name: Ident,
        value: Expr,
        span: Span,
    },
    /// `family binomial`, `family use binomial(link = probit)`
    Family(FamilyStatement),
    /// `estimate ml` / `estimate reml`, with options: `estimate ml(agq = 25)`
    Estimate {
        method: Method,
        options: Vec<EstimateOption>,
        span: Span,
    },
    /// `interval monte_carlo(draws = 1000, ...)`, `interval delta`
    Interval(IntervalSpec),
    /// `vary span = 1, 5, 10, 30`
    Vary {
        name: Ident,
        values: Vec<Literal>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FactorSpec {
    /// The reference (first) level; the others keep their default order.
    Reference(StringLit),
    /// Every level in order; the first is the reference.
    Levels(Vec<StringLit>),
}

/// A number or a string, as in `vary` values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Literal {
    Number { value: f64, span: Span },
    String(StringLit),
}

/// `lhs ~ term + term + ...`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Equation {
    /// The outcome: a variable, or (for a random-coefficient equation) a label.
    pub lhs: Ident,
    pub terms: Vec<FormulaTerm>,
    pub span: Span,
}

/// How a fixed coefficient is named or fixed, lavaan style: `a*x` or `0.5*x`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Coefficient {
    Label(Ident),
    Fixed { value: f64, span: Span },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FormulaTerm {
    /// `1` (present = true) or `0` (present = false); may carry a coefficient: `b0*1`.
    Intercept {
        present: bool,
        coefficient: Option<Coefficient>,
        span: Span,
    },
    /// A variable or an interaction `x:z`, optionally labelled or fixed: `a*x`.
    Fixed {
        coefficient: Option<Coefficient>,
        /// One name for a main effect, several for an interaction `x:z:w`.
        factors: Vec<Ident>,
        span: Span,
    },
    /// `(1 + x | g)`, `(1 + x || g)`, `(1 | g1/g2)`, `(1 | g1:g2)`.
    Random(RandomTerm),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RandomTerm {
    pub effects: Vec<RandomEffect>,
    /// `|` is correlated, `||` uncorrelated.
    pub correlated: bool,
    pub grouping: Grouping,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RandomEffect {
    /// `1` or `0` inside a random term.
    Intercept { present: bool, span: Span },
    /// A variable, an interaction `x:z`, or the label of a fixed coefficient (`a` for `a*x`).
    Slope { factors: Vec<Ident>, span: Span },
}

/// The grouping after the bar: nesting levels, outermost first (`g1/g2` is `[g1, g2]`). Each
/// level is one factor or an interaction of factors (`g1:g2`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grouping {
    pub levels: Vec<Vec<Ident>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResidualSpec {
    /// Which equation (by its outcome) the statement applies to; all when absent.
    pub equation: Option<Ident>,
    /// A separate residual variance per level of this column (varIdent).
    pub by: Option<Ident>,
    /// Residuals correlated within each unit of this column (compound symmetry).
    pub correlated_within: Option<Ident>,
    /// AR(1) residuals within each series of this column (`ar1 within column`).
    pub ar1_within: Option<Ident>,
    pub span: Span,
}

/// `family [outcome] name[(option = value, ...)]`: the family and link of an equation's outcome
/// (every equation's when no outcome is named). Names only; `check` resolves them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyStatement {
    pub equation: Option<Ident>,
    /// `binomial`, `poisson`, `gaussian` (validated by `check`).
    pub family: Ident,
    pub options: Vec<FamilyOption>,
    pub span: Span,
}

/// `link = probit`, `trials = size`, `offset = log_exposure`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyOption {
    pub name: Ident,
    pub value: Ident,
}

/// `agq = 25` in `estimate ml(agq = 25)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimateOption {
    pub name: Ident,
    pub value: f64,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalSpec {
    /// `monte_carlo`, `bootstrap`, `parametric_bootstrap`, `delta` (validated by `check`).
    pub method: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

/// A function argument, positional or named (`draws = 1000`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ExprKind {
    Number(f64),
    String(String),
    /// `NA`
    Missing,
    /// A column, a `let`, a label, a `vary` name or an earlier definition.
    Name(String),
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Call {
        function: Ident,
        args: Vec<Arg>,
    },
}
