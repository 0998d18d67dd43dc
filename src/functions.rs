//! The language's built-in functions, in one catalogue: each function's name, where it may be
//! called (`let`/`keep`, or a `:=` definition) and, for definitions, how many arguments it
//! takes and what they are. The checker, the preparation and the definitions all read it, so a
//! function is added (or its message changed) in one place. It must not evaluate anything.

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
    pub name: &'static str,
    pub preparation: bool,
    pub definition: bool,
    /// In a definition: fewest and most arguments.
    pub definition_arity: (usize, usize),
    /// Labels of random effects it takes (`var`: 1, `cov`: 2); 0 for a function of a value.
    pub labels: usize,
    /// In a definition: what the arguments are, for messages.
    pub definition_arguments: &'static str,
}

const fn both(name: &'static str) -> Function {
    Function {
        name,
        preparation: true,
        definition: true,
        definition_arity: (1, 1),
        definition_arguments: "1 argument",
        labels: 0,
    }
}

const fn preparation(name: &'static str) -> Function {
    Function {
        name,
        preparation: true,
        definition: false,
        definition_arity: (0, 0),
        definition_arguments: "",
        labels: 0,
    }
}

/// var/sd take a label and cov/cor two, each optionally followed by the grouping whose term is
/// meant (a label with random parts in several terms needs it).
const fn random_part(name: &'static str, labels: usize) -> Function {
    Function {
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
    }
}

/// Every built-in function, in the order messages list them.
pub const FUNCTIONS: &[Function] = &[
    both("exp"),
    both("log"),
    both("sqrt"),
    both("abs"),
    preparation("center"),
    preparation("scale"),
    preparation("within"),
    preparation("between"),
    preparation("lag"),
    preparation("lead"),
    preparation("diff"),
    preparation("complete"),
    preparation("is_missing"),
    preparation("ifelse"),
    random_part("var", 1),
    random_part("sd", 1),
    random_part("cov", 2),
    random_part("cor", 2),
];

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
