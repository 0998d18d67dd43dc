//! The model's own expressions: what `check` lowers a `let`, a `keep` (and a `:=` body) into,
//! and what `prepare` (and `infer::defined`) evaluate; and the one printer of expressions, which
//! the syntax tree's expressions go through too (`Printable`), so `tandem fmt`, messages and the
//! drop report write an expression the same way.
//!
//! Owns the resolved shape of an expression: every name says what it is (a data column, an
//! earlier `let`, the `vary` constant, a label, an earlier definition) and every call is bound to
//! its entry of the catalogue of built-in functions (`crate::functions`). Owns the canonical
//! text of an expression (parentheses exactly where precedence needs them). It must not
//! evaluate anything or read data; spans are kept only to point messages at the source.

use serde::Serialize;

use crate::diagnostics::Span;
use crate::functions::Builtin;

/// A lowered expression, with where it was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expression {
    pub kind: ExpressionKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ExpressionKind {
    Number(f64),
    Text(String),
    /// `NA`
    Missing,
    Name(Name),
    Unary {
        op: UnaryOp,
        operand: Box<Expression>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expression>,
        rhs: Box<Expression>,
    },
    /// A built-in function, bound to its catalogue entry.
    Call {
        function: Builtin,
        args: Vec<Argument>,
    },
}

/// A call's argument, positional or named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Argument {
    pub name: Option<ArgumentName>,
    pub value: Expression,
}

/// The name of a named argument, as written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgumentName {
    pub text: String,
    pub span: Span,
}

/// What a name in an expression refers to, resolved by `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Name {
    /// A column of the data file.
    Column(String),
    /// A `let` defined earlier in the file (a column of the analysis frame).
    Let(String),
    /// The `vary` name: a constant, one value per fit.
    Vary(String),
    /// The label of a fixed coefficient (in a definition).
    Label(String),
    /// An earlier `:=` definition.
    Definition(String),
    /// A named constant of the catalogue (`pi`, `crate::functions::constant`), where no column
    /// or earlier `let` has the name.
    Constant(String),
    /// The grouping of a random term (the last argument of `var`/`sd`/`cov`/`cor` in a
    /// definition, choosing among a label's terms).
    Grouping(String),
}

impl Name {
    /// The name as the user wrote it (backquotes removed).
    pub fn text(&self) -> &str {
        match self {
            Name::Column(n)
            | Name::Let(n)
            | Name::Vary(n)
            | Name::Label(n)
            | Name::Definition(n)
            | Name::Constant(n)
            | Name::Grouping(n) => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&",
            BinaryOp::Or => "|",
        }
    }
}

/// `name` as the model language (and R) writes it: as it is when it is a plain name (a letter
/// or `_`, then letters, digits, `_` and `.`), otherwise between backquotes (`` `Reaction Time` ``).
pub fn source_name(name: &str) -> std::borrow::Cow<'_, str> {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if plain {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("`{name}`"))
    }
}

// ------------------------------------------------------------------------------------------------
// The printer

/// One node of an expression as the printer sees it. The syntax tree's expressions and the
/// lowered ones both show themselves this way, so there is one set of precedence rules.
pub enum View<'e, E> {
    Number(f64),
    Text(&'e str),
    Missing,
    Name(&'e str),
    Unary(UnaryOp, &'e E),
    Binary(BinaryOp, &'e E, &'e E),
    /// The function's name and the arguments (with their names when named).
    Call(&'e str, Vec<(Option<&'e str>, &'e E)>),
}

/// An expression the printer can write.
pub trait Printable: Sized {
    fn view(&self) -> View<'_, Self>;
}

impl Printable for Expression {
    fn view(&self) -> View<'_, Self> {
        match &self.kind {
            ExpressionKind::Number(v) => View::Number(*v),
            ExpressionKind::Text(s) => View::Text(s),
            ExpressionKind::Missing => View::Missing,
            ExpressionKind::Name(name) => View::Name(name.text()),
            ExpressionKind::Unary { op, operand } => View::Unary(*op, operand),
            ExpressionKind::Binary { op, lhs, rhs } => View::Binary(*op, lhs, rhs),
            ExpressionKind::Call { function, args } => View::Call(
                function.name(),
                args.iter()
                    .map(|a| (a.name.as_ref().map(|n| n.text.as_str()), &a.value))
                    .collect(),
            ),
        }
    }
}

/// Binding strength, loosest first; mirrors the grammar's expression rules.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const COMPARE: u8 = 4;
const ADD: u8 = 5;
const MUL: u8 = 6;
const NEG: u8 = 7;
const POW: u8 = 8;
const ATOM: u8 = 9;

/// An expression's canonical text.
pub fn print<E: Printable>(expr: &E) -> String {
    print_at(expr, 0)
}

/// Arguments as a call writes them: `x, k = 2`.
pub fn print_arguments<'e, E: Printable + 'e>(
    args: impl IntoIterator<Item = (Option<&'e str>, &'e E)>,
) -> String {
    args.into_iter()
        .map(|(name, value)| match name {
            Some(name) => format!("{} = {}", source_name(name), print(value)),
            None => print(value),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn precedence<E: Printable>(expr: &E) -> u8 {
    match expr.view() {
        View::Number(v) if v < 0.0 || v.is_sign_negative() => NEG,
        View::Number(_) | View::Text(_) | View::Missing | View::Name(_) | View::Call(..) => ATOM,
        View::Unary(op, _) => match op {
            UnaryOp::Neg => NEG,
            UnaryOp::Not => NOT,
        },
        View::Binary(op, ..) => binary_precedence(op),
    }
}

fn binary_precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => OR,
        BinaryOp::And => AND,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            COMPARE
        }
        BinaryOp::Add | BinaryOp::Sub => ADD,
        BinaryOp::Mul | BinaryOp::Div => MUL,
        BinaryOp::Pow => POW,
    }
}

/// `expr` written where the grammar needs at least binding strength `min`.
fn print_at<E: Printable>(expr: &E, min: u8) -> String {
    let text = match expr.view() {
        View::Number(v) => number(v),
        View::Text(s) => string_literal(s),
        View::Missing => "NA".into(),
        View::Name(name) => source_name(name).into_owned(),
        View::Call(function, args) => format!("{function}({})", print_arguments(args)),
        View::Unary(op, operand) => match op {
            // `- -x` would read as a decrement to a human; `-(-x)` is the same tree.
            UnaryOp::Neg if precedence(operand) == NEG => format!("-({})", print_at(operand, 0)),
            UnaryOp::Neg => format!("-{}", print_at(operand, NEG)),
            UnaryOp::Not => format!("!{}", print_at(operand, NOT)),
        },
        View::Binary(op, lhs, rhs) => {
            let p = binary_precedence(op);
            let (lhs_min, rhs_min) = match op {
                // Comparisons do not chain: both sides must bind tighter.
                BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge => (p + 1, p + 1),
                // Right-associative; the exponent may be a negation (`2^-1`).
                BinaryOp::Pow => (ATOM, NEG),
                _ => (p, p + 1),
            };
            let (l, r) = (print_at(lhs, lhs_min), print_at(rhs, rhs_min));
            if op == BinaryOp::Pow {
                format!("{l}^{r}")
            } else {
                format!("{l} {} {r}", op.symbol())
            }
        }
    };
    if precedence(expr) < min {
        format!("({text})")
    } else {
        text
    }
}

/// The shortest text that reads back as the same `f64`.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value}")
    } else {
        // Debug prints the shortest round-tripping digits, with an exponent when that is
        // shorter (`1e-7`), which the grammar accepts.
        format!("{value:?}")
    }
}

/// A string between double quotes, with `"`, `\`, newline and tab escaped.
pub fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The calls of an expression to the functions `wanted` picks, outermost first.
pub fn calls_in<'e>(
    expr: &'e Expression,
    wanted: fn(Builtin) -> bool,
    out: &mut Vec<&'e Expression>,
) {
    match &expr.kind {
        ExpressionKind::Call { function, args } => {
            if wanted(*function) {
                out.push(expr);
            }
            args.iter().for_each(|a| calls_in(&a.value, wanted, out));
        }
        ExpressionKind::Unary { operand, .. } => calls_in(operand, wanted, out),
        ExpressionKind::Binary { lhs, rhs, .. } => {
            calls_in(lhs, wanted, out);
            calls_in(rhs, wanted, out);
        }
        ExpressionKind::Name(_)
        | ExpressionKind::Number(_)
        | ExpressionKind::Text(_)
        | ExpressionKind::Missing => {}
    }
}
