//! The penalized weighted system of one PIRLS step, A = U'WU + I (bordered by X'WU and X'WX
//! when β is updated too), and its Cholesky factor: the blocked term's levels as independent
//! small blocks, everything else through the dense Schur complement S = C − B'D⁻¹B. log|L|² of
//! the random-effect part is lme4's `ldL2`. Owns the linear algebra of the block layout; must
//! not know about families or optimization.

use nalgebra::{Cholesky, DMatrix, DVector};

/// A = [D B; B' C] with D block-diagonal (one qb × qb block per level of the blocked term), and
/// its right-hand side.
pub struct System<'a> {
    qb: usize,
    m: usize,
    d: Vec<DMatrix<f64>>,
    /// Per level, the dense columns its rows touch (sorted): B_l is stored on them only.
    pattern: &'a [Vec<usize>],
    b: Vec<DMatrix<f64>>,
    c: DMatrix<f64>,
    pub rhs: Vec<f64>,
}

impl<'a> System<'a> {
    pub fn new(qb: usize, m: usize, pattern: &'a [Vec<usize>]) -> Self {
        let levels = pattern.len();
        System {
            qb,
            m,
            d: vec![DMatrix::zeros(qb, qb); levels],
            b: pattern
                .iter()
                .map(|p| DMatrix::zeros(qb, p.len()))
                .collect(),
            pattern,
            c: DMatrix::zeros(m, m),
            rhs: vec![0.0; qb * levels + m],
        }
    }

    fn nb(&self) -> usize {
        self.qb * self.d.len()
    }

    /// One observation with weight `w` and score `score`: its blocked values `eb` at `level` and
    /// its dense entries `ed` (index into the dense part, value).
    pub fn add_row(
        &mut self,
        level: Option<usize>,
        eb: &[f64],
        ed: &[(usize, f64)],
        w: f64,
        score: f64,
    ) {
        let nb = self.nb();
        if let Some(l) = level {
            let (d, b) = (&mut self.d[l], &mut self.b[l]);
            for j in 0..self.qb {
                let wj = w * eb[j];
                for i in j..self.qb {
                    d[(i, j)] += wj * eb[i];
                }
                for &(k, v) in ed {
                    if let Ok(at) = self.pattern[l].binary_search(&k) {
                        b[(j, at)] += wj * v;
                    }
                }
                self.rhs[l * self.qb + j] += eb[j] * score;
            }
        }
        for (a, &(k1, v1)) in ed.iter().enumerate() {
            let wv = w * v1;
            for &(k2, v2) in &ed[..=a] {
                let (i, j) = if k1 >= k2 { (k1, k2) } else { (k2, k1) };
                self.c[(i, j)] += wv * v2;
            }
            self.rhs[nb + k1] += v1 * score;
        }
    }

    /// Adds the identity to the random effects' diagonal (the penalty ‖u‖²): every blocked
    /// effect and the first `dense_u` dense ones.
    pub fn add_penalty(&mut self, dense_u: usize) {
        for d in &mut self.d {
            for j in 0..self.qb {
                d[(j, j)] += 1.0;
            }
        }
        for j in 0..dense_u {
            self.c[(j, j)] += 1.0;
        }
    }

    /// The factor, or `None` when A is not positive definite.
    pub fn factor(mut self, dense_u: usize) -> Option<Factor<'a>> {
        // Only the lower triangles were accumulated.
        for d in &mut self.d {
            d.fill_upper_triangle_with_lower_triangle();
        }
        self.c.fill_upper_triangle_with_lower_triangle();
        let mut logdet = 0.0;
        let mut ls = Vec::with_capacity(self.d.len());
        let mut ws = Vec::with_capacity(self.d.len());
        let mut s = self.c;
        for (d, b) in self.d.into_iter().zip(self.b) {
            let l = Cholesky::new(d)?.unpack();
            logdet += 2.0 * l.diagonal().iter().map(|x| x.ln()).sum::<f64>();
            let w = l.solve_lower_triangular(&b)?;
            let cols = &self.pattern[ls.len()];
            for (a, &ca) in cols.iter().enumerate() {
                for (c, &cc) in cols.iter().enumerate() {
                    s[(ca, cc)] -= w.column(a).dot(&w.column(c));
                }
            }
            ls.push(l);
            ws.push(w);
        }
        let s = if self.m > 0 {
            Cholesky::new(s)?.unpack()
        } else {
            DMatrix::zeros(0, 0)
        };
        logdet += 2.0 * (0..dense_u).map(|i| s[(i, i)].ln()).sum::<f64>();
        Some(Factor {
            qb: self.qb,
            pattern: self.pattern,
            l: ls,
            w: ws,
            s,
            logdet_u: logdet,
            rhs: self.rhs,
        })
    }
}

/// The Cholesky factor of a `System`, with the right-hand side it was built with.
pub struct Factor<'a> {
    qb: usize,
    pattern: &'a [Vec<usize>],
    l: Vec<DMatrix<f64>>,
    w: Vec<DMatrix<f64>>,
    s: DMatrix<f64>,
    /// log det of the random effects' block (lme4's `ldL2`).
    pub logdet_u: f64,
    pub rhs: Vec<f64>,
}

impl Factor<'_> {
    /// A⁻¹ r.
    pub fn solve(&self, r: &[f64]) -> Vec<f64> {
        let qb = self.qb;
        let nb = qb * self.l.len();
        let m = self.s.nrows();
        let mut y1: Vec<DVector<f64>> = Vec::with_capacity(self.l.len());
        let mut r2 = DVector::from_column_slice(&r[nb..nb + m]);
        for (k, (l, w)) in self.l.iter().zip(&self.w).enumerate() {
            let mut y = DVector::from_column_slice(&r[k * qb..(k + 1) * qb]);
            l.solve_lower_triangular_mut(&mut y);
            for (a, &ca) in self.pattern[k].iter().enumerate() {
                r2[ca] -= w.column(a).dot(&y);
            }
            y1.push(y);
        }
        let mut x = vec![0.0; nb + m];
        let x2 = if m > 0 {
            let mut z = r2;
            self.s.solve_lower_triangular_mut(&mut z);
            self.s.tr_solve_lower_triangular_mut(&mut z);
            z
        } else {
            DVector::zeros(0)
        };
        for (k, (l, w)) in self.l.iter().zip(&self.w).enumerate() {
            let mut y = y1[k].clone();
            for (a, &ca) in self.pattern[k].iter().enumerate() {
                y -= w.column(a) * x2[ca];
            }
            l.tr_solve_lower_triangular_mut(&mut y);
            x[k * qb..(k + 1) * qb].copy_from_slice(y.as_slice());
        }
        x[nb..].copy_from_slice(x2.as_slice());
        x
    }

    /// The diagonal blocks of A⁻¹: per blocked level its qb × qb block, and the dense part's
    /// inverse (m × m).
    pub fn inverse_blocks(&self) -> (Vec<DMatrix<f64>>, DMatrix<f64>) {
        let m = self.s.nrows();
        let s_inv = if m > 0 {
            let mut i = DMatrix::identity(m, m);
            self.s.solve_lower_triangular_mut(&mut i);
            self.s.tr_solve_lower_triangular_mut(&mut i);
            i
        } else {
            DMatrix::zeros(0, 0)
        };
        let blocks = self
            .l
            .iter()
            .zip(&self.w)
            .zip(self.pattern)
            .map(|((l, w), cols)| {
                // L⁻ᵀ (I + W S⁻¹ W') L⁻¹, S⁻¹ on the level's columns.
                let mut inner = DMatrix::identity(self.qb, self.qb);
                if !cols.is_empty() {
                    let sub =
                        DMatrix::from_fn(cols.len(), cols.len(), |a, c| s_inv[(cols[a], cols[c])]);
                    inner += w * sub * w.transpose();
                }
                let l_inv = l
                    .solve_lower_triangular(&DMatrix::identity(self.qb, self.qb))
                    .unwrap_or_else(|| DMatrix::zeros(self.qb, self.qb));
                l_inv.transpose() * inner * l_inv
            })
            .collect();
        (blocks, s_inv)
    }

    /// The diagonal of the blocked part's Cholesky factor (AGQ's conditional SDs are its
    /// reciprocals).
    pub fn blocked_diagonal(&self) -> Vec<f64> {
        self.l
            .iter()
            .flat_map(|l| l.diagonal().iter().copied().collect::<Vec<_>>())
            .collect()
    }
}
