//! A generalized linear mixed model's observations as the PIRLS iterations need them: X, y,
//! prior weights and offset row by row, each random term's levels and z rows, and the layout
//! of the spherical random effects u. A non-Gaussian model has no sufficient statistics (the
//! weights change with every iteration), so unlike the LMM the estimator keeps the rows
//! (ARCHITECTURE.md records the exception). Owns the layout: the term with the most effects is
//! the "blocked" one (its levels' blocks of U'WU + I are stored block-diagonally), every other
//! effect is "dense". It must not iterate or optimize.

use nalgebra::DMatrix;

use super::response::Response;

/// One random term's part of the rows.
#[derive(Debug, Clone)]
pub struct Term {
    pub q: usize,
    pub nlevels: usize,
    pub correlated: bool,
    /// Level of each observation, `None` when the term has no effect in its equation.
    pub level: Vec<Option<usize>>,
    /// Row-major n × q.
    pub z: Vec<f64>,
}

impl Term {
    /// Number of θ entries: the lower triangle of a correlated term, else the diagonal.
    pub fn ntheta(&self) -> usize {
        if self.correlated {
            self.q * (self.q + 1) / 2
        } else {
            self.q
        }
    }

    /// The relative covariance factor T (lower triangular) from the term's θ entries
    /// (column-major lower triangle, as lme4).
    pub fn factor(&self, theta: &[f64]) -> DMatrix<f64> {
        let q = self.q;
        let mut t = DMatrix::zeros(q, q);
        let mut k = 0;
        for j in 0..q {
            if self.correlated {
                for i in j..q {
                    t[(i, j)] = theta[k];
                    k += 1;
                }
            } else {
                t[(j, j)] = theta[k];
                k += 1;
            }
        }
        t
    }

    /// Whether θ entry `k` of this term is a diagonal of T.
    pub fn is_diagonal(&self, k: usize) -> bool {
        if !self.correlated {
            return true;
        }
        let mut at = 0;
        for j in 0..self.q {
            if at == k {
                return true;
            }
            at += self.q - j;
            if k < at {
                return false;
            }
        }
        false
    }
}

/// The rows of a GLMM with its family.
#[derive(Debug, Clone)]
pub struct Problem {
    pub response: Response,
    pub n: usize,
    pub p: usize,
    /// Row-major n × p.
    pub x: Vec<f64>,
    /// The outcome; with binomial trials, the proportion of successes (glm's y).
    pub y: Vec<f64>,
    /// Prior weights: the trials for a binomial outcome out of trials, else 1.
    pub weights: Vec<f64>,
    /// The part of the linear predictor with fixed coefficients, offsets included.
    pub offset: Vec<f64>,
    pub terms: Vec<Term>,
    /// The term whose blocks are stored block-diagonally (the one with most effects).
    pub blocked: Option<usize>,
    /// Position of each non-blocked term's first effect within the dense effects.
    pub dense_start: Vec<usize>,
    /// Number of dense random effects.
    pub dense_q: usize,
    /// Per level of the blocked term, the dense effects its rows touch (sorted).
    pub pattern: Vec<Vec<usize>>,
    /// The same with the p fixed effects after the dense effects (β updated too).
    pub pattern_joint: Vec<Vec<usize>>,
}

impl Problem {
    pub fn new(response: Response, x: DMatrix<f64>, columns: Columns, terms: Vec<Term>) -> Self {
        let (n, p) = x.shape();
        let mut xr = Vec::with_capacity(n * p);
        for i in 0..n {
            xr.extend(x.row(i).iter());
        }
        let blocked =
            (0..terms.len()).max_by_key(|&k| (terms[k].q * terms[k].nlevels, usize::MAX - k));
        let mut dense_start = vec![0; terms.len()];
        let mut dense_q = 0;
        for (k, t) in terms.iter().enumerate() {
            if Some(k) != blocked {
                dense_start[k] = dense_q;
                dense_q += t.q * t.nlevels;
            }
        }
        let pattern = patterns(&terms, blocked, &dense_start, n);
        let pattern_joint = pattern
            .iter()
            .map(|cols| cols.iter().copied().chain(dense_q..dense_q + p).collect())
            .collect();
        Problem {
            response,
            n,
            p,
            x: xr,
            y: columns.y,
            weights: columns.weights,
            offset: columns.offset,
            terms,
            blocked,
            dense_start,
            dense_q,
            pattern,
            pattern_joint,
        }
    }

    pub fn ntheta(&self) -> usize {
        self.terms.iter().map(Term::ntheta).sum()
    }

    /// Effects of the blocked term per level (its q) and its number of levels.
    pub fn blocked_shape(&self) -> (usize, usize) {
        self.blocked
            .map_or((0, 0), |k| (self.terms[k].q, self.terms[k].nlevels))
    }

    /// Total number of random effects.
    pub fn q(&self) -> usize {
        let (qb, nb) = self.blocked_shape();
        qb * nb + self.dense_q
    }

    /// Position of (term, level, effect) in u: the blocked term's effects first (level-major),
    /// then the dense ones.
    pub fn position(&self, term: usize, level: usize, effect: usize) -> usize {
        let t = &self.terms[term];
        if Some(term) == self.blocked {
            level * t.q + effect
        } else {
            let (qb, nb) = self.blocked_shape();
            qb * nb + self.dense_start[term] + level * t.q + effect
        }
    }

    /// Each term's T from the whole θ.
    pub fn factors(&self, theta: &[f64]) -> Vec<DMatrix<f64>> {
        let mut at = 0;
        self.terms
            .iter()
            .map(|t| {
                let f = t.factor(&theta[at..at + t.ntheta()]);
                at += t.ntheta();
                f
            })
            .collect()
    }

    /// The rows of U = ZΛ(θ), sparse.
    pub fn u_rows(&self, theta: &[f64]) -> URows {
        let factors = self.factors(theta);
        let (qb, _) = self.blocked_shape();
        let mut rows = URows {
            qb,
            blocked_level: vec![None; self.n],
            blocked: vec![0.0; self.n * qb],
            start: Vec::with_capacity(self.n + 1),
            dense: Vec::new(),
        };
        rows.start.push(0);
        for i in 0..self.n {
            for (k, term) in self.terms.iter().enumerate() {
                let Some(level) = term.level[i] else { continue };
                let z = &term.z[i * term.q..(i + 1) * term.q];
                let t = &factors[k];
                for j in 0..term.q {
                    // (ZΛ)_{i, j} = Σ_m z_m T_{m j}.
                    let v: f64 = (j..term.q).map(|m| z[m] * t[(m, j)]).sum();
                    if Some(k) == self.blocked {
                        rows.blocked_level[i] = Some(level);
                        rows.blocked[i * qb + j] = v;
                    } else if v != 0.0 {
                        rows.dense
                            .push((self.dense_start[k] + level * term.q + j, v));
                    }
                }
            }
            rows.start.push(rows.dense.len());
        }
        rows
    }
}

/// Per level of the blocked term, the dense effects (all of each other term's effects at the
/// levels its rows have) that its rows touch.
fn patterns(
    terms: &[Term],
    blocked: Option<usize>,
    dense_start: &[usize],
    n: usize,
) -> Vec<Vec<usize>> {
    let Some(b) = blocked else { return Vec::new() };
    let mut out = vec![Vec::new(); terms[b].nlevels];
    for i in 0..n {
        let Some(l) = terms[b].level[i] else { continue };
        for (k, t) in terms.iter().enumerate() {
            if k == b {
                continue;
            }
            if let Some(level) = t.level[i] {
                out[l].extend((0..t.q).map(|j| dense_start[k] + level * t.q + j));
            }
        }
    }
    for cols in &mut out {
        cols.sort_unstable();
        cols.dedup();
    }
    out
}

/// The outcome columns of a `Problem`.
#[derive(Debug, Clone)]
pub struct Columns {
    pub y: Vec<f64>,
    pub weights: Vec<f64>,
    pub offset: Vec<f64>,
}

/// U = ZΛ(θ) row by row: the blocked term's level and values, then the dense entries.
#[derive(Debug, Clone)]
pub struct URows {
    pub qb: usize,
    pub blocked_level: Vec<Option<usize>>,
    /// Row-major n × qb.
    pub blocked: Vec<f64>,
    /// Row i's dense entries are `dense[start[i]..start[i + 1]]`.
    pub start: Vec<usize>,
    pub dense: Vec<(usize, f64)>,
}

impl URows {
    /// Row i of U times u.
    pub fn times(&self, i: usize, u: &[f64], nb: usize) -> f64 {
        let mut s = 0.0;
        if let Some(l) = self.blocked_level[i] {
            let b = &self.blocked[i * self.qb..(i + 1) * self.qb];
            s += (0..self.qb).map(|j| b[j] * u[l * self.qb + j]).sum::<f64>();
        }
        for &(d, v) in &self.dense[self.start[i]..self.start[i + 1]] {
            s += v * u[nb + d];
        }
        s
    }
}
