//! Equations: outcomes, intercepts, fixed terms and their lavaan-style labels, and which labels
//! name random coefficients. Owns the rules that `*` in a formula always labels or fixes a
//! coefficient, that an outcome is a numeric variable or a random coefficient's label, and that
//! a fixed term is variables (or a random coefficient standing alone), and that the equations
//! form a recursive system (no outcome among its own predictors, directly, through a `let` or
//! through other equations). Random terms are resolved by `random`; this module only asks it for
//! them.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostics::Diagnostic;
use crate::functions::{Builtin, Context};
use crate::model::{
    Coefficient, EquationSpec, FixedTermSpec, OutcomeKind, RandomTermSpec, TermKind,
};
use crate::syntax::ast::{
    self, Equation, Expr, ExprKind, FormulaTerm, Ident, ModelFile, Span, Statement,
};

use super::names::Lookup;
use super::schema::ColumnKind;
use super::Checker;

/// Where a label is written: on which equation's intercept or term.
#[derive(Debug, Clone)]
pub(crate) struct LabelSite {
    pub equation: usize,
    /// Empty for the intercept; the term's names (`["x", "z"]` for `a*x:z`) otherwise.
    pub term: Vec<String>,
}

/// Every label of the file's equations, by name.
pub(crate) type Labels = BTreeMap<String, Vec<LabelSite>>;

/// The intercept an equation's formula gives: `None` when removed (`0`, `- 1`); the last
/// intercept term written decides, as in R (`y ~ 1 + x - 1` has none).
pub(crate) fn intercept_of(equation: &Equation) -> Option<Coefficient> {
    let mut intercept = Some(Coefficient::Free { label: None });
    for term in &equation.terms {
        if let FormulaTerm::Intercept {
            present,
            coefficient,
            ..
        } = term
        {
            intercept = present.then(|| coefficient_of(coefficient.as_ref()));
        }
    }
    intercept
}

fn coefficient_of(coefficient: Option<&ast::Coefficient>) -> Coefficient {
    match coefficient {
        None => Coefficient::Free { label: None },
        Some(ast::Coefficient::Label(label)) => Coefficient::Free {
            label: Some(label.name.clone()),
        },
        Some(ast::Coefficient::Fixed { value, .. }) => Coefficient::Fixed(*value),
    }
}

fn collect_labels(equations: &[&Equation]) -> Labels {
    let mut labels = Labels::new();
    for (index, equation) in equations.iter().enumerate() {
        for term in &equation.terms {
            let (coefficient, names) = match term {
                FormulaTerm::Intercept { coefficient, .. } => (coefficient, Vec::new()),
                FormulaTerm::Fixed {
                    coefficient,
                    factors,
                    ..
                } => (
                    coefficient,
                    factors.iter().map(|f| f.name.clone()).collect(),
                ),
                FormulaTerm::Random(_) => continue,
            };
            if let Some(ast::Coefficient::Label(label)) = coefficient {
                labels
                    .entry(label.name.clone())
                    .or_default()
                    .push(LabelSite {
                        equation: index,
                        term: names,
                    });
            }
        }
    }
    labels
}

/// R's name of a term: its variables joined by `:`, a name that is not plain between backquotes
/// (R's `` `Reaction Time`:Days ``).
pub(crate) fn term_name(variables: &[String]) -> String {
    variables
        .iter()
        .map(|v| crate::model::expression::source_name(v))
        .collect::<Vec<_>>()
        .join(":")
}

impl Checker<'_> {
    pub(crate) fn check_equations(
        &mut self,
        file: &ModelFile,
    ) -> (Vec<EquationSpec>, Vec<RandomTermSpec>) {
        let equations: Vec<&Equation> = file
            .statements
            .iter()
            .filter_map(|s| match s {
                Statement::Equation(e) => Some(e),
                _ => None,
            })
            .collect();
        let labels = collect_labels(&equations);
        let local: Vec<Vec<RandomTermSpec>> = equations
            .iter()
            .enumerate()
            .map(|(index, equation)| self.resolve_random_terms(index, equation, &labels))
            .collect();
        // A label with a random part names a random coefficient, per grouping it varies over.
        let mut random_coefficients: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for term in local.iter().flatten() {
            for effect in &term.effects {
                if let Some(label) = &effect.label {
                    random_coefficients
                        .entry(label.clone())
                        .or_default()
                        .insert(term.name.clone());
                }
            }
        }
        let mut specs = Vec::new();
        let mut outcomes: Vec<&Ident> = Vec::new();
        for (index, equation) in equations.iter().enumerate() {
            if outcomes.iter().any(|o| o.name == equation.lhs.name) {
                self.error(
                    Diagnostic::at(
                        format!("a second equation for `{}`", equation.lhs.name),
                        equation.lhs.span,
                    )
                    .with_hint("put all its terms in the first equation for it"),
                );
            }
            outcomes.push(&equation.lhs);
            let own_random: BTreeSet<&str> = local[index]
                .iter()
                .flat_map(|t| t.effects.iter().filter_map(|e| e.label.as_deref()))
                .collect();
            for term in &local[index] {
                if term
                    .effects
                    .iter()
                    .any(|e| e.variables.contains(&equation.lhs.name))
                {
                    self.error(own_predictor(&equation.lhs.name, term.span));
                }
            }
            let outcome_kind =
                self.check_outcome(equation, &labels, &random_coefficients, &local[index]);
            let terms = self.check_fixed_terms(equation, &random_coefficients, &own_random);
            let intercept = intercept_of(equation);
            specs.push(EquationSpec {
                outcome: equation.lhs.name.clone(),
                outcome_kind,
                intercept,
                terms,
                family: Default::default(),
                span: equation.span,
            });
        }
        self.check_loops(file, &equations, &local);
        let random = self.merge_random_terms(local);
        (specs, random)
    }

    fn check_outcome(
        &mut self,
        equation: &Equation,
        labels: &Labels,
        random_coefficients: &BTreeMap<String, BTreeSet<String>>,
        own_random: &[RandomTermSpec],
    ) -> OutcomeKind {
        let lhs = &equation.lhs;
        match self.scope.lookup(&lhs.name, usize::MAX) {
            Lookup::Column(ColumnKind::Numeric) | Lookup::Let => return OutcomeKind::Variable,
            Lookup::Column(ColumnKind::Text) => {
                self.error(
                    Diagnostic::at(
                        format!("the outcome `{}` is a text column", lhs.name),
                        lhs.span,
                    )
                    .with_expected("a numeric outcome")
                    .with_hint(format!(
                        "for a logistic model make it 0/1, `let y = {} == \"level\"`, model `y` \
                         and add `family binomial`",
                        lhs.name
                    )),
                );
                return OutcomeKind::Variable;
            }
            _ => {}
        }
        if let Some(groupings) = random_coefficients.get(&lhs.name) {
            if groupings.len() > 1 {
                self.error(Diagnostic::at(
                    format!(
                        "`{}` varies over several groupings ({}); an outcome must be one \
                         random coefficient",
                        lhs.name,
                        groupings.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    lhs.span,
                ));
            }
            if let Some(term) = own_random.first() {
                self.error(
                    Diagnostic::at(
                        format!(
                            "`{}` is a random coefficient, so its equation is a group-level \
                             regression and cannot have random terms",
                            lhs.name
                        ),
                        term.span,
                    )
                    .with_hint("its residual is the random coefficient's own deviation"),
                );
            }
            return OutcomeKind::RandomCoefficient;
        }
        if labels.contains_key(&lhs.name) {
            self.error(
                Diagnostic::at(
                    format!(
                        "`{}` labels a fixed coefficient that has no random part, so it \
                         cannot be an outcome",
                        lhs.name
                    ),
                    lhs.span,
                )
                .with_hint(format!(
                    "give it a random part in its equation, e.g. `(1 + {} | group)`",
                    lhs.name
                )),
            );
            return OutcomeKind::RandomCoefficient;
        }
        let extra: Vec<&str> = random_coefficients.keys().map(String::as_str).collect();
        let d = self
            .scope
            .unknown_variable(&lhs.name, lhs.span, usize::MAX, &extra);
        self.error(d);
        OutcomeKind::Variable
    }

    fn check_fixed_terms(
        &mut self,
        equation: &Equation,
        random_coefficients: &BTreeMap<String, BTreeSet<String>>,
        own_random: &BTreeSet<&str>,
    ) -> Vec<FixedTermSpec> {
        let mut terms: Vec<FixedTermSpec> = Vec::new();
        let mut intercept_seen = false;
        for term in &equation.terms {
            match term {
                FormulaTerm::Intercept {
                    present,
                    coefficient,
                    span,
                } => {
                    self.check_intercept_term(
                        *present,
                        coefficient.as_ref(),
                        *span,
                        intercept_seen,
                    );
                    intercept_seen = true;
                }
                FormulaTerm::Fixed {
                    coefficient,
                    factors,
                    span,
                } => {
                    let Some(term) = self.fixed_term(
                        equation,
                        coefficient.as_ref(),
                        factors,
                        *span,
                        random_coefficients,
                        own_random,
                    ) else {
                        continue;
                    };
                    let key: BTreeSet<&String> = term.variables.iter().collect();
                    if terms
                        .iter()
                        .any(|t| t.variables.iter().collect::<BTreeSet<_>>() == key)
                    {
                        self.error(
                            Diagnostic::at(
                                format!(
                                    "the term `{}` appears twice in this equation",
                                    written(factors)
                                ),
                                *span,
                            )
                            .with_hint("to constrain two coefficients equal, give them one label"),
                        );
                        continue;
                    }
                    terms.push(term);
                }
                FormulaTerm::Random(_) => {}
            }
        }
        terms
    }

    /// An intercept term: a removed one carries no label or value; a second one is a warning.
    fn check_intercept_term(
        &mut self,
        present: bool,
        coefficient: Option<&ast::Coefficient>,
        span: Span,
        intercept_seen: bool,
    ) {
        if let Some(coefficient) = coefficient {
            if !present {
                self.error(Diagnostic::at(
                    "a removed intercept (`0`) cannot carry a label or value",
                    span,
                ));
            }
            self.check_label(coefficient, "1");
        }
        if intercept_seen && present {
            self.warnings.push(
                Diagnostic::warning(
                    "the intercept is written twice",
                    crate::diagnostics::Location::Source(span),
                )
                .with_hint("the last intercept term decides"),
            );
        }
    }

    /// A fixed term (a variable or an interaction), unless it is the outcome itself or a
    /// factor cannot be a predictor here.
    fn fixed_term(
        &mut self,
        equation: &Equation,
        coefficient: Option<&ast::Coefficient>,
        factors: &[Ident],
        span: Span,
        random_coefficients: &BTreeMap<String, BTreeSet<String>>,
        own_random: &BTreeSet<&str>,
    ) -> Option<FixedTermSpec> {
        let written = written(factors);
        if let Some(coefficient) = coefficient {
            self.check_label(coefficient, &written);
        }
        let factors = &self.distinct_factors(factors, &written, span);
        if let Some(own) = factors.iter().find(|f| f.name == equation.lhs.name) {
            self.error(own_predictor(&own.name, own.span));
            return None;
        }
        let kind = self.check_term_factors(factors, random_coefficients, own_random)?;
        let variables: Vec<String> = factors.iter().map(|f| f.name.clone()).collect();
        Some(FixedTermSpec {
            name: term_name(&variables),
            variables,
            coefficient: coefficient_of(coefficient),
            kind,
            span,
        })
    }

    /// The factors of an interaction with repeats removed, as R reads `x:x` (the variable
    /// itself, not its square): with a warning at the term saying so.
    pub(super) fn distinct_factors(
        &mut self,
        factors: &[Ident],
        written: &str,
        span: Span,
    ) -> Vec<Ident> {
        let mut distinct: Vec<Ident> = Vec::with_capacity(factors.len());
        for f in factors {
            if !distinct.iter().any(|d| d.name == f.name) {
                distinct.push(f.clone());
            }
        }
        if distinct.len() < factors.len() {
            let meant = distinct
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(":");
            self.warnings.push(
                Diagnostic::warning(
                    format!(
                        "`{written}` is `{meant}`: a variable in an interaction with itself is the \
                         variable, as in R"
                    ),
                    crate::diagnostics::Location::Source(span),
                )
                .with_hint("for a square, prepare it with `let x2 = x^2` and use `x2`"),
            );
        }
        distinct
    }

    /// Resolves a fixed term's names; `None` when one of them is wrong (already reported).
    fn check_term_factors(
        &mut self,
        factors: &[Ident],
        random_coefficients: &BTreeMap<String, BTreeSet<String>>,
        own_random: &BTreeSet<&str>,
    ) -> Option<TermKind> {
        let mut ok = true;
        for factor in factors {
            if self.scope.is_frame_variable(&factor.name, usize::MAX) {
                continue;
            }
            ok = false;
            if let Some(groupings) = random_coefficients.get(&factor.name) {
                if factors.len() > 1 {
                    self.error(
                        Diagnostic::at(
                            format!(
                                "the random coefficient `{}` cannot be part of an interaction",
                                factor.name
                            ),
                            factor.span,
                        )
                        .with_hint("a random coefficient enters an equation as a term of its own"),
                    );
                } else if own_random.contains(factor.name.as_str()) {
                    self.error(Diagnostic::at(
                        format!(
                            "`{}` is a random coefficient of this same equation; it can predict \
                             only a group-level outcome in another equation",
                            factor.name
                        ),
                        factor.span,
                    ));
                } else if groupings.len() > 1 {
                    self.error(Diagnostic::at(
                        format!(
                            "`{}` varies over several groupings ({}); a predictor must be one \
                             random coefficient",
                            factor.name,
                            groupings.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        factor.span,
                    ));
                } else {
                    return Some(TermKind::RandomCoefficient);
                }
                continue;
            }
            let extra: Vec<&str> = random_coefficients.keys().map(String::as_str).collect();
            let d = self
                .scope
                .unknown_variable(&factor.name, factor.span, usize::MAX, &extra);
            self.error(d);
        }
        ok.then_some(TermKind::Variables)
    }

    /// A label must be a new name: not a variable (then `*` was probably meant as R's crossing),
    /// not a definition, not the `vary` name.
    fn check_label(&mut self, coefficient: &ast::Coefficient, term: &str) {
        let ast::Coefficient::Label(label) = coefficient else {
            return;
        };
        let name = &label.name;
        // `NaN*x` or `Inf*x` reads as fixing a coefficient at a value no fit can use, but would
        // silently label it.
        if ["nan", "inf", "infinity"].contains(&name.to_ascii_lowercase().as_str()) {
            self.error(
                Diagnostic::at(
                    format!("`{name}*{term}`: a coefficient cannot be fixed at `{name}`"),
                    label.span,
                )
                .with_expected("a label, or a finite number to fix the coefficient at")
                .with_hint(format!("to estimate it freely, write `{term}`")),
            );
            return;
        }
        match self.scope.lookup(name, usize::MAX) {
            Lookup::Column(_) | Lookup::Let | Lookup::LaterLet(_) => {
                self.error(
                    Diagnostic::at(
                        format!(
                            "`{name}*{term}`: in tandem `*` names a coefficient (lavaan style); \
                             to cross two variables write `{name} + {term} + {name}:{term}`"
                        ),
                        label.span,
                    )
                    .with_hint(format!(
                        "`{name}` is a column or `let`, so it cannot be a label; to label the \
                         coefficient of `{term}`, pick another name"
                    )),
                );
            }
            Lookup::Vary => self.error(
                Diagnostic::at(format!("the label `{name}` is the `vary` name"), label.span)
                    .with_hint("pick another label"),
            ),
            Lookup::Unknown => {}
        }
        if self.definition_names.iter().any(|(d, _)| d == name) {
            self.error(
                Diagnostic::at(
                    format!("the label `{name}` is also the name of a `:=` definition"),
                    label.span,
                )
                .with_hint(
                    "a name is either a coefficient's label or a defined quantity; rename one",
                ),
            );
        }
    }
}

/// A term as written: its factors joined by `:`.
fn written(factors: &[Ident]) -> String {
    factors
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(":")
}

/// An outcome among its own predictors: the fit would explain it by itself.
fn own_predictor(name: &str, span: Span) -> Diagnostic {
    Diagnostic::at(
        format!("the outcome `{name}` is also a predictor in its own equation"),
        span,
    )
    .with_expected("predictors other than the outcome")
    .with_hint(format!(
        "an outcome cannot explain itself; for its earlier value write `let {name}_lag = \
         lag({name})` and use `{name}_lag`"
    ))
}

/// The names an expression reads from the same row. `lag` and `lead` read other rows (another
/// observation), so an autoregressive predictor `lag(y)` does not make `y` depend on itself.
fn names_read(expr: &Expr, names: &mut BTreeSet<String>) {
    match &expr.kind {
        ExprKind::Name(name) => {
            names.insert(name.clone());
        }
        ExprKind::Unary { operand, .. } => names_read(operand, names),
        ExprKind::Binary { lhs, rhs, .. } => {
            names_read(lhs, names);
            names_read(rhs, names);
        }
        ExprKind::Call { function, args } => {
            let other_rows = crate::functions::find(&function.name, Context::Preparation)
                .is_some_and(|f| matches!(f.id, Builtin::Lag | Builtin::Lead));
            if !other_rows {
                for arg in args {
                    names_read(&arg.value, names);
                }
            }
        }
        ExprKind::Number(_) | ExprKind::String(_) | ExprKind::Missing => {}
    }
}

/// The names each `let` reads from the same row.
fn let_reads(file: &ModelFile) -> BTreeMap<&str, BTreeSet<String>> {
    let mut lets: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for statement in &file.statements {
        if let Statement::Let { name, value, .. } = statement {
            let mut names = BTreeSet::new();
            names_read(value, &mut names);
            // A second `let` of a name is reported elsewhere; the first one counts.
            lets.entry(name.name.as_str()).or_insert(names);
        }
    }
    lets
}

/// Each name an equation reads, directly or through `let`s, with the predictor written in the
/// equation that reads it; and the names written directly.
fn names_read_by(
    equation: &Equation,
    local: &[RandomTermSpec],
    lets: &BTreeMap<&str, BTreeSet<String>>,
) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut direct: BTreeSet<String> = BTreeSet::new();
    for term in &equation.terms {
        if let FormulaTerm::Fixed { factors, .. } = term {
            direct.extend(factors.iter().map(|f| f.name.clone()));
        }
    }
    for term in local {
        for effect in &term.effects {
            direct.extend(effect.variables.iter().cloned());
        }
    }
    let mut read: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<(String, String)> =
        direct.iter().map(|n| (n.clone(), n.clone())).collect();
    while let Some((name, written)) = pending.pop() {
        if let std::collections::btree_map::Entry::Vacant(e) = read.entry(name.clone()) {
            e.insert(written.clone());
            if let Some(inner) = lets.get(name.as_str()) {
                pending.extend(inner.iter().map(|n| (n.clone(), written.clone())));
            }
        }
    }
    (read, direct)
}

/// The loop through `start` along "is predicted by", found breadth-first: `start`, then who
/// predicts whom back to `start` (`[start, start]` for an equation that reads itself).
fn loop_back_to(start: usize, predictors: &[BTreeSet<usize>]) -> Option<Vec<usize>> {
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut closing = None;
    while let Some(node) = queue.pop_front() {
        for &next in &predictors[node] {
            if next == start {
                closing = Some(node);
                break;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = parent.entry(next) {
                e.insert(node);
                queue.push_back(next);
            }
        }
        if closing.is_some() {
            break;
        }
    }
    let mut node = closing?;
    // The chain start <- ... <- node <- start, read backwards, is who predicts whom.
    let mut chain = vec![start, node];
    while node != start {
        node = parent[&node];
        chain.push(node);
    }
    chain.dedup();
    if chain.len() == 1 {
        chain.push(start);
    }
    Some(chain)
}

impl Checker<'_> {
    /// Equations must form a recursive system: following "is predicted by" from an outcome
    /// (through `let`s computed from outcomes) must never come back to it. A loop
    /// (`M ~ Y`, `Y ~ M`) is a simultaneous-equation model, which equation-by-equation
    /// likelihoods do not fit; fitting it anyway would silently estimate something else.
    fn check_loops(
        &mut self,
        file: &ModelFile,
        equations: &[&Equation],
        local: &[Vec<RandomTermSpec>],
    ) {
        let lets = let_reads(file);
        // predictors[i]: the equations whose outcomes equation i reads, directly or via lets.
        let mut predictors: Vec<BTreeSet<usize>> = Vec::new();
        // through[i]: the predictor of equation i that reads its own outcome, if any.
        let mut through: Vec<String> = Vec::new();
        for (index, equation) in equations.iter().enumerate() {
            let (read, direct) = names_read_by(equation, &local[index], &lets);
            through.push(read.get(&equation.lhs.name).cloned().unwrap_or_default());
            predictors.push(
                equations
                    .iter()
                    .enumerate()
                    .filter(|(other, e)| {
                        let name = &e.lhs.name;
                        // Written directly in its own equation: reported at the term.
                        read.contains_key(name) && !(*other == index && direct.contains(name))
                    })
                    .map(|(other, _)| other)
                    .collect(),
            );
        }
        let mut reported: BTreeSet<usize> = BTreeSet::new();
        for start in 0..equations.len() {
            if reported.contains(&start) {
                continue;
            }
            let Some(chain) = loop_back_to(start, &predictors) else {
                continue;
            };
            reported.extend(chain.iter().copied());
            self.report_loop(equations, &chain, &through);
        }
    }

    /// A loop found from `chain[0]`: an outcome reading itself through a `let`, or equations
    /// predicting each other around.
    fn report_loop(&mut self, equations: &[&Equation], chain: &[usize], through: &[String]) {
        let start = chain[0];
        let name = |i: &usize| format!("`{}`", equations[*i].lhs.name);
        let diagnostic = if chain.len() == 2 {
            Diagnostic::at(
                format!(
                    "the outcome {} predicts itself through `{}`, a `let` computed from it",
                    name(&start),
                    through[start]
                ),
                equations[start].lhs.span,
            )
            .with_hint("an outcome cannot explain itself; for its earlier value use `lag`")
        } else {
            Diagnostic::at(
                format!(
                    "the equations form a loop: {} (each predicts the next)",
                    chain.iter().map(name).collect::<Vec<_>>().join(" → ")
                ),
                equations[start].lhs.span,
            )
            .with_expected("a recursive system: no outcome predicts itself through others")
            .with_hint(format!(
                "remove one predictor of the loop from its equation, e.g. {} from the \
                 equation of {}",
                name(&chain[chain.len() - 2]),
                name(&start)
            ))
        };
        self.error(diagnostic);
    }
}
