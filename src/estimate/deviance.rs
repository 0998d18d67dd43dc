//! The profiled ML/REML deviance of a linear mixed model as a function of the covariance
//! parameters, evaluated from sufficient statistics only (Bates et al. 2015, JSS 67(1), 3.1-3.6;
//! MixedModels.jl's blocked Cholesky).
//!
//! Owns the parameter layout (θ per term, lower-triangular column-major as lme4, then log δ per
//! residual class after the first, then — with `residual correlated within` — the within-unit
//! correlation ρ on a logistic scale, bounded to (−1/(k_max − 1), 1) so that every unit's
//! correlation matrix stays positive definite), the blocked Cholesky of
//!
//! ```text
//!   [ Λ'Z'WZΛ + I   Λ'Z'WX   Λ'Z'Wy ]
//!   [ X'WZΛ         X'WX     X'Wy   ]
//!   [ y'WZΛ         y'WX     y'Wy   ]
//! ```
//!
//! and the deviance, β̂ and Cov(β̂) read off it. Terms are ordered by number of levels, largest
//! first. The first term's block is block-diagonal (one q×q Cholesky per level). The remaining
//! terms' levels are split into connected components of the fill-in graph (two levels are
//! connected when they co-occur with each other or with the same level of the first term); the
//! Schur complement is block-diagonal over components, so nested factors (sessions in patients)
//! cost one small dense Cholesky per outer group and crossed factors one dense block. Every
//! evaluation costs per level, never per row. This module must not optimize.

use nalgebra::{DMatrix, DMatrixView, DVector};

use crate::design::{Design, SeriesClass, SufficientStatistics};

use super::dense::{
    cholesky, cholesky_inverse, combine, forward_solve, lower_t_mul, mul_lower, sub_at_b, weighted,
};
use crate::model::Method;

mod gradient;
pub use gradient::LogDiagonal;

/// Statistics of one level, combined over classes per evaluation: (class, Z'Z, Z'[X y]).
type ClassBlocks = Vec<(usize, Vec<f64>, Vec<f64>)>;
/// Cross-product blocks per class.
type ClassCross = Vec<(usize, Vec<f64>)>;

#[derive(Debug, Clone)]
struct TermLayout {
    q: usize,
    correlated: bool,
    /// Position of the term's first θ in the parameter vector.
    offset: usize,
}

impl TermLayout {
    fn ntheta(&self) -> usize {
        if self.correlated {
            self.q * (self.q + 1) / 2
        } else {
            self.q
        }
    }
}

#[derive(Debug, Clone)]
struct FirstLevel {
    blocks: ClassBlocks,
    /// (trailing node, Z_1'Z_k oriented q1×qk per class).
    links: Vec<(usize, ClassCross)>,
}

#[derive(Debug, Clone)]
struct Node {
    term: usize,
    component: usize,
    offset: usize,
    blocks: ClassBlocks,
}

#[derive(Debug, Clone, Default)]
struct Component {
    size: usize,
    nodes: Vec<usize>,
    /// (node a, node b, Z_a'Z_b per class), a ≠ b.
    cross: Vec<(usize, usize, ClassCross)>,
}

/// The first term's update of the components' Schur complements, −Σ_j k_j k_j', when every
/// term is scalar. Level j's links give the products k_ja k_jb; applied level by level they are
/// scattered writes into a dense block (with thousands of crossed levels, a cache miss each), so
/// they are listed once, sorted by the entry they update, and streamed in that order.
#[derive(Debug, Clone)]
struct ScalarUpdates {
    /// Where level j's link values start in the flat array of all links' values.
    link_start: Vec<usize>,
    /// Per component: (index of k_a, index of k_b, entry of the lower triangle), sorted by entry.
    updates: Vec<Vec<(u32, u32, u32)>>,
}

impl ScalarUpdates {
    fn new(first_levels: &[FirstLevel], nodes: &[Node], components: &[Component]) -> Option<Self> {
        let mut link_start = Vec::with_capacity(first_levels.len() + 1);
        // Per node, the links that reach it: (level, index of the link's value).
        let mut reached: Vec<Vec<(usize, u32)>> = vec![Vec::new(); nodes.len()];
        let mut total = 0usize;
        for (j, level) in first_levels.iter().enumerate() {
            link_start.push(total);
            for (i, (n, _)) in level.links.iter().enumerate() {
                reached[*n].push((j, u32::try_from(total + i).ok()?));
            }
            total += level.links.len();
        }
        link_start.push(total);
        // Listed column by column of each component's lower triangle, levels in order, then
        // ordered by row within the column with a counting sort: sorted by entry, and within an
        // entry in level order (the sums' digits). Per column the work stays in cache; a
        // counting sort over all entries at once scattered millions of writes (70 ms on InstEval).
        let mut updates: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); components.len()];
        let mut column: Vec<(u32, u32, u32)> = Vec::new();
        let mut count: Vec<u32> = Vec::new();
        for (list, comp) in updates.iter_mut().zip(components) {
            let size = comp.size;
            let mut by_offset: Vec<usize> = comp.nodes.clone();
            by_offset.sort_by_key(|&n| nodes[n].offset);
            for &nb in &by_offset {
                let ob = nodes[nb].offset;
                column.clear();
                for &(j, kb) in &reached[nb] {
                    let first = link_start[j];
                    for (i, (na, _)) in first_levels[j].links.iter().enumerate() {
                        let oa = nodes[*na].offset;
                        if oa < ob {
                            continue;
                        }
                        column.push((
                            u32::try_from(first + i).ok()?,
                            kb,
                            u32::try_from(ob * size + oa).ok()?,
                        ));
                    }
                }
                let base = ob * size + ob;
                count.clear();
                count.resize(size - ob + 1, 0);
                for u in &column {
                    count[u.2 as usize - base + 1] += 1;
                }
                for i in 1..count.len() {
                    count[i] += count[i - 1];
                }
                let at = list.len();
                list.resize(at + column.len(), (0, 0, 0));
                for &u in &column {
                    let slot = &mut count[u.2 as usize - base];
                    list[at + *slot as usize] = u;
                    *slot += 1;
                }
            }
        }
        Some(ScalarUpdates {
            link_start,
            updates,
        })
    }
}

/// Compound symmetry within units (no random terms): the per-size statistics and ρ's bounds.
#[derive(Debug, Clone)]
struct Within {
    nclasses: usize,
    /// (unit size, number of units, Σ_u S_uc S_ud' per class pair `c * nclasses + d`).
    sizes: Vec<(usize, usize, Vec<Vec<f64>>)>,
    /// ρ's lower bound −1/(k_max − 1).
    lower: f64,
}

impl Within {
    fn rho(&self, x: f64) -> f64 {
        self.lower + (1.0 - self.lower) / (1.0 + (-x).exp())
    }
    /// dρ/dx.
    fn rho_derivative(&self, x: f64) -> f64 {
        let s = 1.0 / (1.0 + (-x).exp());
        (1.0 - self.lower) * s * (1.0 - s)
    }
    /// The unconstrained value of `rho`.
    fn unconstrained(&self, rho: f64) -> f64 {
        let u = (rho - self.lower) / (1.0 - self.lower);
        (u / (1.0 - u)).ln()
    }
}

/// AR(1) residuals within series: the end-row and lag-1 sums of [X y]'[X y] per `SeriesClass`
/// (the levels' are classes `nclass + k` of their blocks) and N − (number of series), the power
/// of (1 − ρ²) in |R|. ρ = tanh(x) on the optimizer's scale (Fisher's z). With residual classes,
/// R = Λ^½CΛ^½ and R⁻¹ = Λ^-½C⁻¹Λ^-½: an end row of class c weighs c₂w_c, a consecutive pair of
/// classes c, d weighs c₁√(w_c w_d).
#[derive(Debug, Clone)]
struct Ar1 {
    classes: Vec<SeriesClass>,
    xy: Vec<Vec<f64>>,
    pairs: f64,
}

impl Ar1 {
    /// The series classes' weights for the end-row coefficient `end` (c₂ or its derivative) and
    /// the lag-1 coefficient `lag` (c₁ or its derivative), with the residual classes' `class_w`.
    fn weights(&self, class_w: &[f64], end: f64, lag: f64) -> Vec<f64> {
        self.classes
            .iter()
            .map(|class| match *class {
                SeriesClass::End(c) => end * class_w[c],
                SeriesClass::Lag(c, d) if c == d => lag * class_w[c],
                SeriesClass::Lag(c, d) => lag * (class_w[c] * class_w[d]).sqrt(),
            })
            .collect()
    }

    /// −∂ log w_k / ∂ log δ_e of series class k's weight: 2 for the end rows of class e, and for
    /// a pair the number of its two rows in class e.
    fn delta_power(class: SeriesClass, e: usize) -> f64 {
        match class {
            SeriesClass::End(c) => 2.0 * f64::from(u8::from(c == e)),
            SeriesClass::Lag(c, d) => f64::from(u8::from(c == e) + u8::from(d == e)),
        }
    }

    /// c₀, c₂, c₁ of R⁻¹ = c₀I + c₂(e₁e₁' + eₙeₙ') + c₁(S + S') and their derivatives in ρ.
    fn coefficients(rho: f64) -> ([f64; 3], [f64; 3]) {
        let d = 1.0 - rho * rho;
        let values = [(1.0 + rho * rho) / d, -rho * rho / d, -rho / d];
        let derivatives = [
            4.0 * rho / (d * d),
            -2.0 * rho / (d * d),
            -(1.0 + rho * rho) / (d * d),
        ];
        (values, derivatives)
    }
}

/// The profiled deviance of one design: built once, evaluated many times.
#[derive(Debug, Clone)]
pub struct ProfiledDeviance {
    method: Method,
    p: usize,
    n_class: Vec<usize>,
    terms: Vec<TermLayout>,
    ntheta: usize,
    /// The term with most levels (block-diagonal), if any random term exists.
    first: Option<usize>,
    first_levels: Vec<FirstLevel>,
    nodes: Vec<Node>,
    components: Vec<Component>,
    xy: Vec<Vec<f64>>,
    /// Largest q over terms (workspace size).
    qmax: usize,
    /// When every term is scalar: the first term's Schur updates of the components, sorted by
    /// target (see `ScalarUpdates`).
    scalar_updates: Option<ScalarUpdates>,
    within: Option<Within>,
    ar1: Option<Ar1>,
}

/// What one evaluation yields besides the deviance.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// log |L_Z|², the random-effects part of the Cholesky.
    pub ld_l2: f64,
    /// log |R_X|².
    pub ld_rx2: f64,
    /// Penalised weighted residual sum of squares r².
    pub pwrss: f64,
    pub beta: DVector<f64>,
    /// Lower-triangular L_X with L_X L_X' = R_X'R_X.
    pub lx: DMatrix<f64>,
    /// log |R| for the residual covariance R = σ²·(this): −Σ n_c log w_c for the classes' weights,
    /// plus the within-unit correlation's log-determinant.
    pub weight_term: f64,
}

/// What a fit reports at its optimum, from one factorization (`ProfiledDeviance::conditional`).
#[derive(Debug, Clone)]
pub struct Conditional {
    pub evaluation: Evaluation,
    /// Per term, a row of conditional modes per level (lme4's `ranef`).
    pub modes: Vec<DMatrix<f64>>,
    /// Per term, a q×q conditional covariance per level before σ² (lme4's `condVar` / σ²).
    pub covariances: Vec<Vec<DMatrix<f64>>>,
}

/// Why the deviance cannot be evaluated at a parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum DevianceError {
    /// [X y]'s Schur complement is not positive definite: X is rank deficient (or y is fitted
    /// exactly).
    FixedRankDeficient,
    WrongLength {
        expected: usize,
        got: usize,
    },
    NonFinite,
}

/// The transpose of a column-major r×c matrix.
fn transpose(data: &[f64], r: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for j in 0..c {
        for i in 0..r {
            out[i * c + j] = data[j * r + i];
        }
    }
    out
}

/// Each term's place in the parameter vector, and the number of θ.
fn term_layouts(design: &Design) -> (Vec<TermLayout>, usize) {
    let mut terms = Vec::new();
    let mut offset = 0;
    for (k, f) in design.stats.factors.iter().enumerate() {
        let layout = TermLayout {
            q: f.q,
            correlated: design.random[k].correlated,
            offset,
        };
        offset += layout.ntheta();
        terms.push(layout);
    }
    (terms, offset)
}

/// Level j of term k's statistics per class.
fn level_blocks(stats: &SufficientStatistics, k: usize, j: usize) -> ClassBlocks {
    let f = &stats.factors[k];
    let mut blocks: ClassBlocks = f.blocks[f.level_start[j]..f.level_start[j + 1]]
        .iter()
        .map(|b| (b.class, b.zz.clone(), b.zxy.clone()))
        .collect();
    // AR(1)'s end-row and lag-1 sums as two more classes after the residual classes: their
    // weights (`combine_weights`) carry c₂(ρ) and c₁(ρ).
    if let Some(a) = &stats.ar1 {
        let f = &a.factors[k];
        if j < f.nlevels {
            blocks.extend(
                f.blocks[f.level_start[j]..f.level_start[j + 1]]
                    .iter()
                    .map(|b| (stats.n.len() + b.class, b.zz.clone(), b.zxy.clone())),
            );
        }
    }
    blocks
}

/// Trailing nodes: (term, level) for every term but the first (`order[0]`), and per term its
/// levels' node numbers.
fn trailing_nodes(stats: &SufficientStatistics, order: &[usize]) -> (Vec<Vec<usize>>, Vec<Node>) {
    let mut node_id = vec![Vec::new(); stats.factors.len()];
    let mut nodes = Vec::new();
    for &k in order.iter().skip(1) {
        node_id[k] = (0..stats.factors[k].nlevels)
            .map(|j| {
                nodes.push(Node {
                    term: k,
                    component: 0,
                    offset: 0,
                    blocks: level_blocks(stats, k, j),
                });
                nodes.len() - 1
            })
            .collect();
    }
    (node_id, nodes)
}

/// Each block of two terms' co-occurring levels: a link of a first-term level to a node, or a
/// block between two trailing nodes (whose nodes are then united), returned as
/// (node a, node b, class, Z_a'Z_b).
fn place_cross_blocks(
    stats: &SufficientStatistics,
    first: Option<usize>,
    node_id: &[Vec<usize>],
    first_levels: &mut [FirstLevel],
    parent: &mut [usize],
) -> Vec<(usize, usize, usize, Vec<f64>)> {
    let mut trailing_cross = Vec::new();
    let nclass = stats.n.len();
    let ordinary = stats.cross.iter().map(|c| (c, 0));
    let series = stats
        .ar1
        .iter()
        .flat_map(|a| a.cross.iter().map(|c| (c, nclass)));
    for (cr, class_offset) in ordinary.chain(series) {
        let (qa, qb) = (stats.factors[cr.a].q, stats.factors[cr.b].q);
        for b in &cr.blocks {
            let zz = b.zz.clone();
            let b = &crate::design::CrossBlock {
                class: b.class + class_offset,
                zz: Vec::new(),
                ..*b
            };
            if Some(cr.a) == first || Some(cr.b) == first {
                let (j, node, block) = if Some(cr.a) == first {
                    (b.level_a, node_id[cr.b][b.level_b], zz)
                } else {
                    (b.level_b, node_id[cr.a][b.level_a], transpose(&zz, qa, qb))
                };
                let links = &mut first_levels[j].links;
                match links.iter_mut().find(|(n, _)| *n == node) {
                    Some((_, blocks)) => blocks.push((b.class, block)),
                    None => links.push((node, vec![(b.class, block)])),
                }
            } else {
                let (na, nb) = (node_id[cr.a][b.level_a], node_id[cr.b][b.level_b]);
                union(parent, na, nb);
                trailing_cross.push((na, nb, b.class, zz));
            }
        }
    }
    trailing_cross
}

/// The components of the fill-in graph (`parent`'s sets), each node's component and offset in
/// it, and each component's blocks between its nodes.
fn connected_components(
    stats: &SufficientStatistics,
    nodes: &mut [Node],
    parent: &mut [usize],
    trailing_cross: Vec<(usize, usize, usize, Vec<f64>)>,
) -> Vec<Component> {
    let mut components: Vec<Component> = Vec::new();
    let mut component_of_root = vec![usize::MAX; nodes.len()];
    for (i, node) in nodes.iter_mut().enumerate() {
        let r = find(parent, i);
        if component_of_root[r] == usize::MAX {
            component_of_root[r] = components.len();
            components.push(Component::default());
        }
        let c = component_of_root[r];
        let comp = &mut components[c];
        node.component = c;
        node.offset = comp.size;
        comp.size += stats.factors[node.term].q;
        comp.nodes.push(i);
    }
    for (na, nb, class, zz) in trailing_cross {
        let comp = &mut components[nodes[na].component];
        match comp.cross.iter_mut().find(|(a, b, _)| *a == na && *b == nb) {
            Some((_, _, blocks)) => blocks.push((class, zz)),
            None => comp.cross.push((na, nb, vec![(class, zz)])),
        }
    }
    components
}

impl ProfiledDeviance {
    pub fn new(design: &Design, method: Method) -> Self {
        let stats: &SufficientStatistics = &design.stats;
        let p = stats.p;
        let (terms, ntheta) = term_layouts(design);

        let mut order: Vec<usize> = (0..stats.factors.len()).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(stats.factors[k].nlevels));
        let first = order.first().copied();

        let (node_id, mut nodes) = trailing_nodes(stats, &order);
        let mut first_levels: Vec<FirstLevel> = match first {
            Some(f) => (0..stats.factors[f].nlevels)
                .map(|j| FirstLevel {
                    blocks: level_blocks(stats, f, j),
                    links: Vec::new(),
                })
                .collect(),
            None => Vec::new(),
        };
        let mut parent: Vec<usize> = (0..nodes.len()).collect();
        let trailing_cross =
            place_cross_blocks(stats, first, &node_id, &mut first_levels, &mut parent);
        for level in &first_levels {
            for w in level.links.windows(2) {
                union(&mut parent, w[0].0, w[1].0);
            }
        }
        let components = connected_components(stats, &mut nodes, &mut parent, trailing_cross);

        let all_scalar = stats.factors.iter().all(|f| f.q == 1);
        let scalar_updates = if all_scalar && first.is_some() {
            ScalarUpdates::new(&first_levels, &nodes, &components)
        } else {
            None
        };
        ProfiledDeviance {
            scalar_updates,
            method,
            p,
            n_class: stats.n.clone(),
            terms,
            ntheta,
            first,
            first_levels,
            nodes,
            components,
            xy: stats.xy.clone(),
            qmax: stats.factors.iter().map(|f| f.q).max().unwrap_or(0),
            within: stats.within.as_ref().map(|w| {
                let kmax = w.sizes.iter().map(|s| s.size).max().unwrap_or(1).max(2);
                Within {
                    nclasses: stats.n.len(),
                    sizes: w
                        .sizes
                        .iter()
                        .map(|s| (s.size, s.units, s.outer.clone()))
                        .collect(),
                    lower: -1.0 / (kmax as f64 - 1.0),
                }
            }),
            ar1: stats.ar1.as_ref().map(|a| Ar1 {
                classes: a.classes.clone(),
                xy: a.xy.clone(),
                pairs: (stats.n.iter().sum::<usize>() - a.nseries) as f64,
            }),
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }
    /// Number of θ parameters.
    pub fn ntheta(&self) -> usize {
        self.ntheta
    }
    /// Number of free relative residual SDs (log δ), one per class after the first.
    pub fn ndelta(&self) -> usize {
        self.n_class.len() - 1
    }
    pub fn nobs(&self) -> usize {
        self.n_class.iter().sum()
    }
    pub fn p(&self) -> usize {
        self.p
    }
    /// Number of residual correlation parameters (1 with `correlated within`, else 0).
    pub fn ncorrelation(&self) -> usize {
        usize::from(self.within.is_some() || self.ar1.is_some())
    }

    /// Whether the residuals are AR(1) within series (the correlation parameter is φ).
    pub fn is_ar1(&self) -> bool {
        self.ar1.is_some()
    }

    /// The weights of the statistics' classes in an evaluation: w_c per residual class, and with
    /// AR(1) c₀·w_c, then c₂w_c and c₁√(w_c w_d) for the end-row and lag-1 classes.
    fn combine_weights(&self, log_delta: &[f64], correlation: &[f64]) -> Vec<f64> {
        let mut w = self.weights(log_delta);
        if let (Some(ar1), Some(&x)) = (&self.ar1, correlation.first()) {
            let ([c0, c2, c1], _) = Ar1::coefficients(x.tanh());
            let series = ar1.weights(&w, c2, c1);
            w.iter_mut().for_each(|v| *v *= c0);
            w.extend(series);
        }
        w
    }
    /// The optimizer's parameter count: θ, log δ, then the correlation's unconstrained value.
    pub fn nparams(&self) -> usize {
        self.ntheta + self.ndelta() + self.ncorrelation()
    }

    /// The within-unit residual correlation ρ at `x = (θ, log δ, ρ's unconstrained value)`.
    pub fn correlation(&self, x: &[f64]) -> Option<f64> {
        let at = x.get(self.ntheta + self.ndelta())?;
        if self.ar1.is_some() {
            return Some(at.tanh());
        }
        let w = self.within.as_ref()?;
        Some(w.rho(*at))
    }

    /// lme4's start: T = I for every term, every δ = 1; ρ = 0.
    pub fn start(&self) -> Vec<f64> {
        let mut x = vec![0.0; self.nparams()];
        if let Some(w) = &self.within {
            x[self.ntheta + self.ndelta()] = w.unconstrained(0.0);
        }
        for t in &self.terms {
            let mut i = t.offset;
            for j in 0..t.q {
                x[i] = 1.0;
                i += if t.correlated { t.q - j } else { 1 };
            }
        }
        x
    }

    /// A scale per optimizer parameter for the optimizer's standardised coordinates: for a θ
    /// entry, the root mean square of the random-effect column its row multiplies (so that
    /// s·θ is the same for any unit of that column); 1 for log δ and ρ.
    pub fn parameter_scales(&self) -> Vec<f64> {
        let mut sums: Vec<Vec<f64>> = self.terms.iter().map(|t| vec![0.0; t.q]).collect();
        let mut add = |k: usize, blocks: &ClassBlocks| {
            let q = self.terms[k].q;
            let ordinary = blocks.iter().filter(|(c, ..)| *c < self.n_class.len());
            for (_, zz, _) in ordinary {
                for (r, s) in sums[k].iter_mut().enumerate() {
                    *s += zz[r * q + r];
                }
            }
        };
        if let Some(f) = self.first {
            for level in &self.first_levels {
                add(f, &level.blocks);
            }
        }
        for node in &self.nodes {
            add(node.term, &node.blocks);
        }
        let n = self.nobs().max(1) as f64;
        let mut out = vec![1.0; self.nparams()];
        for (i, (k, r, _)) in self.theta_entries().into_iter().enumerate() {
            let s = (sums[k][r] / n).sqrt();
            out[i] = if s.is_finite() && s > 0.0 { s } else { 1.0 };
        }
        out
    }

    /// A start from moments, in the parameter layout: each diagonal θ entry from the spread of
    /// its column's level sums of the least-squares residuals, E[u_j²] ≈ d_j σ² + d_j² σ_b²
    /// (u_j = z_j'r, d_j = z_j'z_j; for an intercept the one-way ANOVA estimator), with σ² the
    /// residual variance left after the random variances; off-diagonals, log δ and ρ as in
    /// `start`. Crossed factors with many levels start far from the optimum at T = c·I (InstEval
    /// spends most of its gradients getting there); this costs one pass over the levels' sums.
    /// `None` when X'X is singular or no spread is left for the residual.
    pub fn moment_start(&self) -> Option<Vec<f64>> {
        let (p, m) = (self.p, self.p + 1);
        let mut xy = vec![0.0; m * m];
        combine(
            &mut xy,
            self.xy.iter().enumerate().map(|(c, s)| (c, s.as_slice())),
            &vec![1.0; self.n_class.len()],
        );
        let full = DMatrix::from_column_slice(m, m, &xy);
        let beta = if p == 0 {
            DVector::zeros(0)
        } else {
            full.view((0, 0), (p, p))
                .into_owned()
                .cholesky()?
                .solve(&full.view((0, p), (p, 1)).into_owned())
                .column(0)
                .into_owned()
        };
        let n = self.nobs() as f64;
        let rss = full[(p, p)] - full.view((0, p), (p, 1)).dot(&beta);
        let total = rss / (n - p as f64).max(1.0);
        if !(total.is_finite() && total > 0.0) {
            return None;
        }
        // Per term and row: Σ u_j², Σ d_j, Σ d_j².
        let mut sums: Vec<Vec<[f64; 3]>> = self.terms.iter().map(|t| vec![[0.0; 3]; t.q]).collect();
        let mut add = |k: usize, blocks: &ClassBlocks| {
            let q = self.terms[k].q;
            for r in 0..q {
                let (mut u, mut d) = (0.0, 0.0);
                for (_, zz, zxy) in blocks.iter().filter(|(c, ..)| *c < self.n_class.len()) {
                    d += zz[r * q + r];
                    u += zxy[p * q + r] - (0..p).map(|c| zxy[c * q + r] * beta[c]).sum::<f64>();
                }
                let s = &mut sums[k][r];
                s[0] += u * u;
                s[1] += d;
                s[2] += d * d;
            }
        };
        if let Some(f) = self.first {
            for level in &self.first_levels {
                add(f, &level.blocks);
            }
        }
        for node in &self.nodes {
            add(node.term, &node.blocks);
        }
        // σ² and the σ_b² depend on each other: a few rounds of the fixed point from σ² = the
        // total residual variance.
        let mut residual = total;
        let mut variances: Vec<Vec<f64>> = Vec::new();
        for _ in 0..4 {
            variances = sums
                .iter()
                .map(|rows| {
                    rows.iter()
                        .map(|[u2, d, d2]| ((u2 - d * residual) / d2).max(0.0))
                        .collect()
                })
                .collect();
            let explained: f64 = sums
                .iter()
                .zip(&variances)
                .flat_map(|(rows, v)| rows.iter().zip(v).map(|(s, v)| v * s[1] / n))
                .sum();
            residual = (total - explained).max(0.05 * total);
        }
        let mut x = self.start();
        for (t, v) in self.terms.iter().zip(&variances) {
            let mut i = t.offset;
            for (j, variance) in v.iter().enumerate() {
                x[i] = (variance / residual).sqrt();
                i += if t.correlated { t.q - j } else { 1 };
            }
        }
        x.iter().all(|v| v.is_finite()).then_some(x)
    }

    /// (term, row, column) of T for each θ entry, in θ's order (lower triangle column-major per
    /// term; the diagonal only for an uncorrelated term).
    pub fn theta_entries(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::with_capacity(self.ntheta);
        for (k, t) in self.terms.iter().enumerate() {
            for c in 0..t.q {
                let rows = if t.correlated { c..t.q } else { c..c + 1 };
                out.extend(rows.map(|r| (k, r, c)));
            }
        }
        out
    }

    /// Per optimizer parameter, the number of levels of its term when every parameter is the
    /// relative SD of one effect (uncorrelated terms, one residual class, no correlation
    /// parameter); otherwise `None`. A variance estimated from J levels has an information of
    /// order J/θ² in θ, which the optimizer uses as its first curvature guess.
    pub fn levels_per_parameter(&self) -> Option<Vec<usize>> {
        if self.nparams() != self.ntheta || self.terms.iter().any(|t| t.correlated && t.q > 1) {
            return None;
        }
        let mut levels = vec![0; self.terms.len()];
        if let Some(f) = self.first {
            levels[f] = self.first_levels.len();
        }
        for node in &self.nodes {
            levels[node.term] += 1;
        }
        Some(
            self.theta_entries()
                .iter()
                .map(|&(k, _, _)| levels[k])
                .collect(),
        )
    }

    /// Indices of θ that are diagonals of T (lme4's lower bound 0).
    pub fn diagonal_indices(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for t in &self.terms {
            let mut i = t.offset;
            for j in 0..t.q {
                out.push(i);
                i += if t.correlated { t.q - j } else { 1 };
            }
        }
        out
    }

    /// The relative covariance factor T of term `k` (q×q lower triangular).
    pub fn factor(&self, k: usize, theta: &[f64]) -> DMatrix<f64> {
        let t = &self.terms[k];
        let mut m = DMatrix::zeros(t.q, t.q);
        let mut i = t.offset;
        for j in 0..t.q {
            if t.correlated {
                for r in j..t.q {
                    m[(r, j)] = theta[i];
                    i += 1;
                }
            } else {
                m[(j, j)] = theta[i];
                i += 1;
            }
        }
        m
    }

    /// Flip the sign of every column of T with a negative diagonal (ΛΛ' is unchanged) so that
    /// reported θ have diagonals ≥ 0, as lme4's.
    pub fn normalise(&self, x: &mut [f64]) {
        for t in &self.terms {
            if !t.correlated {
                for v in &mut x[t.offset..t.offset + t.q] {
                    *v = v.abs();
                }
                continue;
            }
            let mut i = t.offset;
            for j in 0..t.q {
                let len = t.q - j;
                if x[i] < 0.0 {
                    for v in &mut x[i..i + len] {
                        *v = -*v;
                    }
                }
                i += len;
            }
        }
    }

    /// Class weights w_c = δ_c⁻² from the log δ part of the parameters.
    pub fn weights(&self, log_delta: &[f64]) -> Vec<f64> {
        std::iter::once(1.0)
            .chain(log_delta.iter().map(|l| (-2.0 * l).exp()))
            .collect()
    }

    /// Run the blocked Cholesky at `x = (θ, log δ)`.
    pub fn evaluate(&self, x: &[f64]) -> Result<Evaluation, DevianceError> {
        self.evaluate_keeping(x, None)
    }

    /// `evaluate`, optionally keeping the pieces of the Cholesky factor that the conditional
    /// modes need (only for `conditional` and the gradient, never for a plain evaluation).
    ///
    /// The steps of MixedModels.jl's `objective(updateL!(setθ!(m, θ)))`: set the parameters,
    /// update the blocked factor, read the objective's pieces off it.
    fn evaluate_keeping(
        &self,
        x: &[f64],
        mut keep: Option<&mut KeptFactor>,
    ) -> Result<Evaluation, DevianceError> {
        let (parameters, xy) = self.set_parameters(x)?;
        let factor = self.update_factor(&parameters, xy, keep.as_deref_mut())?;
        self.objective(&parameters, factor, keep)
    }

    /// The parameters at `x = (θ, log δ, ρ)` and the classes' weighted [X y]'[X y] (with compound
    /// symmetry, [X y]'V⁻¹[X y]) that [X y]'s Schur complement starts from.
    fn set_parameters(&self, x: &[f64]) -> Result<(Parameters, Vec<f64>), DevianceError> {
        if x.len() != self.nparams() {
            return Err(DevianceError::WrongLength {
                expected: self.nparams(),
                got: x.len(),
            });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(DevianceError::NonFinite);
        }
        let (theta, rest) = x.split_at(self.ntheta);
        let (log_delta, correlation) = rest.split_at(self.ndelta());
        let class_w = self.weights(log_delta);
        let w = self.combine_weights(log_delta, correlation);
        let m = self.p + 1;
        let t: Vec<Vec<f64>> = (0..self.terms.len())
            .map(|k| self.factor(k, theta).as_slice().to_vec())
            .collect();

        let mut xy = vec![0.0; m * m];
        combine(
            &mut xy,
            self.xy.iter().enumerate().map(|(c, s)| (c, s.as_slice())),
            &w,
        );
        let mut residual_logdet = 0.0;
        if let (Some(within), Some(&c)) = (&self.within, correlation.first()) {
            residual_logdet = compound_symmetry(within, within.rho(c), &w, &mut xy)?;
        }
        if let (Some(ar1), Some(&c)) = (&self.ar1, correlation.first()) {
            let rho = c.tanh();
            if rho.abs() >= 1.0 || rho.is_nan() {
                return Err(DevianceError::NonFinite);
            }
            // The series classes' weights follow the residual classes' in `w`.
            let series = &w[self.n_class.len()..];
            for (i, o) in xy.iter_mut().enumerate() {
                *o += ar1
                    .xy
                    .iter()
                    .zip(series)
                    .map(|(s, w)| w * s[i])
                    .sum::<f64>();
            }
            residual_logdet = ar1.pairs * (1.0 - rho * rho).ln();
        }
        let parameters = Parameters {
            t,
            w,
            class_w,
            residual_logdet,
        };
        Ok((parameters, xy))
    }

    /// The blocked Cholesky at `parameters`: the first term's levels, then each component's
    /// Schur complement, each update subtracted from [X y]'s Schur complement `xy`.
    fn update_factor(
        &self,
        parameters: &Parameters,
        xy: Vec<f64>,
        mut keep: Option<&mut KeptFactor>,
    ) -> Result<BlockedFactor, DevianceError> {
        let m = self.p + 1;
        let schur: Vec<Vec<f64>> = self
            .components
            .iter()
            .map(|c| {
                let mut s = vec![0.0; c.size * c.size];
                for i in 0..c.size {
                    s[i * c.size + i] = 1.0;
                }
                s
            })
            .collect();
        let coupling: Vec<Vec<f64>> = self
            .components
            .iter()
            .map(|c| vec![0.0; m * c.size])
            .collect();
        let mut factor = BlockedFactor {
            schur,
            coupling,
            xy,
            ld_l2: 0.0,
        };
        if let Some(f) = self.first {
            self.update_first_term(f, parameters, &mut factor, keep.as_deref_mut())?;
        }
        self.update_components(parameters, &mut factor, keep)?;
        Ok(factor)
    }

    /// The first term's levels (`scalar_first_levels` or `general_first_levels`) and their
    /// update of [X y]'s Schur complement.
    fn update_first_term(
        &self,
        f: usize,
        parameters: &Parameters,
        factor: &mut BlockedFactor,
        keep: Option<&mut KeptFactor>,
    ) -> Result<(), DevianceError> {
        let m = self.p + 1;
        let q1 = self.terms[f].q;
        // Every level's K = L⁻¹T'Z'[X y] stacked (rows: levels × q1): [X y]'s update is one
        // K'K product at the end (a vectorised gemm) instead of thousands of tiny ones.
        let rows = q1 * self.first_levels.len();
        let mut stacked = vec![0.0; rows * m];
        if let Some(updates) = &self.scalar_updates {
            let mut keep = keep;
            let values =
                self.scalar_first_levels(f, parameters, &mut stacked, factor, keep.as_deref_mut())?;
            scalar_schur_updates(&mut factor.schur, &updates.updates, &values);
            if let Some(keep) = keep {
                keep.first_links = values;
                keep.link_start = updates.link_start.clone();
            }
        } else {
            self.general_first_levels(f, parameters, &mut stacked, factor, keep)?;
        }
        let k = DMatrixView::from_slice(&stacked, rows, m);
        let ktk = k.tr_mul(&k);
        for (o, v) in factor.xy.iter_mut().zip(ktk.as_slice()) {
            *o -= v;
        }
        Ok(())
    }

    /// Each component's Schur complement: its nodes' and co-occurring nodes' blocks added to
    /// the first term's update, factored, and its coupling's K'K subtracted from [X y]'s.
    fn update_components(
        &self,
        parameters: &Parameters,
        factor: &mut BlockedFactor,
        mut keep: Option<&mut KeptFactor>,
    ) -> Result<(), DevianceError> {
        let m = self.p + 1;
        let wide = m.max(self.qmax);
        let mut scratch = BlockScratch {
            tmp: vec![0.0; self.qmax * wide],
            a: vec![0.0; self.qmax * self.qmax],
            b: vec![0.0; self.qmax * m],
            block: vec![0.0; self.qmax * self.qmax],
        };
        for (ci, comp) in self.components.iter().enumerate() {
            let size = comp.size;
            let s = &mut factor.schur[ci];
            let e = &mut factor.coupling[ci];
            for &ni in &comp.nodes {
                self.add_node_blocks(&self.nodes[ni], parameters, size, s, e, &mut scratch);
            }
            for cross in &comp.cross {
                self.add_cross_blocks(cross, parameters, size, s, &mut scratch);
            }
            factor.ld_l2 += cholesky(s, size).ok_or(DevianceError::NonFinite)?;
            let mut k = transpose(e, m, size);
            forward_solve(s, size, &mut k, m);
            sub_at_b(&mut factor.xy, m, 0, 0, &k, m, &k, m, size);
            if let Some(keep) = keep.as_deref_mut() {
                keep.components.push((std::mem::take(s), k));
            }
        }
        Ok(())
    }

    /// Adds a node's T'Z'WZT to its component's Schur complement `s` (size×size) and its
    /// T'Z'W[X y] to the component's coupling `e`.
    fn add_node_blocks(
        &self,
        node: &Node,
        parameters: &Parameters,
        size: usize,
        s: &mut [f64],
        e: &mut [f64],
        scratch: &mut BlockScratch,
    ) {
        let (t, w) = (&parameters.t, &parameters.w);
        let m = self.p + 1;
        let BlockScratch { tmp, a, b, block } = scratch;
        let tk = &t[node.term];
        let q = self.terms[node.term].q;
        let a = &mut a[..q * q];
        combine(
            a,
            node.blocks.iter().map(|(c, zz, _)| (*c, zz.as_slice())),
            w,
        );
        lower_t_mul(tk, q, a, q, &mut tmp[..q * q]);
        mul_lower(&tmp[..q * q], q, tk, q, &mut block[..q * q]);
        for j in 0..q {
            for i in 0..q {
                s[(node.offset + j) * size + node.offset + i] += block[j * q + i];
            }
        }
        let b = &mut b[..q * m];
        combine(
            b,
            node.blocks.iter().map(|(c, _, zxy)| (*c, zxy.as_slice())),
            w,
        );
        lower_t_mul(tk, q, b, m, &mut tmp[..q * m]);
        for j in 0..q {
            for i in 0..m {
                e[(node.offset + j) * m + i] += tmp[i * q + j];
            }
        }
    }

    /// Adds T_a'Z_a'WZ_bT_b of two co-occurring nodes to their component's Schur complement `s`,
    /// in both triangles.
    fn add_cross_blocks(
        &self,
        (na, nb, blocks): &(usize, usize, ClassCross),
        parameters: &Parameters,
        size: usize,
        s: &mut [f64],
        scratch: &mut BlockScratch,
    ) {
        let (t, w) = (&parameters.t, &parameters.w);
        let (na, nb) = (&self.nodes[*na], &self.nodes[*nb]);
        let BlockScratch { tmp, a, block, .. } = scratch;
        let (qa, qb) = (self.terms[na.term].q, self.terms[nb.term].q);
        let cz = &mut a[..qa * qb];
        combine(cz, blocks.iter().map(|(c, zz)| (*c, zz.as_slice())), w);
        lower_t_mul(&t[na.term], qa, cz, qb, &mut tmp[..qa * qb]);
        mul_lower(&tmp[..qa * qb], qa, &t[nb.term], qb, &mut block[..qa * qb]);
        for j in 0..qb {
            for i in 0..qa {
                let v = block[j * qa + i];
                s[(nb.offset + j) * size + na.offset + i] += v;
                s[(na.offset + i) * size + nb.offset + j] += v;
            }
        }
    }

    /// The objective's pieces from the factored blocks: [X y]'s Schur complement factored,
    /// log|R_X|², r², β̂ and the residual covariance's log-determinant.
    fn objective(
        &self,
        parameters: &Parameters,
        factor: BlockedFactor,
        keep: Option<&mut KeptFactor>,
    ) -> Result<Evaluation, DevianceError> {
        let m = self.p + 1;
        let xy = DMatrix::from_column_slice(m, m, &factor.xy);
        let chol = xy.cholesky().ok_or(DevianceError::FixedRankDeficient)?;
        let l = chol.l();
        if let Some(keep) = keep {
            keep.xy = l.clone();
        }
        let p = self.p;
        let lx = l.view((0, 0), (p, p)).into_owned();
        let c: DVector<f64> = DVector::from_iterator(p, (0..p).map(|j| l[(p, j)]));
        let r = l[(p, p)];
        let ld_rx2 = 2.0 * lx.diagonal().iter().map(|d| d.ln()).sum::<f64>();
        let beta = lx
            .transpose()
            .solve_upper_triangular(&c)
            .ok_or(DevianceError::FixedRankDeficient)?;
        let weight_term = -self
            .n_class
            .iter()
            .zip(&parameters.class_w)
            .map(|(n, w)| *n as f64 * w.ln())
            .sum::<f64>()
            + parameters.residual_logdet;
        Ok(Evaluation {
            ld_l2: factor.ld_l2,
            ld_rx2,
            pwrss: r * r,
            beta,
            lx,
            weight_term,
        })
    }

    /// The profiled criterion at `x = (θ, log δ)`: −2 log-likelihood (ML) or the REML criterion.
    pub fn criterion(&self, e: &Evaluation) -> f64 {
        let n = self.nobs() as f64;
        let two_pi = 2.0 * std::f64::consts::PI;
        match self.method {
            Method::Ml => e.ld_l2 + n * (1.0 + (two_pi * e.pwrss / n).ln()) + e.weight_term,
            Method::Reml => {
                let nr = n - self.p as f64;
                e.ld_l2 + e.ld_rx2 + nr * (1.0 + (two_pi * e.pwrss / nr).ln()) + e.weight_term
            }
        }
    }

    /// The profiled criterion, or +∞ where it cannot be evaluated (for the optimizer).
    pub fn deviance(&self, x: &[f64]) -> f64 {
        match self.evaluate(x) {
            Ok(e) => {
                let d = self.criterion(&e);
                if d.is_finite() {
                    d
                } else {
                    f64::INFINITY
                }
            }
            Err(_) => f64::INFINITY,
        }
    }

    /// σ² at the profiled optimum for `e`: r²/n (ML) or r²/(n − p) (REML).
    pub fn sigma2(&self, e: &Evaluation) -> f64 {
        let n = self.nobs() as f64;
        match self.method {
            Method::Ml => e.pwrss / n,
            Method::Reml => e.pwrss / (n - self.p as f64),
        }
    }

    pub(super) fn split_varpar(&self, varpar: &[f64]) -> Result<(Vec<f64>, f64), DevianceError> {
        if varpar.len() != self.nparams() + 1 {
            return Err(DevianceError::WrongLength {
                expected: self.nparams() + 1,
                got: varpar.len(),
            });
        }
        let mut x = varpar[..self.ntheta].to_vec();
        x.extend_from_slice(&varpar[self.ntheta + 1..]);
        Ok((x, varpar[self.ntheta]))
    }

    /// lmerTest's `devfun_vp`: the deviance at `varpar = (θ, σ, log δ…)` with β at its
    /// conditional optimum and σ explicit (not profiled). ML: log|L|² + r²/σ² + n log(2πσ²)
    /// (+ class-weight term); REML adds log|R_X|² − p log(2πσ²).
    pub fn deviance_at(&self, varpar: &[f64]) -> Result<f64, DevianceError> {
        let (x, sigma) = self.split_varpar(varpar)?;
        let e = self.evaluate(&x)?;
        let s2 = sigma * sigma;
        let n = self.nobs() as f64;
        let log2pis2 = (2.0 * std::f64::consts::PI * s2).ln();
        let ml = e.ld_l2 + e.pwrss / s2 + n * log2pis2 + e.weight_term;
        Ok(match self.method {
            Method::Ml => ml,
            Method::Reml => ml + e.ld_rx2 - self.p as f64 * log2pis2,
        })
    }

    /// −2 log-likelihood (ML, whatever the fit's method) at any β and `varpar = (θ, σ, log δ…)`:
    /// log|L|² + (r² + ‖R_X(β − β̂)‖²)/σ² + n log(2πσ²) (+ class-weight term), since the
    /// penalised weighted RSS at β exceeds its minimum r² by that quadratic form. Its Hessian
    /// over (β, varpar) is the observed information of all parameters.
    pub fn ml_deviance_at(&self, beta: &[f64], varpar: &[f64]) -> Result<f64, DevianceError> {
        if beta.len() != self.p {
            return Err(DevianceError::WrongLength {
                expected: self.p,
                got: beta.len(),
            });
        }
        let (x, sigma) = self.split_varpar(varpar)?;
        let e = self.evaluate(&x)?;
        let diff = DVector::from_column_slice(beta) - &e.beta;
        let excess = e.lx.tr_mul(&diff).norm_squared();
        let s2 = sigma * sigma;
        let n = self.nobs() as f64;
        Ok(e.ld_l2
            + (e.pwrss + excess) / s2
            + n * (2.0 * std::f64::consts::PI * s2).ln()
            + e.weight_term)
    }

    /// Cov(β̂) = σ²(R_X'R_X)⁻¹ at `varpar = (θ, σ, log δ…)` (lme4's `vcov` at the optimum).
    pub fn beta_covariance_at(&self, varpar: &[f64]) -> Result<DMatrix<f64>, DevianceError> {
        let (x, sigma) = self.split_varpar(varpar)?;
        let e = self.evaluate(&x)?;
        Ok(beta_covariance(&e, sigma * sigma))
    }
}

/// The update of the components' Schur complements by the first term when every term is scalar,
/// S −= Σ_j k_j k_j', streamed in the sorted order of `ScalarUpdates`. The entries are split
/// into fixed ranges on two tasks: an entry's updates stay together and in level order, so the
/// digits do not depend on the number of threads.
fn scalar_schur_updates(schur: &mut [Vec<f64>], updates: &[Vec<(u32, u32, u32)>], values: &[f64]) {
    fn apply(schur: &mut [f64], offset: usize, list: &[(u32, u32, u32)], values: &[f64]) {
        for &(a, b, entry) in list {
            schur[entry as usize - offset] -= values[a as usize] * values[b as usize];
        }
    }
    for (schur, list) in schur.iter_mut().zip(updates) {
        if list.len() < SPLIT_UPDATES {
            apply(schur, 0, list, values);
            continue;
        }
        // The first update of the second half's first entry: everything before it goes left.
        let middle = list[list.len() / 2].2 as usize;
        let cut = list.partition_point(|u| (u.2 as usize) < middle);
        let (left, right) = schur.split_at_mut(middle);
        let (first, second) = list.split_at(cut);
        rayon::join(
            || apply(left, 0, first, values),
            || apply(right, middle, second, values),
        );
    }
}

/// Updates from which `scalar_schur_updates` runs on two tasks (a few milliseconds of work).
const SPLIT_UPDATES: usize = 1 << 18;

impl ProfiledDeviance {
    /// The first term's levels when every term is scalar (`ScalarUpdates`): the same arithmetic
    /// as `general_first_levels` with 1×1 blocks, without the small-matrix kernels' calls.
    /// Returns the links' values k (level after level, in `FirstLevel::links` order).
    fn scalar_first_levels(
        &self,
        f: usize,
        parameters: &Parameters,
        stacked: &mut [f64],
        factor: &mut BlockedFactor,
        mut keep: Option<&mut KeptFactor>,
    ) -> Result<Vec<f64>, DevianceError> {
        let (t, w) = (&parameters.t, &parameters.w);
        let (coupling, ld_l2) = (&mut factor.coupling, &mut factor.ld_l2);
        let t1 = t[f][0];
        let m = self.p + 1;
        let rows = self.first_levels.len();
        let weighted_sum = |blocks: &mut dyn Iterator<Item = (usize, f64)>| -> f64 {
            let mut blocks = blocks.peekable();
            match blocks.next() {
                Some((c, v)) if w[c] == 1.0 && blocks.peek().is_none() => v,
                Some((c, v)) => blocks.fold(0.0 + w[c] * v, |s, (c, v)| s + w[c] * v),
                None => 0.0,
            }
        };
        let mut kxy = vec![0.0; m];
        let mut values = Vec::with_capacity(self.first_levels.iter().map(|l| l.links.len()).sum());
        if let Some(keep) = keep.as_deref_mut() {
            keep.first_l.reserve(rows);
            keep.first_kxy.reserve(rows * m);
        }
        for (j, level) in self.first_levels.iter().enumerate() {
            let a = weighted_sum(&mut level.blocks.iter().map(|(c, zz, _)| (*c, zz[0])));
            let d = t1 * a * t1 + 1.0;
            if d <= 0.0 || !d.is_finite() {
                return Err(DevianceError::NonFinite);
            }
            let l = d.sqrt();
            *ld_l2 += 2.0 * l.ln();
            let inverse = 1.0 / l;
            for (i, k) in kxy.iter_mut().enumerate() {
                let b = weighted_sum(&mut level.blocks.iter().map(|(c, _, zxy)| (*c, zxy[i])));
                *k = t1 * b * inverse;
                stacked[i * rows + j] = *k;
            }
            for (node, blocks) in &level.links {
                let node = &self.nodes[*node];
                let cz = weighted_sum(&mut blocks.iter().map(|(c, zz)| (*c, zz[0])));
                let k = t1 * cz * t[node.term][0] * inverse;
                let column = &mut coupling[node.component][node.offset * m..(node.offset + 1) * m];
                for (o, x) in column.iter_mut().zip(&kxy) {
                    *o -= x * k;
                }
                values.push(k);
            }
            if let Some(keep) = keep.as_deref_mut() {
                keep.first_l.push(l);
                keep.first_kxy.extend_from_slice(&kxy);
            }
        }
        Ok(values)
    }

    /// The first term's levels: per level L₁ = chol(T₁'Z'WZT₁ + I), K = L₁⁻¹T₁'Z'W[X y] into
    /// `stacked`, and per linked node L₁⁻¹T₁'Z₁'WZ_kT_k, whose products update the components'
    /// Schur complements and [X y] couplings.
    fn general_first_levels(
        &self,
        f: usize,
        parameters: &Parameters,
        stacked: &mut [f64],
        factor: &mut BlockedFactor,
        mut keep: Option<&mut KeptFactor>,
    ) -> Result<(), DevianceError> {
        let q1 = self.terms[f].q;
        let m = self.p + 1;
        let rows = q1 * self.first_levels.len();
        let mut scratch = LevelScratch {
            tmp: vec![0.0; self.qmax * m.max(self.qmax)],
            a: vec![0.0; q1 * q1],
            l1: vec![0.0; q1 * q1],
            b: vec![0.0; q1 * m],
            kxy: vec![0.0; q1 * m],
            cz: vec![0.0; q1 * self.qmax],
            ks: Vec::new(),
            ks_index: Vec::new(),
        };
        let mut row = 0;
        for level in &self.first_levels {
            factor.ld_l2 += self.first_level_factor(level, f, parameters, &mut scratch)?;
            let kxy = &scratch.kxy;
            for j in 0..m {
                stacked[j * rows + row..j * rows + row + q1]
                    .copy_from_slice(&kxy[j * q1..(j + 1) * q1]);
            }
            row += q1;

            self.link_products(level, f, parameters, &mut scratch);
            if let Some(keep) = keep.as_deref_mut() {
                keep.first_l.extend_from_slice(&scratch.l1);
                keep.first_kxy.extend_from_slice(&scratch.kxy);
                keep.link_start.push(keep.first_links.len());
                keep.first_links.extend_from_slice(&scratch.ks);
            }
            self.subtract_link_products(q1, &scratch, factor);
        }
        if let Some(keep) = keep {
            keep.link_start.push(keep.first_links.len());
        }
        Ok(())
    }

    /// A first-term level's L₁ = chol(T₁'Z'WZT₁ + I) and K = L₁⁻¹T₁'Z'W[X y] (into `scratch`);
    /// returns log|L₁|².
    fn first_level_factor(
        &self,
        level: &FirstLevel,
        f: usize,
        parameters: &Parameters,
        scratch: &mut LevelScratch,
    ) -> Result<f64, DevianceError> {
        let (t1, w) = (&parameters.t[f], &parameters.w);
        let q1 = self.terms[f].q;
        let m = self.p + 1;
        let LevelScratch {
            tmp, a, l1, b, kxy, ..
        } = scratch;
        let a = weighted(
            a,
            level.blocks.iter().map(|(c, zz, _)| (*c, zz.as_slice())),
            w,
        );
        lower_t_mul(t1, q1, a, q1, &mut tmp[..q1 * q1]);
        mul_lower(&tmp[..q1 * q1], q1, t1, q1, l1);
        for i in 0..q1 {
            l1[i * q1 + i] += 1.0;
        }
        let ld = cholesky(l1, q1).ok_or(DevianceError::NonFinite)?;
        let b = weighted(
            b,
            level.blocks.iter().map(|(c, _, zxy)| (*c, zxy.as_slice())),
            w,
        );
        lower_t_mul(t1, q1, b, m, kxy);
        forward_solve(l1, q1, kxy, m);
        Ok(ld)
    }

    /// A first-term level's L₁⁻¹T₁'Z₁'WZ_kT_k per linked node, side by side in `scratch.ks`.
    fn link_products(
        &self,
        level: &FirstLevel,
        f: usize,
        parameters: &Parameters,
        scratch: &mut LevelScratch,
    ) {
        let (t, w) = (&parameters.t, &parameters.w);
        let t1 = &t[f];
        let q1 = self.terms[f].q;
        let LevelScratch {
            tmp,
            l1,
            cz,
            ks,
            ks_index,
            ..
        } = scratch;
        ks.clear();
        ks_index.clear();
        for (node, blocks) in &level.links {
            let term = self.nodes[*node].term;
            let qk = self.terms[term].q;
            let cz = weighted(
                &mut cz[..q1 * qk],
                blocks.iter().map(|(c, zz)| (*c, zz.as_slice())),
                w,
            );
            lower_t_mul(t1, q1, cz, qk, &mut tmp[..q1 * qk]);
            let off = ks.len();
            ks.resize(off + q1 * qk, 0.0);
            mul_lower(&tmp[..q1 * qk], q1, &t[term], qk, &mut ks[off..]);
            forward_solve(l1, q1, &mut ks[off..], qk);
            ks_index.push((*node, off, qk));
        }
    }

    /// Subtracts a first-term level's products of its links' K from the components' couplings
    /// (against K_xy) and Schur complements (pairwise).
    fn subtract_link_products(
        &self,
        q1: usize,
        scratch: &LevelScratch,
        factor: &mut BlockedFactor,
    ) {
        let m = self.p + 1;
        let LevelScratch {
            kxy, ks, ks_index, ..
        } = scratch;
        for &(na, oa, qa) in ks_index {
            let node_a = &self.nodes[na];
            let comp = node_a.component;
            let size = self.components[comp].size;
            let ka = &ks[oa..oa + q1 * qa];
            sub_at_b(
                &mut factor.coupling[comp],
                m,
                0,
                node_a.offset,
                kxy,
                m,
                ka,
                qa,
                q1,
            );
            // Only the lower triangle: the component's Cholesky reads nothing else.
            let schur = &mut factor.schur[comp];
            for &(nb, ob, qb) in ks_index {
                let node_b = &self.nodes[nb];
                if node_b.offset > node_a.offset {
                    continue;
                }
                let kb = &ks[ob..ob + q1 * qb];
                sub_at_b(
                    schur,
                    size,
                    node_a.offset,
                    node_b.offset,
                    ka,
                    qa,
                    kb,
                    qb,
                    q1,
                );
            }
        }
    }
}

/// θ, log δ and ρ set (MixedModels.jl's `setθ!`): T per term (column-major q×q), the classes'
/// weights and compound symmetry's Σ_u log|C_u| (0 without).
struct Parameters {
    t: Vec<Vec<f64>>,
    /// The weights of the statistics' classes (`combine_weights`).
    w: Vec<f64>,
    /// The residual classes' weights w_c = δ_c⁻².
    class_w: Vec<f64>,
    residual_logdet: f64,
}

/// The blocked factor while it is updated (MixedModels.jl's `updateL!`).
struct BlockedFactor {
    /// Per component: its Schur complement (I plus the updates), factored in place at the end.
    schur: Vec<Vec<f64>>,
    /// Per component: the m×size block of [X y] against the component's columns.
    coupling: Vec<Vec<f64>>,
    /// [X y]'s Schur complement (m×m): the weighted [X y]'[X y] less every update.
    xy: Vec<f64>,
    /// log |L_Z|² so far.
    ld_l2: f64,
}

/// Working space for a trailing node's products, sized for the largest term.
struct BlockScratch {
    tmp: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    block: Vec<f64>,
}

/// Working space for one first-term level (q₁ rows), reused level after level.
struct LevelScratch {
    tmp: Vec<f64>,
    a: Vec<f64>,
    l1: Vec<f64>,
    b: Vec<f64>,
    kxy: Vec<f64>,
    cz: Vec<f64>,
    /// L₁⁻¹T₁'Z₁'WZ_kT_k of the level's links side by side, and (node, offset, q_k) of each.
    ks: Vec<f64>,
    ks_index: Vec<(usize, usize, usize)>,
}

/// Turn the classes' weighted [X y]'[X y] in `xy` into [X y]'V⁻¹[X y] for compound symmetry with
/// correlation `rho` within units, and return Σ_u log|C_u|. With s_c = √w_c,
/// V_u⁻¹ = S(a I − b_k 11')S, a = 1/(1 − ρ), b_k = ρ / ((1 − ρ)(1 + (k − 1)ρ)) for a unit of size k.
fn compound_symmetry(
    within: &Within,
    rho: f64,
    w: &[f64],
    xy: &mut [f64],
) -> Result<f64, DevianceError> {
    if !(rho > -1.0 && rho < 1.0) {
        return Err(DevianceError::NonFinite);
    }
    let a = 1.0 / (1.0 - rho);
    xy.iter_mut().for_each(|v| *v *= a);
    let s: Vec<f64> = w.iter().map(|w| w.sqrt()).collect();
    let nc = within.nclasses;
    let mut logdet = 0.0;
    for (k, units, outer) in &within.sizes {
        let k1 = *k as f64 - 1.0;
        let det = 1.0 + k1 * rho;
        if det <= 0.0 {
            return Err(DevianceError::NonFinite);
        }
        logdet += *units as f64 * (k1 * (1.0 - rho).ln() + det.ln());
        let b = rho / ((1.0 - rho) * det);
        for c in 0..nc {
            for d in 0..nc {
                let f = b * s[c] * s[d];
                for (o, v) in xy.iter_mut().zip(&outer[c * nc + d]) {
                    *o -= f * v;
                }
            }
        }
    }
    Ok(logdet)
}

/// Pieces of the blocked Cholesky factor kept for the conditional modes, the conditional
/// covariances and the gradient: per level of the first term L₁, K_xy = L₁⁻¹T₁'Z'W[X y] and per
/// linked node L₁⁻¹T₁'Z₁'WZ_kT_k; per component L_C and L_C⁻¹ of its [X y] coupling (size×m).
/// The first term's pieces are flat, level after level: with thousands of crossed levels a
/// vector per level and link cost as much as the arithmetic.
#[derive(Debug, Default)]
struct KeptFactor {
    /// L₁ (q₁×q₁) per level.
    first_l: Vec<f64>,
    /// K_xy (q₁×m) per level.
    first_kxy: Vec<f64>,
    /// The links' blocks (q₁×q_k each, in `FirstLevel::links` order), level j's from
    /// `link_start[j]`; `link_start` has one more entry than there are levels.
    first_links: Vec<f64>,
    link_start: Vec<usize>,
    components: Vec<(Vec<f64>, Vec<f64>)>,
    /// The m×m lower factor of [X y]'s Schur complement: [L_X 0; c' r].
    xy: DMatrix<f64>,
}

/// One first-term level's kept pieces: L₁, K_xy and (node, block) per link.
type KeptLevel<'a> = (&'a [f64], &'a [f64], Vec<(usize, &'a [f64])>);

impl ProfiledDeviance {
    /// Level j's kept pieces (`KeptFactor`).
    fn kept_level<'a>(&self, keep: &'a KeptFactor, j: usize) -> KeptLevel<'a> {
        let q1 = self.first.map_or(0, |f| self.terms[f].q);
        let m = self.p + 1;
        let mut offset = keep.link_start[j];
        let links = self.first_levels[j]
            .links
            .iter()
            .map(|(n, _)| {
                let len = q1 * self.terms[self.nodes[*n].term].q;
                let block = &keep.first_links[offset..offset + len];
                offset += len;
                (*n, block)
            })
            .collect();
        (
            &keep.first_l[j * q1 * q1..(j + 1) * q1 * q1],
            &keep.first_kxy[j * q1 * m..(j + 1) * q1 * m],
            links,
        )
    }
}

impl ProfiledDeviance {
    /// The evaluation at `x = (θ, log δ)`, the conditional modes of the random effects and their
    /// conditional covariances, from one factorization: what a fit reports at its optimum.
    pub fn conditional(&self, x: &[f64]) -> Result<Conditional, DevianceError> {
        let mut keep = KeptFactor::default();
        let evaluation = self.evaluate_keeping(x, Some(&mut keep))?;
        let modes = self.modes_from(x, &evaluation, &keep);
        let covariances = self.covariances_from(x, &keep);
        Ok(Conditional {
            evaluation,
            modes,
            covariances,
        })
    }

    /// The conditional modes of the random effects b = Λu with β at β̂(θ): u solves
    /// (Λ'Z'WZΛ + I)u = Λ'Z'W(y − Xβ̂) (lme4's `ranef`). One matrix per term in the design's
    /// order, a row per level (the design's level order), a column per effect. Forward
    /// elimination reuses the factor's K blocks applied to (−β̂, 1); back substitution runs
    /// components first, then the first term's levels.
    fn modes_from(&self, x: &[f64], e: &Evaluation, keep: &KeptFactor) -> Vec<DMatrix<f64>> {
        let m = self.p + 1;
        let mut ext = vec![0.0; m];
        for (i, b) in e.beta.iter().enumerate() {
            ext[i] = -b;
        }
        ext[self.p] = 1.0;
        let apply = |k: &[f64], rows: usize| -> Vec<f64> {
            (0..rows)
                .map(|i| (0..m).map(|j| k[j * rows + i] * ext[j]).sum())
                .collect()
        };
        // Spherical modes u per node (trailing terms) and per first-term level.
        let mut u_nodes: Vec<Vec<f64>> = vec![Vec::new(); self.nodes.len()];
        for (comp, (l, k)) in self.components.iter().zip(&keep.components) {
            let mut v = apply(k, comp.size);
            backward_solve(l, comp.size, &mut v);
            for &ni in &comp.nodes {
                let node = &self.nodes[ni];
                let q = self.terms[node.term].q;
                u_nodes[ni] = v[node.offset..node.offset + q].to_vec();
            }
        }
        let (theta, _) = x.split_at(self.ntheta);
        let mut out: Vec<DMatrix<f64>> =
            self.terms.iter().map(|t| DMatrix::zeros(0, t.q)).collect();
        let mut level_of_node = vec![0; self.nodes.len()];
        let mut counts = vec![0; self.terms.len()];
        for (ni, node) in self.nodes.iter().enumerate() {
            level_of_node[ni] = counts[node.term];
            counts[node.term] += 1;
        }
        for (k, t) in self.terms.iter().enumerate() {
            let levels = if Some(k) == self.first {
                self.first_levels.len()
            } else {
                counts[k]
            };
            out[k] = DMatrix::zeros(levels, t.q);
        }
        if let Some(f) = self.first {
            let q1 = self.terms[f].q;
            for j in 0..self.first_levels.len() {
                let (l1, kxy, links) = self.kept_level(keep, j);
                let mut w = apply(kxy, q1);
                for (node, kt) in &links {
                    let qk = self.terms[self.nodes[*node].term].q;
                    let u = &u_nodes[*node];
                    for (i, wi) in w.iter_mut().enumerate() {
                        *wi -= (0..qk).map(|c| kt[c * q1 + i] * u[c]).sum::<f64>();
                    }
                }
                backward_solve(l1, q1, &mut w);
                let b = self.factor(f, theta) * DVector::from_vec(w);
                out[f].row_mut(j).copy_from(&b.transpose());
            }
        }
        for (ni, node) in self.nodes.iter().enumerate() {
            let b = self.factor(node.term, theta) * DVector::from_vec(u_nodes[ni].clone());
            out[node.term]
                .row_mut(level_of_node[ni])
                .copy_from(&b.transpose());
        }
        out
    }
}

impl ProfiledDeviance {
    /// The conditional covariances of the random effects given the data, with β held at β̂ and
    /// before scaling by σ² (lme4's `condVar`, which multiplies by σ²): Λ(Λ'Z'WZΛ + I)⁻¹Λ' in
    /// per-level q×q blocks. One vector per term in the design's order, a matrix per level in
    /// the same order as the modes.
    ///
    /// Only the diagonal blocks are formed. With A = Λ'Z'WZΛ + I split into the first term's
    /// block-diagonal part A₁ = L₁L₁' per level and the Schur complement S = L_C L_C' per
    /// component: a trailing node's block is the node's diagonal block of S⁻¹, and a first-term
    /// level's block is L₁⁻ᵀ(I + Σ_ab K_a S⁻¹_ab K_b')L₁⁻¹ with K_a = L₁⁻¹T₁'Z₁'WZ_aT_a the kept
    /// links (all of one level's links lie in one component).
    fn covariances_from(&self, x: &[f64], keep: &KeptFactor) -> Vec<Vec<DMatrix<f64>>> {
        let (theta, _) = x.split_at(self.ntheta);
        // S⁻¹ per component, from L_C⁻¹ (the components are small: one per outer group when
        // nested, one block when crossed).
        let inverses: Vec<DMatrix<f64>> = self
            .components
            .iter()
            .zip(&keep.components)
            .map(|(comp, (l, _))| inverse_from_factor(l, comp.size))
            .collect();
        let mut out: Vec<Vec<DMatrix<f64>>> = vec![Vec::new(); self.terms.len()];
        if let (Some(f), Some(w), Some(updates)) = (
            self.first,
            self.scalar_link_products(keep, &inverses),
            &self.scalar_updates,
        ) {
            // Every term scalar: k'C k = Σ k w per level.
            let t1 = self.factor(f, theta)[(0, 0)];
            for (j, &l) in keep.first_l.iter().enumerate() {
                let range = updates.link_start[j]..updates.link_start[j + 1];
                let kw: f64 = keep.first_links[range.clone()]
                    .iter()
                    .zip(&w[range])
                    .map(|(k, w)| k * w)
                    .sum();
                out[f].push(DMatrix::from_element(1, 1, t1 * t1 * (1.0 + kw) / (l * l)));
            }
        } else if let Some(f) = self.first {
            let q1 = self.terms[f].q;
            let t1 = self.factor(f, theta);
            for j in 0..self.first_levels.len() {
                let (l1, _, links) = self.kept_level(keep, j);
                let mut middle = DMatrix::<f64>::identity(q1, q1);
                for (na, ka) in &links {
                    let node_a = &self.nodes[*na];
                    let qa = self.terms[node_a.term].q;
                    let ka = DMatrixView::from_slice(ka, q1, qa);
                    let inverse = &inverses[node_a.component];
                    for (nb, kb) in &links {
                        let node_b = &self.nodes[*nb];
                        if node_b.component != node_a.component {
                            continue;
                        }
                        let qb = self.terms[node_b.term].q;
                        let kb = DMatrixView::from_slice(kb, q1, qb);
                        let block = inverse.view((node_a.offset, node_b.offset), (qa, qb));
                        middle += ka * block * kb.transpose();
                    }
                }
                let l1 = DMatrix::from_column_slice(q1, q1, l1).lower_triangle();
                let l1i = l1
                    .solve_lower_triangular(&DMatrix::identity(q1, q1))
                    .unwrap_or_else(|| DMatrix::from_element(q1, q1, f64::NAN));
                let a_inv = l1i.transpose() * middle * &l1i;
                out[f].push(&t1 * a_inv * t1.transpose());
            }
        }
        for node in &self.nodes {
            let q = self.terms[node.term].q;
            let tk = self.factor(node.term, theta);
            let block = inverses[node.component].view((node.offset, node.offset), (q, q));
            out[node.term].push(&tk * block * tk.transpose());
        }
        out
    }
}

impl ProfiledDeviance {
    /// With every term scalar: w = K C_L for every first-term level at once (one value per link,
    /// in the order of the kept links), where K holds the level's links and C the inverse of its
    /// component's Schur complement. Streams C in the sorted order of the Schur updates: gathering
    /// C_L level by level is a cache miss per entry with thousands of crossed levels.
    fn scalar_link_products(
        &self,
        keep: &KeptFactor,
        inverses: &[DMatrix<f64>],
    ) -> Option<Vec<f64>> {
        let updates = self.scalar_updates.as_ref()?;
        let k = &keep.first_links;
        let accumulate = |w: &mut [f64], c: &[f64], list: &[(u32, u32, u32)]| {
            for &(a, b, entry) in list {
                let (a, b) = (a as usize, b as usize);
                let v = c[entry as usize];
                w[a] += v * k[b];
                if a != b {
                    w[b] += v * k[a];
                }
            }
        };
        let mut w = vec![0.0; k.len()];
        for (c, list) in inverses.iter().zip(&updates.updates) {
            let c = c.as_slice();
            if list.len() < SPLIT_UPDATES {
                accumulate(&mut w, c, list);
                continue;
            }
            // Two halves of the list on two tasks, each into its own sums, added in order: the
            // digits do not depend on the number of threads.
            let (first, second) = list.split_at(list.len() / 2);
            let mut other = vec![0.0; k.len()];
            rayon::join(
                || accumulate(&mut w, c, first),
                || accumulate(&mut other, c, second),
            );
            for (a, b) in w.iter_mut().zip(&other) {
                *a += b;
            }
        }
        Some(w)
    }
}

/// Solve L'x = v in place for lower-triangular L (n×n, column-major).
fn backward_solve(l: &[f64], n: usize, v: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = v[i];
        for k in i + 1..n {
            s -= l[i * n + k] * v[k];
        }
        v[i] = s / l[i * n + i];
    }
}

/// (LL')⁻¹ from the lower factor `l` (n×n, column-major).
fn inverse_from_factor(l: &[f64], n: usize) -> DMatrix<f64> {
    let mut out = DMatrix::zeros(n, n);
    cholesky_inverse(l, n, out.as_mut_slice());
    out
}

/// σ²(L_X L_X')⁻¹.
pub fn beta_covariance(e: &Evaluation, sigma2: f64) -> DMatrix<f64> {
    let p = e.lx.nrows();
    let inv =
        e.lx.solve_lower_triangular(&DMatrix::identity(p, p))
            .unwrap_or_else(|| DMatrix::from_element(p, p, f64::NAN));
    inv.tr_mul(&inv) * sigma2
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}
