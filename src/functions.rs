//! The language's built-in functions, in one catalogue: each function's id (`Builtin`, what a
//! lowered call is bound to), name, where it may be called (`let`/`keep`, or a `:=` definition),
//! its arguments in each place, and the scalar rule of the functions of one number that both
//! places evaluate (`exp`, `log`, `sqrt`, `abs`; `sin`, `cos` in `let`/`keep` only), and the
//! named constants (`pi`). The checker, the preparation and the definitions all read it, so a
//! function is added (or its message changed) in one place. It must not evaluate anything over
//! rows or parameters: that is `prepare`'s and `infer`'s (`ame`'s average over the analysis
//! rows is `infer::marginal_effect`'s).

use serde::Serialize;

/// Which built-in function a call is: what `check` binds a call to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Builtin {
    Exp,
    Log,
    Sqrt,
    Abs,
    Sin,
    Cos,
    Center,
    Scale,
    Within,
    Between,
    Lag,
    Lead,
    Diff,
    Complete,
    IsMissing,
    Ifelse,
    Var,
    Sd,
    Cov,
    Cor,
    Ame,
}

impl Builtin {
    /// The catalogue's entry.
    pub fn entry(self) -> &'static Function {
        // Every id has exactly one entry (the unit test says so).
        FUNCTIONS
            .iter()
            .find(|f| f.id == self)
            .unwrap_or(&FUNCTIONS[0])
    }

    /// The name the language spells it with.
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    /// Whether it needs a summary of all rows (a mean, an sd): out of core, its value waits for
    /// the first pass over the file.
    pub fn summarises_rows(self) -> bool {
        matches!(
            self,
            Builtin::Center | Builtin::Scale | Builtin::Within | Builtin::Between
        )
    }

    /// Whether it reads other rows of the group (`lag`, `lead`, `diff`).
    pub fn shifts_rows(self) -> bool {
        matches!(self, Builtin::Lag | Builtin::Lead | Builtin::Diff)
    }

    /// For a function of one number, its derivative at `x` (`None` for the others): the
    /// definitions' exact gradients (forward mode) go through it.
    pub fn derivative(self) -> Option<fn(f64) -> f64> {
        match self {
            Builtin::Exp => Some(f64::exp),
            Builtin::Log => Some(|x| 1.0 / x),
            Builtin::Sqrt => Some(|x| 0.5 / x.sqrt()),
            Builtin::Abs => Some(f64::signum),
            Builtin::Sin => Some(f64::cos),
            Builtin::Cos => Some(|x| -x.sin()),
            _ => None,
        }
    }

    /// For a function of one number (`exp`, `log`, `sqrt`, `abs`), its value at `x` (`None`
    /// for the others). Not-finite results are the caller's to treat.
    pub fn scalar(self) -> Option<fn(f64) -> f64> {
        match self {
            Builtin::Exp => Some(f64::exp),
            Builtin::Log => Some(f64::ln),
            Builtin::Sqrt => Some(f64::sqrt),
            Builtin::Abs => Some(f64::abs),
            Builtin::Sin => Some(f64::sin),
            Builtin::Cos => Some(f64::cos),
            _ => None,
        }
    }
}

/// Where a function may be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// `let` and `keep`, evaluated over rows.
    Preparation,
    /// `:=`, evaluated over parameters.
    Definition,
}

/// One built-in function.
#[derive(Debug)]
pub struct Function {
    pub id: Builtin,
    pub name: &'static str,
    pub preparation: bool,
    pub definition: bool,
    /// In a definition: fewest and most arguments.
    pub definition_arity: (usize, usize),
    /// Labels of random effects it takes (`var`: 1, `cov`: 2); 0 for a function of a value.
    pub labels: usize,
    /// In a definition: what the arguments are, for messages.
    pub definition_arguments: &'static str,
    /// In `let`/`keep`: the parameters' names, in order (the arguments are positional).
    pub parameters: &'static [&'static str],
    /// In `let`/`keep`: how many of `parameters` must be given.
    pub required: usize,
    /// In `let`/`keep`: any number of further arguments like the last (`complete(x, ...)`).
    pub variadic: bool,
}

const fn both(id: Builtin, name: &'static str) -> Function {
    Function {
        id,
        name,
        preparation: true,
        definition: true,
        definition_arity: (1, 1),
        definition_arguments: "1 argument",
        labels: 0,
        parameters: &["x"],
        required: 1,
        variadic: false,
    }
}

const fn preparation(
    id: Builtin,
    name: &'static str,
    parameters: &'static [&'static str],
    required: usize,
) -> Function {
    Function {
        id,
        name,
        preparation: true,
        definition: false,
        definition_arity: (0, 0),
        definition_arguments: "",
        labels: 0,
        parameters,
        required,
        variadic: false,
    }
}

/// var/sd take a label and cov/cor two, each optionally followed by the grouping whose term is
/// meant (a label with random parts in several terms needs it).
const fn random_part(id: Builtin, name: &'static str, labels: usize) -> Function {
    Function {
        id,
        name,
        preparation: false,
        definition: true,
        definition_arity: (labels, labels + 1),
        labels,
        definition_arguments: if labels == 1 {
            "a label, and optionally the grouping of its random term"
        } else {
            "two labels, and optionally the grouping of their random term"
        },
        parameters: &[],
        required: 0,
        variadic: false,
    }
}

/// `ame(x)`: the average marginal effect of predictor `x` on the response scale; its argument
/// names a variable of the fixed part, not a value.
const fn marginal(id: Builtin, name: &'static str) -> Function {
    Function {
        id,
        name,
        preparation: false,
        definition: true,
        definition_arity: (1, 1),
        labels: 0,
        definition_arguments: "1 argument (a numeric predictor of the fixed part)",
        parameters: &[],
        required: 0,
        variadic: false,
    }
}

/// Every built-in function, in the order messages list them.
pub const FUNCTIONS: &[Function] = &[
    both(Builtin::Exp, "exp"),
    both(Builtin::Log, "log"),
    both(Builtin::Sqrt, "sqrt"),
    both(Builtin::Abs, "abs"),
    // Periodic terms (nlme's Ovary: `let s = sin(2 * pi * Time)`); in radians, as R's.
    preparation(Builtin::Sin, "sin", &["x"], 1),
    preparation(Builtin::Cos, "cos", &["x"], 1),
    preparation(Builtin::Center, "center", &["x"], 1),
    preparation(Builtin::Scale, "scale", &["x"], 1),
    preparation(Builtin::Within, "within", &["x", "group"], 1),
    preparation(Builtin::Between, "between", &["x", "group"], 1),
    preparation(Builtin::Lag, "lag", &["x", "k"], 1),
    preparation(Builtin::Lead, "lead", &["x", "k"], 1),
    preparation(Builtin::Diff, "diff", &["x", "k"], 1),
    Function {
        variadic: true,
        ..preparation(Builtin::Complete, "complete", &["x"], 1)
    },
    preparation(Builtin::IsMissing, "is_missing", &["x"], 1),
    preparation(Builtin::Ifelse, "ifelse", &["condition", "yes", "no"], 3),
    random_part(Builtin::Var, "var", 1),
    random_part(Builtin::Sd, "sd", 1),
    random_part(Builtin::Cov, "cov", 2),
    random_part(Builtin::Cor, "cor", 2),
    marginal(Builtin::Ame, "ame"),
];

/// Named constants `let` and `keep` may use. A column or an earlier `let` of the same name
/// comes first: in R a model frame's column `pi` masks `base::pi` the same way, so a data set
/// with a column `pi` keeps meaning its column.
pub const CONSTANTS: &[(&str, f64)] = &[("pi", std::f64::consts::PI)];

/// The value of the named constant `name` (`pi`).
pub fn constant(name: &str) -> Option<f64> {
    CONSTANTS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

impl Function {
    pub fn allowed(&self, context: Context) -> bool {
        match context {
            Context::Preparation => self.preparation,
            Context::Definition => self.definition,
        }
    }
}

/// The names of the functions `context` may call, in catalogue order.
pub fn names(context: Context) -> Vec<&'static str> {
    FUNCTIONS
        .iter()
        .filter(|f| f.allowed(context))
        .map(|f| f.name)
        .collect()
}

/// The function `name` if `context` may call it.
pub fn find(name: &str, context: Context) -> Option<&'static Function> {
    FUNCTIONS
        .iter()
        .find(|f| f.name == name && f.allowed(context))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each id has one entry, so `Builtin::entry` finds the right one.
    #[test]
    fn every_id_has_one_entry() {
        for f in FUNCTIONS {
            assert_eq!(FUNCTIONS.iter().filter(|g| g.id == f.id).count(), 1);
            assert_eq!(f.id.name(), f.name);
        }
    }
}
