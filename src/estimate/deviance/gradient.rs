//! The exact gradient of the profiled criterion with respect to every optimizer parameter (θ of
//! every term, log δ of every residual class after the first, the compound-symmetry correlation),
//! from the blocked Cholesky factor the evaluation already builds. It must not optimize.
//!
//! Why this form. Every criterion tandem minimizes is, apart from the residual classes' weight
//! term, a functional Σᵢ cᵢ log Lᵢᵢ of the diagonal of the lower factor L of
//!
//! ```text
//!   Ω = [ Λ'Z'WZΛ + I   Λ'Z'W[X y] ]
//!       [ [X y]'WZΛ     [X y]'W[X y] ]
//! ```
//!
//! (log|L_Z|², log|R_X|², log r²). Since d log Lᵢᵢ = (L⁻¹Ω̇L⁻ᵀ)ᵢᵢ / 2 (Murray 2016, "Differentiation
//! of the Cholesky decomposition"), the derivative along any parameter is ⟨S, Ω̇⟩ with one
//! S = L⁻ᵀ D L⁻¹ (D = diag(c)/2) shared by all parameters. Ω̇ is non-zero only on Ω's own
//! pattern (a level's block, the blocks of levels that co-occur, the [X y] coupling), so S is
//! needed only there:
//!
//! - S_ZZ = z·A⁻¹ + U D_X U', with A = Λ'Z'WZΛ + I and U = L_Z⁻ᵀ L_XZ' L_XX⁻ᵀ (m columns of
//!   back substitution, as the conditional modes are computed);
//! - S_ZX = −U D_X L_XX⁻¹, S_XX = L_XX⁻ᵀ D_X L_XX⁻¹;
//! - A⁻¹ on the pattern: per component of the trailing terms the dense C = S⁻¹ of its Schur
//!   complement, and per level of the first term its diagonal block and its blocks against the
//!   nodes it is linked to (a selected inverse, as the conditional covariances form it).
//!
//! One gradient therefore costs about one evaluation plus, when log|L_Z|² is part of the
//! functional, one inverse per component; never a pass over rows.

use nalgebra::{DMatrix, DMatrixView, DVector};
use rayon::prelude::*;

use super::super::dense::backward_solve;
use super::{
    inverse_from_factor, ClassCross, DevianceError, Evaluation, KeptFactor, ProfiledDeviance,
    ScalarUpdates,
};
use crate::model::Method;

/// The functional z·log|L_Z|² + x·log|R_X|² + y·log r² of the factor's diagonal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogDiagonal {
    pub z: f64,
    pub x: f64,
    pub y: f64,
}

/// Σ over the blocks of each term of the q×q matrices whose (c, r) entries are the derivatives
/// along T[r, c], and per residual class the trace that gives its weight's derivative.
struct Accumulator {
    gamma: Vec<DMatrix<f64>>,
    class: Vec<f64>,
}

/// First-term levels per task in the gradient's general (vector-term) path.
const LEVEL_CHUNK: usize = 128;

impl Accumulator {
    fn zeros(terms: &[super::TermLayout], classes: usize) -> Self {
        Accumulator {
            gamma: terms.iter().map(|t| DMatrix::zeros(t.q, t.q)).collect(),
            class: vec![0.0; classes],
        }
    }
    fn merge(&mut self, other: Accumulator) {
        for (a, b) in self.gamma.iter_mut().zip(other.gamma) {
            *a += b;
        }
        for (a, b) in self.class.iter_mut().zip(other.class) {
            *a += b;
        }
    }
    /// Add the contribution F (q_b×q_b) of one block b of term `term` and one class.
    fn add(&mut self, term: usize, t_b: &DMatrix<f64>, f: DMatrix<f64>, w: f64, class: usize) {
        self.class[class] += (t_b * &f).trace();
        for (g, f) in self.gamma[term].iter_mut().zip(f.iter()) {
            *g += w * f;
        }
    }
    /// The [X y] coupling counts twice in ⟨S, Ω̇⟩ for a class weight (its block and its transpose)
    /// and once in the θ derivative (already symmetric in the pair sum).
    fn add_coupling(
        &mut self,
        term: usize,
        t_b: &DMatrix<f64>,
        f: DMatrix<f64>,
        w: f64,
        class: usize,
    ) {
        self.class[class] += 2.0 * (t_b * &f).trace();
        for (g, f) in self.gamma[term].iter_mut().zip(f.iter()) {
            *g += w * f;
        }
    }
}

impl ProfiledDeviance {
    /// The criterion minimized by the optimizer and its exact gradient at `x = (θ, log δ, ρ)`.
    pub fn criterion_gradient(&self, x: &[f64]) -> Result<(f64, Vec<f64>), DevianceError> {
        let n = self.nobs() as f64;
        let f = match self.method {
            Method::Ml => LogDiagonal {
                z: 1.0,
                x: 0.0,
                y: n,
            },
            Method::Reml => LogDiagonal {
                z: 1.0,
                x: 1.0,
                y: n - self.p as f64,
            },
        };
        let (e, mut g) = self.log_diagonal_gradient(x, f)?;
        self.add_weight_term_gradient(x, &mut g);
        let d = self.criterion(&e);
        if !d.is_finite() || g.iter().any(|v| !v.is_finite()) {
            return Err(DevianceError::NonFinite);
        }
        Ok((d, g))
    }

    /// Adds the derivative of the residual covariance's log-determinant (`Evaluation::weight_term`).
    pub fn add_weight_term_gradient(&self, x: &[f64], g: &mut [f64]) {
        for c in 1..self.n_class.len() {
            g[self.ntheta + c - 1] += 2.0 * self.n_class[c] as f64;
        }
        if let Some(ar1) = &self.ar1 {
            // (N − series)·log(1 − ρ²) with ρ = tanh(x): derivative −2ρ(N − series).
            let i = self.ntheta + self.ndelta();
            g[i] += -2.0 * x[i].tanh() * ar1.pairs;
        }
        if let Some(within) = &self.within {
            let i = self.ntheta + self.ndelta();
            let rho = within.rho(x[i]);
            let mut d = 0.0;
            for (k, units, _) in &within.sizes {
                let k1 = *k as f64 - 1.0;
                d += *units as f64 * (-k1 / (1.0 - rho) + k1 / (1.0 + k1 * rho));
            }
            g[i] += d * within.rho_derivative(x[i]);
        }
    }

    /// The evaluation at `x` and the gradient of the functional `f` of its factor's diagonal
    /// over `x = (θ, log δ, ρ)` (the weight term excluded).
    pub fn log_diagonal_gradient(
        &self,
        x: &[f64],
        f: LogDiagonal,
    ) -> Result<(Evaluation, Vec<f64>), DevianceError> {
        let m = self.p + 1;
        let d = DMatrix::from_diagonal(&DVector::from_fn(
            m,
            |i, _| {
                if i < self.p {
                    f.x
                } else {
                    f.y
                }
            },
        ));
        let (e, mut g) = self.factor_derivatives(x, f.z, std::slice::from_ref(&d))?;
        Ok((e, g.pop().unwrap_or_default()))
    }

    /// The evaluation at `x` and, for each symmetric m×m `D` in `ds`, the derivative over
    /// `x = (θ, log δ, ρ)` of z·log|L_Z|² + tr(D L⁻¹Ω̇L⁻ᵀ) (the trace over the [X y] rows) — i.e. ⟨S, Ω̇⟩ with
    /// S = z·A⁻¹ on the random-effect block plus L⁻ᵀ D L⁻¹ from the [X y] rows. A diagonal D
    /// gives a functional of log diag(L) (`log_diagonal_gradient`); an off-diagonal one gives the
    /// derivative of an entry of W Ṁ W' (M = R_X'R_X, W = L_X⁻¹), from which Cov(β̂)'s Jacobian
    /// follows without differencing (`beta_covariance_jacobian`).
    pub(super) fn factor_derivatives(
        &self,
        x: &[f64],
        z: f64,
        ds: &[DMatrix<f64>],
    ) -> Result<(Evaluation, Vec<Vec<f64>>), DevianceError> {
        self.factor_derivatives_with(x, z, |_, _| ds.to_vec())
    }

    /// `factor_derivatives` with the weights `D` made from the evaluation at `x` and the m×m
    /// lower factor L_b of [X y]'s Schur complement (a quadratic form v'Cv of C = L_bL_b' has
    /// the derivative tr(ww' L_b⁻¹ĊL_b⁻ᵀ), w = L_b'v): one factorization serves both.
    fn factor_derivatives_with(
        &self,
        x: &[f64],
        z: f64,
        make_ds: impl FnOnce(&Evaluation, &DMatrix<f64>) -> Vec<DMatrix<f64>>,
    ) -> Result<(Evaluation, Vec<Vec<f64>>), DevianceError> {
        let mut keep = KeptFactor::default();
        let e = self.evaluate_keeping(x, Some(&mut keep))?;
        let ds = make_ds(&e, &keep.xy);
        let (theta, rest) = x.split_at(self.ntheta);
        let (log_delta, correlation) = rest.split_at(self.ndelta());
        let pieces = FactorPieces::new(self, keep, theta, (log_delta, correlation), z)?;
        let mut gradients = Vec::with_capacity(ds.len());
        for d in &ds {
            gradients.push(pieces.gradient(d, correlation)?);
        }
        Ok((e, gradients))
    }
}

/// What the passes of every weight `D` share: the kept factor at `x` and what is made from it
/// once (the factors T, the class weights, L_XX⁻¹, U per component and, with a log|L_Z|² term,
/// A⁻¹ per component).
struct FactorPieces<'a> {
    dev: &'a ProfiledDeviance,
    keep: KeptFactor,
    /// The weight of log|L_Z|².
    z: f64,
    m: usize,
    t: Vec<DMatrix<f64>>,
    w: Vec<f64>,
    lxx_inv: DMatrix<f64>,
    /// L_XX⁻ᵀ.
    rt: DMatrix<f64>,
    /// U = L_Z⁻ᵀ L_XZ' L_XX⁻ᵀ per component.
    u_comp: Vec<DMatrix<f64>>,
    /// A⁻¹ restricted to each component: the inverse of its Schur complement.
    c_comp: Vec<DMatrix<f64>>,
    scalar_w: Option<Vec<f64>>,
    /// The residual classes' weights (`w` is the statistics' classes', AR(1)'s included).
    class_w: Vec<f64>,
}

/// One weight `D` and the products every block's contribution uses.
struct Weight<'b> {
    d: &'b DMatrix<f64>,
    /// D L_XX⁻¹.
    d_linv: DMatrix<f64>,
}

/// A scalar first-term level's working vectors, reused across the levels of a chunk.
struct ScalarScratch {
    du: Vec<f64>,
    v: Vec<f64>,
    coupling: Vec<f64>,
}

impl<'a> FactorPieces<'a> {
    fn new(
        dev: &'a ProfiledDeviance,
        keep: KeptFactor,
        theta: &[f64],
        (log_delta, correlation): (&[f64], &[f64]),
        z: f64,
    ) -> Result<Self, DevianceError> {
        let w = dev.combine_weights(log_delta, correlation);
        let class_w = dev.weights(log_delta);
        let m = dev.p + 1;
        let t: Vec<DMatrix<f64>> = (0..dev.terms.len()).map(|k| dev.factor(k, theta)).collect();

        let lxx_inv = keep
            .xy
            .solve_lower_triangular(&DMatrix::identity(m, m))
            .ok_or(DevianceError::NonFinite)?;
        let rt = lxx_inv.transpose();

        // U = L_Z⁻ᵀ L_XZ' L_XX⁻ᵀ: components first, then the first term's levels.
        let u_comp: Vec<DMatrix<f64>> = dev
            .components
            .iter()
            .zip(&keep.components)
            .map(|(comp, (l, k))| {
                let mut v = DMatrix::from_column_slice(comp.size, m, k) * &rt;
                backward_solve(l, comp.size, v.as_mut_slice(), m);
                v
            })
            .collect();
        let c_comp: Vec<DMatrix<f64>> = if z != 0.0 {
            dev.components
                .iter()
                .zip(&keep.components)
                .map(|(comp, (l, _))| inverse_from_factor(l, comp.size))
                .collect()
        } else {
            Vec::new()
        };
        let scalar_w = if z != 0.0 {
            dev.scalar_link_products(&keep, &c_comp)
        } else {
            None
        };
        Ok(FactorPieces {
            dev,
            keep,
            z,
            m,
            t,
            w,
            lxx_inv,
            rt,
            u_comp,
            c_comp,
            scalar_w,
            class_w,
        })
    }

    /// U's rows of node `n`.
    fn u_node(&self, n: usize) -> DMatrix<f64> {
        let node = &self.dev.nodes[n];
        let q = self.dev.terms[node.term].q;
        self.u_comp[node.component]
            .rows(node.offset, q)
            .into_owned()
    }

    /// A⁻¹'s block between nodes `a` and `b` of one component.
    fn c_block(&self, a: usize, b: usize) -> DMatrix<f64> {
        let dev = self.dev;
        let (na, nb) = (&dev.nodes[a], &dev.nodes[b]);
        let (qa, qb) = (dev.terms[na.term].q, dev.terms[nb.term].q);
        self.c_comp[na.component]
            .view((na.offset, nb.offset), (qa, qb))
            .into_owned()
    }

    /// The derivative of z·log|L_Z|² + tr(D L⁻¹Ω̇L⁻ᵀ) over every optimizer parameter.
    fn gradient(&self, d: &DMatrix<f64>, correlation: &[f64]) -> Result<Vec<f64>, DevianceError> {
        let dev = self.dev;
        let s_xx = &self.rt * d * self.rt.transpose();
        let weight = Weight {
            d,
            d_linv: d * &self.lxx_inv,
        };
        let mut acc = Accumulator::zeros(&dev.terms, self.w.len());
        if let (Some(first), Some(updates)) = (dev.first, &dev.scalar_updates) {
            // Every term scalar: the same sums in scalar arithmetic, without a matrix per link,
            // in chunks of levels as the vector-term path below.
            let chunk = |range| self.scalar_levels(range, first, updates, &weight);
            for part in in_level_chunks(dev.first_levels.len(), chunk) {
                acc.merge(part);
            }
        } else if let Some(first) = dev.first {
            // The levels in chunks of fixed size, each with its own sums, added in chunk
            // order: parallel, with the same digits for any number of threads.
            let chunk = |range| self.general_levels(range, first, &weight);
            for part in in_level_chunks(dev.first_levels.len(), chunk) {
                acc.merge(part?);
            }
        }
        for comp in &dev.components {
            for &ni in &comp.nodes {
                self.add_node(&mut acc, ni, &weight);
            }
            for (na, nb, blocks) in &comp.cross {
                self.add_cross(&mut acc, *na, *nb, blocks, &weight);
            }
        }
        Ok(self.parameter_gradient(&acc, &s_xx, correlation))
    }

    /// The sums of the scalar first term's levels in `range`.
    fn scalar_levels(
        &self,
        range: std::ops::Range<usize>,
        first: usize,
        updates: &ScalarUpdates,
        weight: &Weight,
    ) -> Accumulator {
        let m = self.m;
        let mut acc = Accumulator::zeros(&self.dev.terms, self.w.len());
        let mut scratch = ScalarScratch {
            du: vec![0.0; m],
            v: vec![0.0; m],
            coupling: vec![0.0; m],
        };
        for j in range {
            self.scalar_level(j, first, updates, weight, &mut scratch, &mut acc);
        }
        acc
    }

    /// Adds scalar level j's blocks and links.
    fn scalar_level(
        &self,
        j: usize,
        first: usize,
        updates: &ScalarUpdates,
        weight: &Weight,
        scratch: &mut ScalarScratch,
        acc: &mut Accumulator,
    ) {
        let (dev, m, z, w) = (self.dev, self.m, self.z, &self.w);
        let (d, d_linv) = (weight.d, &weight.d_linv);
        let t1 = self.t[first][(0, 0)];
        let rt_rows = self.rt.as_slice();
        let ScalarScratch { du, v, coupling } = scratch;
        let (level, l) = (&dev.first_levels[j], self.keep.first_l[j]);
        let kxy = &self.keep.first_kxy[j * m..(j + 1) * m];
        let links = &self.keep.first_links[updates.link_start[j]..updates.link_start[j + 1]];
        // v = kxy R − Σ_n k_n U_n, u_j = v / l.
        for (i, vi) in v.iter_mut().enumerate() {
            *vi = (0..m).map(|r| kxy[r] * rt_rows[i * m + r]).sum();
        }
        for ((n, _), k) in level.links.iter().zip(links) {
            let node = &dev.nodes[*n];
            let u = &self.u_comp[node.component];
            for (i, vi) in v.iter_mut().enumerate() {
                *vi -= k * u[(node.offset, i)];
            }
        }
        v.iter_mut().for_each(|vi| *vi /= l);
        let u_j = &*v;
        let start = updates.link_start[j];
        let (ainv_jj, w_links) = match &self.scalar_w {
            Some(w) => {
                let w = &w[start..start + links.len()];
                let kw: f64 = links.iter().zip(w).map(|(k, w)| k * w).sum();
                ((1.0 + kw) / (l * l), Some(w))
            }
            None => (0.0, None),
        };
        for (i, di) in du.iter_mut().enumerate() {
            *di = (0..m).map(|r| d[(i, r)] * u_j[r]).sum();
        }
        let s_jj = z * ainv_jj + (0..m).map(|i| u_j[i] * du[i]).sum::<f64>();
        for (i, ci) in coupling.iter_mut().enumerate() {
            *ci = (0..m).map(|r| u_j[r] * d_linv[(r, i)]).sum();
        }
        for (class, zz, zxy) in &level.blocks {
            let fz = s_jj * t1 * zz[0];
            acc.class[*class] += t1 * fz;
            acc.gamma[first][(0, 0)] += w[*class] * fz;
            let fc = -(0..m).map(|i| coupling[i] * zxy[i]).sum::<f64>();
            acc.class[*class] += 2.0 * t1 * fc;
            acc.gamma[first][(0, 0)] += w[*class] * fc;
        }
        for (li, (n, blocks)) in level.links.iter().enumerate() {
            let node = &dev.nodes[*n];
            let u = &self.u_comp[node.component];
            let tn = self.t[node.term][(0, 0)];
            let mut s_jn: f64 = (0..m).map(|i| du[i] * u[(node.offset, i)]).sum();
            if let Some(w) = w_links {
                s_jn -= z * w[li] / l;
            }
            for (class, zz) in blocks {
                let to_node = s_jn * t1 * zz[0];
                acc.class[*class] += tn * to_node;
                acc.gamma[node.term][(0, 0)] += w[*class] * to_node;
                let to_level = s_jn * tn * zz[0];
                acc.class[*class] += t1 * to_level;
                acc.gamma[first][(0, 0)] += w[*class] * to_level;
            }
        }
    }

    /// The sums of the (vector) first term's levels in `range`.
    fn general_levels(
        &self,
        range: std::ops::Range<usize>,
        first: usize,
        weight: &Weight,
    ) -> Result<Accumulator, DevianceError> {
        let mut acc = Accumulator::zeros(&self.dev.terms, self.w.len());
        for j in range {
            self.general_level(j, first, weight, &mut acc)?;
        }
        Ok(acc)
    }

    /// Adds level j's blocks and links.
    fn general_level(
        &self,
        j: usize,
        first: usize,
        weight: &Weight,
        acc: &mut Accumulator,
    ) -> Result<(), DevianceError> {
        let (dev, m, z, w, t) = (self.dev, self.m, self.z, &self.w, &self.t);
        let (d, d_linv) = (weight.d, &weight.d_linv);
        let q1 = dev.terms[first].q;
        let t1 = &t[first];
        let level = &dev.first_levels[j];
        let (l1, kxy, links) = dev.kept_level(&self.keep, j);
        let l1 = DMatrixView::from_slice(l1, q1, q1);
        let linked_u: Vec<DMatrix<f64>> = links.iter().map(|(n, _)| self.u_node(*n)).collect();
        let mut v = DMatrix::from_column_slice(q1, m, kxy) * &self.rt;
        for ((n, k), un) in links.iter().zip(&linked_u) {
            let qn = dev.terms[dev.nodes[*n].term].q;
            v -= DMatrixView::from_slice(k, q1, qn) * un;
        }
        let u_j = l1
            .tr_solve_lower_triangular(&v)
            .ok_or(DevianceError::NonFinite)?;
        let (ainv_jj, ainv_jl) = self.selected_inverse(j, l1, &links)?;

        let ud = &u_j * d;
        let s_jj = &ainv_jj * z + &ud * u_j.transpose();
        let coupling = &u_j * d_linv;
        for (class, zz, zxy) in &level.blocks {
            let zz = DMatrixView::from_slice(zz, q1, q1);
            acc.add(first, t1, &s_jj * t1.transpose() * zz, w[*class], *class);
            let zxy = DMatrixView::from_slice(zxy, q1, m);
            acc.add_coupling(first, t1, -(&coupling * zxy.transpose()), w[*class], *class);
        }
        let mut col = 0;
        for (li, (n, blocks)) in level.links.iter().enumerate() {
            let term_n = dev.nodes[*n].term;
            let qn = dev.terms[term_n].q;
            let mut s_jn = &ud * linked_u[li].transpose();
            if z != 0.0 {
                s_jn += ainv_jl.columns(col, qn) * z;
            }
            col += qn;
            for (class, zz) in blocks {
                let z_jn = DMatrixView::from_slice(zz, q1, qn);
                let tn = &t[term_n];
                acc.add(
                    term_n,
                    tn,
                    s_jn.transpose() * t1.transpose() * z_jn,
                    w[*class],
                    *class,
                );
                acc.add(
                    first,
                    t1,
                    &s_jn * tn.transpose() * z_jn.transpose(),
                    w[*class],
                    *class,
                );
            }
        }
        Ok(())
    }

    /// Level j's blocks of A⁻¹: against itself and against its linked nodes side by side (zero
    /// without a log|L_Z|² term).
    ///
    /// The selected inverse, with the links gathered side by side (K = [K_n …], C_L = C on the
    /// linked nodes): W = K C_L, A⁻¹_jL = −L₁⁻ᵀW and A⁻¹_jj = L₁⁻ᵀ(I + W K')L₁⁻¹.
    fn selected_inverse(
        &self,
        j: usize,
        l1: DMatrixView<f64>,
        links: &[(usize, &[f64])],
    ) -> Result<(DMatrix<f64>, DMatrix<f64>), DevianceError> {
        let (dev, z) = (self.dev, self.z);
        let q1 = l1.nrows();
        if z != 0.0 && !links.is_empty() {
            let width: usize = links
                .iter()
                .map(|(n, _)| dev.terms[dev.nodes[*n].term].q)
                .sum();
            let mut kcat = DMatrix::zeros(q1, width);
            let mut index = Vec::with_capacity(width);
            let mut col = 0;
            for (n, k) in links {
                let node = &dev.nodes[*n];
                let qn = dev.terms[node.term].q;
                kcat.columns_mut(col, qn)
                    .copy_from(&DMatrixView::from_slice(k, q1, qn));
                index.extend(node.offset..node.offset + qn);
                col += qn;
            }
            let wl = match (&self.scalar_w, &dev.scalar_updates) {
                (Some(w), Some(updates)) => {
                    let start = updates.link_start[j];
                    DMatrix::from_row_slice(1, width, &w[start..start + width])
                }
                _ => {
                    let comp = &self.c_comp[dev.nodes[links[0].0].component];
                    let c_links = DMatrix::from_fn(width, width, |a, b| comp[(index[a], index[b])]);
                    &kcat * c_links
                }
            };
            let middle = DMatrix::<f64>::identity(q1, q1) + &wl * kcat.transpose();
            let ainv_jl = l1
                .tr_solve_lower_triangular(&(-wl))
                .ok_or(DevianceError::NonFinite)?;
            let l1i = l1
                .solve_lower_triangular(&DMatrix::identity(q1, q1))
                .ok_or(DevianceError::NonFinite)?;
            Ok((l1i.transpose() * middle * &l1i, ainv_jl))
        } else if z != 0.0 {
            let l1i = l1
                .solve_lower_triangular(&DMatrix::identity(q1, q1))
                .ok_or(DevianceError::NonFinite)?;
            Ok((l1i.transpose() * l1i, DMatrix::zeros(q1, 0)))
        } else {
            Ok((DMatrix::zeros(q1, q1), DMatrix::zeros(q1, 0)))
        }
    }

    /// Adds a trailing node's own blocks.
    fn add_node(&self, acc: &mut Accumulator, ni: usize, weight: &Weight) {
        let (dev, m, w) = (self.dev, self.m, &self.w);
        let node = &dev.nodes[ni];
        let q = dev.terms[node.term].q;
        let tn = &self.t[node.term];
        let u_n = self.u_node(ni);
        let mut s_nn = &u_n * weight.d * u_n.transpose();
        if self.z != 0.0 {
            s_nn += self.c_block(ni, ni) * self.z;
        }
        let coupling = &u_n * &weight.d_linv;
        for (class, zz, zxy) in &node.blocks {
            let zz = DMatrixView::from_slice(zz, q, q);
            acc.add(
                node.term,
                tn,
                &s_nn * tn.transpose() * zz,
                w[*class],
                *class,
            );
            let zxy = DMatrixView::from_slice(zxy, q, m);
            acc.add_coupling(
                node.term,
                tn,
                -(&coupling * zxy.transpose()),
                w[*class],
                *class,
            );
        }
    }

    /// Adds the blocks between two co-occurring nodes a ≠ b of one component.
    fn add_cross(
        &self,
        acc: &mut Accumulator,
        na: usize,
        nb: usize,
        blocks: &ClassCross,
        weight: &Weight,
    ) {
        let (dev, t, w) = (self.dev, &self.t, &self.w);
        let (ta, tb) = (dev.nodes[na].term, dev.nodes[nb].term);
        let (qa, qb) = (dev.terms[ta].q, dev.terms[tb].q);
        let mut s_ab = self.u_node(na) * weight.d * self.u_node(nb).transpose();
        if self.z != 0.0 {
            s_ab += self.c_block(na, nb) * self.z;
        }
        for (class, zz) in blocks {
            let z_ab = DMatrixView::from_slice(zz, qa, qb);
            acc.add(
                tb,
                &t[tb],
                s_ab.transpose() * t[ta].transpose() * z_ab,
                w[*class],
                *class,
            );
            acc.add(
                ta,
                &t[ta],
                &s_ab * t[tb].transpose() * z_ab.transpose(),
                w[*class],
                *class,
            );
        }
    }

    /// The gradient over (θ, log δ, ρ) from the sums over the blocks and S_XX.
    fn parameter_gradient(
        &self,
        acc: &Accumulator,
        s_xx: &DMatrix<f64>,
        correlation: &[f64],
    ) -> Vec<f64> {
        let (dev, w) = (self.dev, &self.w);
        let mut g = vec![0.0; dev.nparams()];
        for (i, (k, r, c)) in dev.theta_entries().into_iter().enumerate() {
            g[i] = 2.0 * acc.gamma[k][(c, r)];
        }
        // Class weights w_c = exp(−2 l_c): dΩ/dl_c = −2 w_c Ω^(c) on the random-effect part; the
        // [X y] part (with compound symmetry, also through the within-unit sums) separately.
        let dxy = dev.xy_derivatives(&self.class_w, correlation);
        for c in 1..dev.n_class.len() {
            g[dev.ntheta + c - 1] += -2.0 * w[c] * acc.class[c];
        }
        if let (Some(ar1), Some(&x)) = (&dev.ar1, correlation.first()) {
            // The classes' weights c₀w_c, c₂w_c, c₁√(w_c w_d) along ρ = tanh(x), and the series
            // classes' along log δ.
            let rho = x.tanh();
            let (_, [d0, d2, d1]) = super::Ar1::coefficients(rho);
            let nc = dev.n_class.len();
            let series = ar1.weights(&self.class_w, d2, d1);
            let mut d: f64 = (0..nc).map(|c| d0 * self.class_w[c] * acc.class[c]).sum();
            d += (0..series.len())
                .map(|k| series[k] * acc.class[nc + k])
                .sum::<f64>();
            g[dev.ntheta + dev.ndelta()] += d * (1.0 - rho * rho);
            for (k, &class) in ar1.classes.iter().enumerate() {
                for e in 1..nc {
                    let power = super::Ar1::delta_power(class, e);
                    if power > 0.0 {
                        g[dev.ntheta + e - 1] += -power * w[nc + k] * acc.class[nc + k];
                    }
                }
            }
        }
        for (i, dm) in dxy {
            g[i] += s_xx.component_mul(&dm).sum();
        }
        g
    }
}

impl ProfiledDeviance {
    /// ∂Cov(β̂)/∂varpar_k at `varpar = (θ, σ, log δ…, ρ)`, one p×p matrix per entry, exactly.
    ///
    /// Cov(β̂) = σ²M⁻¹ with M = R_X'R_X = L_X L_X', so ∂/∂x_k = −σ²W'N_kW with W = L_X⁻¹ and
    /// N_k = W Ṁ_k W' the X block of L⁻¹Ω̇_kL⁻ᵀ, whose (a, b) entry is `factor_derivatives`
    /// with D = (E_ab + E_ba)/2 and no log|L_Z|² term: one evaluation and p(p + 1)/2 passes over
    /// the levels, where differencing Cov(β̂) costs dozens of evaluations. ∂/∂σ = 2σM⁻¹.
    pub fn beta_covariance_jacobian(
        &self,
        varpar: &[f64],
    ) -> Result<Vec<DMatrix<f64>>, DevianceError> {
        let (x, sigma) = self.split_varpar(varpar)?;
        let (p, m) = (self.p, self.p + 1);
        let pairs: Vec<(usize, usize)> = (0..p).flat_map(|b| (b..p).map(move |a| (a, b))).collect();
        let ds: Vec<DMatrix<f64>> = pairs
            .iter()
            .map(|&(a, b)| {
                let mut d = DMatrix::zeros(m, m);
                d[(a, b)] += 0.5;
                d[(b, a)] += 0.5;
                d
            })
            .collect();
        let (e, derivatives) = self.factor_derivatives(&x, 0.0, &ds)?;
        let w =
            e.lx.solve_lower_triangular(&DMatrix::identity(p, p))
                .ok_or(DevianceError::FixedRankDeficient)?;
        let s2 = sigma * sigma;
        let mut out = Vec::with_capacity(varpar.len());
        for k in 0..x.len() {
            let mut n = DMatrix::zeros(p, p);
            for (&(a, b), g) in pairs.iter().zip(&derivatives) {
                n[(a, b)] = g[k];
                n[(b, a)] = g[k];
            }
            out.push(w.tr_mul(&n) * &w * -s2);
        }
        out.insert(self.ntheta, w.tr_mul(&w) * (2.0 * sigma));
        Ok(out)
    }

    /// The derivatives of the weighted [X y]'[X y] (after compound symmetry, if any) along the
    /// log δ and ρ parameters, as (parameter index, m×m matrix).
    fn xy_derivatives(&self, w: &[f64], correlation: &[f64]) -> Vec<(usize, DMatrix<f64>)> {
        let m = self.p + 1;
        let class_xy = |c: usize| DMatrix::from_column_slice(m, m, &self.xy[c]);
        let mut out = Vec::new();
        if let (Some(ar1), Some(&x)) = (&self.ar1, correlation.first()) {
            // [X y]'R⁻¹[X y] = c₀ Σ_c w_c S_c + Σ_k w_k S_k over the series classes k, with
            // w_k = c₂w_c (end rows of class c) or c₁√(w_c w_d) (pairs of classes c, d).
            let rho = x.tanh();
            let ([c0, c2, c1], [d0, d2, d1]) = super::Ar1::coefficients(rho);
            let series_xy = |k: usize| DMatrix::from_column_slice(m, m, &ar1.xy[k]);
            let (series_w, series_d) = (ar1.weights(w, c2, c1), ar1.weights(w, d2, d1));
            let mut dm = DMatrix::zeros(m, m);
            for (k, dk) in series_d.iter().enumerate() {
                dm += series_xy(k) * *dk;
            }
            for (c, wc) in w.iter().enumerate() {
                dm += class_xy(c) * (d0 * wc);
                if c > 0 {
                    let mut dc = class_xy(c) * (-2.0 * c0 * wc);
                    for (k, &class) in ar1.classes.iter().enumerate() {
                        let power = super::Ar1::delta_power(class, c);
                        if power > 0.0 {
                            dc += series_xy(k) * (-power * series_w[k]);
                        }
                    }
                    out.push((self.ntheta + c - 1, dc));
                }
            }
            out.push((self.ntheta + self.ndelta(), dm * (1.0 - rho * rho)));
            return out;
        }
        let Some(within) = &self.within else {
            for (c, wc) in w.iter().enumerate().skip(1) {
                out.push((self.ntheta + c - 1, class_xy(c) * (-2.0 * wc)));
            }
            return out;
        };
        let Some(&xc) = correlation.first() else {
            return out;
        };
        let rho = within.rho(xc);
        let a = 1.0 / (1.0 - rho);
        let s: Vec<f64> = w.iter().map(|w| w.sqrt()).collect();
        let nc = within.nclasses;
        let outer =
            |o: &[Vec<f64>], c: usize, d: usize| DMatrix::from_column_slice(m, m, &o[c * nc + d]);
        for c in 1..w.len() {
            let mut dm = class_xy(c) * (-2.0 * a * w[c]);
            for (k, _, o) in &within.sizes {
                let b = cs_b(rho, *k as f64);
                for d in 0..nc {
                    dm += (outer(o, c, d) + outer(o, d, c)) * (b * s[c] * s[d]);
                }
            }
            out.push((self.ntheta + c - 1, dm));
        }
        let mut dm = DMatrix::zeros(m, m);
        for (c, wc) in w.iter().enumerate() {
            dm += class_xy(c) * (wc / ((1.0 - rho) * (1.0 - rho)));
        }
        for (k, _, o) in &within.sizes {
            let k1 = *k as f64 - 1.0;
            let g = (1.0 - rho) * (1.0 + k1 * rho);
            let g_prime = -(1.0 + k1 * rho) + (1.0 - rho) * k1;
            let b_prime = (g - rho * g_prime) / (g * g);
            for c in 0..nc {
                for d in 0..nc {
                    dm -= outer(o, c, d) * (b_prime * s[c] * s[d]);
                }
            }
        }
        out.push((self.ntheta + self.ndelta(), dm * within.rho_derivative(xc)));
        out
    }
}

/// `chunk` over the first term's levels in ranges of `LEVEL_CHUNK` on the thread pool, the
/// results in range order: sums added in that order have the same digits for any number of
/// threads.
fn in_level_chunks<T: Send>(
    levels: usize,
    chunk: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    (0..levels)
        .step_by(LEVEL_CHUNK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| chunk(start..(start + LEVEL_CHUNK).min(levels)))
        .collect()
}

/// Compound symmetry's b_k = ρ / ((1 − ρ)(1 + (k − 1)ρ)) for a unit of size k.
fn cs_b(rho: f64, k: f64) -> f64 {
    rho / ((1.0 - rho) * (1.0 + (k - 1.0) * rho))
}

impl ProfiledDeviance {
    /// The Hessian of `deviance_at` (σ explicit) over `varpar = (θ, σ, log δ…, ρ)` at a
    /// stationary point `x` of the profiled criterion whose Hessian there is `profiled`.
    ///
    /// Why not differences of `deviance_at`: with ν = n (ML) or n − p (REML) and
    /// u(x) = log σ̂²(x) = log(r²/ν), the explicit and profiled criteria differ by
    /// ν(e^u/σ² + log σ² − 1 − u), so at σ = σ̂ the explicit Hessian is the profiled one plus
    /// ν u'u' in x, −2ν u'/σ between x and σ, and 4ν/σ² in σ. u' = ∇ log r² is one cheap
    /// gradient (no inverse of the random-effects block), where differences of `deviance_at`
    /// cost hundreds of evaluations — seconds at millions of rows or thousands of crossed levels.
    pub fn explicit_sigma_hessian(
        &self,
        x: &[f64],
        profiled: &DMatrix<f64>,
    ) -> Result<DMatrix<f64>, DevianceError> {
        let n = self.nparams();
        if x.len() != n || profiled.nrows() != n || profiled.ncols() != n {
            return Err(DevianceError::WrongLength {
                expected: n,
                got: x.len(),
            });
        }
        let f = LogDiagonal {
            z: 0.0,
            x: 0.0,
            y: 1.0,
        };
        let (e, u) = self.log_diagonal_gradient(x, f)?;
        let nu = match self.method {
            Method::Ml => self.nobs() as f64,
            Method::Reml => (self.nobs() - self.p) as f64,
        };
        let sigma2 = e.pwrss / nu;
        let sigma = sigma2.sqrt();
        // Positions in varpar: θ first, then σ, then the rest of x.
        let at = |i: usize| if i < self.ntheta { i } else { i + 1 };
        let s = self.ntheta;
        let mut h = DMatrix::zeros(n + 1, n + 1);
        for i in 0..n {
            for j in 0..n {
                h[(at(i), at(j))] = profiled[(i, j)] + nu * u[i] * u[j];
            }
            h[(at(i), s)] = -2.0 * nu * u[i] / sigma;
            h[(s, at(i))] = h[(at(i), s)];
        }
        h[(s, s)] = 4.0 * nu / sigma2;
        Ok(h)
    }
}

impl ProfiledDeviance {
    /// −2 log-likelihood with σ explicit and its exact gradient. `Some(β)`: the ML deviance at
    /// any β (`ml_deviance_at`), over (β, varpar); `None`: the REML criterion with β at its GLS
    /// estimate (`deviance_at` of a REML fit, whatever `self.method`), over varpar. varpar is
    /// (θ, σ, log δ…, ρ).
    ///
    /// Both are log|L_Z|² + Q/σ² + ν log 2πσ² + the weight term (+ log|R_X|² for REML), with
    /// Q = v'Cv for C = [X y]'V⁻¹[X y]σ² = L_bL_b' and v = (−β, 1) (REML: β̂, so Q = r²). Along
    /// x = (θ, log δ, ρ), Ċ enters as tr(ww' L_b⁻¹ĊL_b⁻ᵀ) with w = L_b'v, so the whole
    /// derivative is one `factor_derivatives` pass with D = ww'/σ² (+ the X rows' identity for
    /// log|R_X|²): the raw-scale information of all parameters then comes from differences of
    /// this gradient, not second differences of values.
    pub fn explicit_gradient(
        &self,
        beta: Option<&[f64]>,
        varpar: &[f64],
    ) -> Result<(f64, Vec<f64>), DevianceError> {
        let (x, sigma) = self.split_varpar(varpar)?;
        let p = self.p;
        if let Some(b) = beta.filter(|b| b.len() != p) {
            return Err(DevianceError::WrongLength {
                expected: p,
                got: b.len(),
            });
        }
        let s2 = sigma * sigma;
        let (e, mut g) = self.factor_derivatives_with(&x, 1.0, |e, lb| {
            let v = DVector::from_fn(p + 1, |i, _| match (i < p, beta) {
                (false, _) => 1.0,
                (true, Some(b)) => -b[i],
                (true, None) => -e.beta[i],
            });
            let w = lb.tr_mul(&v);
            let mut d = &w * w.transpose() / s2;
            if beta.is_none() {
                for i in 0..p {
                    d[(i, i)] += 1.0;
                }
            }
            vec![d]
        })?;
        let mut g = g.pop().unwrap_or_default();
        self.add_weight_term_gradient(&x, &mut g);
        let n = self.nobs() as f64;
        let (q, nu, beta_gradient) = match beta {
            Some(b) => {
                let diff = DVector::from_column_slice(b) - &e.beta;
                let lt_diff = e.lx.tr_mul(&diff);
                // Q = r² + ‖L_X'(β − β̂)‖², so ∂(Q/σ²)/∂β = 2L_XL_X'(β − β̂)/σ².
                let gb = &e.lx * &lt_diff * (2.0 / s2);
                (e.pwrss + lt_diff.norm_squared(), n, gb.as_slice().to_vec())
            }
            None => (e.pwrss, n - p as f64, Vec::new()),
        };
        let mut value =
            e.ld_l2 + q / s2 + nu * (2.0 * std::f64::consts::PI * s2).ln() + e.weight_term;
        if beta.is_none() {
            value += e.ld_rx2;
        }
        g.insert(self.ntheta, 2.0 * nu / sigma - 2.0 * q / (s2 * sigma));
        let mut out = beta_gradient;
        out.extend(g);
        if !value.is_finite() || out.iter().any(|v| !v.is_finite()) {
            return Err(DevianceError::NonFinite);
        }
        Ok((value, out))
    }
}
