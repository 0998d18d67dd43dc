//! Cluster-robust (sandwich) covariance of the fixed effects of a linear mixed model, with the
//! CR2 (Bell–McCaffrey) small-sample adjustment, computed as clubSandwich's
//! `vcovCR(fit, type = "CR2")` computes it for an lmerMod, and clubSandwich's Satterthwaite df
//! for the t test of each coefficient (`coef_test(..., test = "Satterthwaite")`).
//!
//! The recipe (clubSandwich 0.5, `vcov_CR` with `inverse_var = TRUE`): the cluster is the
//! grouping factor with the fewest levels, and every other grouping factor must be nested in
//! it. Per cluster j the working covariance is the fitted marginal one on the relative scale,
//! V_j = Z_j ΛΛ' Z_j' + diag(δ²) (lme4's Λ; δ = 1 without `residual by`), W_j = V_j⁻¹,
//! M = (Σ X_j' W_j X_j)⁻¹. With V_j = L_j L_j', CR2's adjustment is
//! A_j = L_j (L_j' (V_j − X_j M X_j') L_j)^(−1/2) L_j' (CR0: A_j = I; eigenvalues below 1e-12
//! count as 0 in the inverse square root), and
//! Cov_CR(β) = M (Σ_j X_j' W_j A_j e_j e_j' A_j' W_j X_j) M with marginal residuals
//! e = y − offset − Xβ.
//!
//! This needs the rows of each cluster, which estimation never keeps: it runs on
//! `design::ObservationRows`, a second pass over the frame after the fit. It must not refit.

use nalgebra::{DMatrix, DVector};

use crate::design::ObservationRows;
use crate::estimate::Fit;

/// The largest cluster handled: CR2 needs the inverse square root of a dense n_j × n_j matrix
/// per cluster (O(n_j³) work, O(n_j²) memory), so designs with huge clusters are refused with a
/// message rather than left running.
pub const MAX_CLUSTER_SIZE: usize = 3000;

/// Which small-sample adjustment of the sandwich.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    /// No adjustment (Liang–Zeger).
    Cr0,
    /// Bell and McCaffrey's bias-reduced linearization.
    Cr2,
}

impl Adjustment {
    pub fn name(self) -> &'static str {
        match self {
            Adjustment::Cr0 => "CR0",
            Adjustment::Cr2 => "CR2",
        }
    }
}

/// The cluster-robust covariance of β and what it was computed over.
#[derive(Debug, Clone)]
pub struct ClusterRobust {
    pub adjustment: Adjustment,
    /// The grouping factor whose levels are the clusters (lme4's name).
    pub cluster: String,
    pub clusters: usize,
    /// p × p, in the order of `Design::fixed`.
    pub covariance: DMatrix<f64>,
    /// clubSandwich's Satterthwaite df of each coefficient's t test.
    pub df: Vec<f64>,
}

impl ClusterRobust {
    pub fn se(&self) -> Vec<f64> {
        self.covariance
            .diagonal()
            .iter()
            .map(|v| v.sqrt())
            .collect()
    }
}

/// Why a cluster-robust covariance could not be computed (plain text for a report warning).
#[derive(Debug, Clone, PartialEq)]
pub struct NotAvailable(pub String);

/// The cluster-robust covariance of the fit's fixed effects. `names` are the random terms'
/// grouping names (`Design::random[k].name`), for choosing and naming the cluster.
pub fn cluster_robust(
    rows: &ObservationRows,
    fit: &Fit,
    names: &[String],
    adjustment: Adjustment,
) -> Result<ClusterRobust, NotAvailable> {
    let p = rows.x.ncols();
    if rows.terms.is_empty() {
        return Err(NotAvailable(
            "cluster-robust standard errors need a grouping factor (a random term)".into(),
        ));
    }
    if p == 0 || fit.beta.len() != p {
        return Err(NotAvailable("no fixed effects to give robust SEs".into()));
    }
    let (cluster_name, members) = clusters(rows, names)?;
    let nclusters = members.len();
    let (blocks, xwx) = cluster_blocks(rows, fit, &members)?;
    let Some(bread) = xwx.cholesky().map(|c| c.inverse()) else {
        return Err(NotAvailable(
            "X'V⁻¹X is singular: the fixed effects are not identified".into(),
        ));
    };
    let (covariance, df) = sandwich(&blocks, &bread, adjustment);
    Ok(ClusterRobust {
        adjustment,
        cluster: cluster_name,
        clusters: nclusters,
        covariance,
        df,
    })
}

/// The cluster's name and, per cluster, its observations: lme4's outer group (the grouping
/// factor with the fewest levels, the first on ties), which every other must be nested in.
fn clusters(
    rows: &ObservationRows,
    names: &[String],
) -> Result<(String, Vec<Vec<usize>>), NotAvailable> {
    let outer = (0..rows.terms.len())
        .min_by_key(|&k| rows.terms[k].nlevels)
        .unwrap_or(0);
    let cluster_name = names.get(outer).cloned().unwrap_or_default();
    let Some(cluster) = rows.terms[outer]
        .level
        .iter()
        .copied()
        .collect::<Option<Vec<usize>>>()
    else {
        return Err(NotAvailable(format!(
            "some observations have no `{cluster_name}` group (a term of another equation)"
        )));
    };
    check_nested(rows, names, &cluster, &cluster_name)?;
    let nclusters = rows.terms[outer].nlevels;
    if nclusters < 2 {
        return Err(NotAvailable(
            "cluster-robust SEs need at least two clusters".into(),
        ));
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); nclusters];
    for (i, &c) in cluster.iter().enumerate() {
        members[c].push(i);
    }
    let largest = members.iter().map(Vec::len).max().unwrap_or(0);
    if largest > MAX_CLUSTER_SIZE {
        return Err(NotAvailable(format!(
            "a `{cluster_name}` cluster has {largest} observations; CR2 works with dense \
             n_j × n_j matrices per cluster and is limited to {MAX_CLUSTER_SIZE}"
        )));
    }
    Ok((cluster_name, members))
}

/// Every level of every grouping factor lies in one cluster.
fn check_nested(
    rows: &ObservationRows,
    names: &[String],
    cluster: &[usize],
    cluster_name: &str,
) -> Result<(), NotAvailable> {
    for (k, term) in rows.terms.iter().enumerate() {
        let mut owner = vec![usize::MAX; term.nlevels];
        for (level, &c) in term.level.iter().zip(cluster) {
            if let Some(l) = level {
                if owner[*l] == usize::MAX {
                    owner[*l] = c;
                } else if owner[*l] != c {
                    return Err(NotAvailable(format!(
                        "`{}` is not nested in `{cluster_name}`: cluster-robust SEs need nested \
                         random effects",
                        names.get(k).map_or("a grouping factor", String::as_str)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// One cluster's rows of X, its working covariance V_j with V_j = L_j L_j', W_j = V_j⁻¹ and its
/// marginal residuals.
struct Cluster {
    x: DMatrix<f64>,
    v: DMatrix<f64>,
    chol: DMatrix<f64>,
    w: DMatrix<f64>,
    e: DVector<f64>,
}

/// Each cluster's `Cluster` and Σ X_j' W_j X_j, in cluster order.
fn cluster_blocks(
    rows: &ObservationRows,
    fit: &Fit,
    members: &[Vec<usize>],
) -> Result<(Vec<Cluster>, DMatrix<f64>), NotAvailable> {
    let n = rows.len();
    let p = rows.x.ncols();
    // ΛΛ' per term, and δ² per class, on σ²'s scale.
    let sigma2 = fit.sigma * fit.sigma;
    let relative: Vec<DMatrix<f64>> = fit.random.iter().map(|c| &c.covariance / sigma2).collect();
    let delta2: Vec<f64> = fit.residual.iter().map(|r| r.delta * r.delta).collect();
    let residuals = DVector::from_fn(n, |i, _| {
        rows.y[i] - rows.offset[i] - (rows.x.row(i) * &fit.beta)[(0, 0)]
    });
    let mut blocks = Vec::with_capacity(members.len());
    let mut xwx = DMatrix::zeros(p, p);
    for obs in members {
        let m = obs.len();
        let v = marginal_covariance(rows, obs, &relative, &delta2);
        let Some(chol) = v.clone().cholesky() else {
            return Err(NotAvailable(
                "a cluster's marginal covariance is not positive definite".into(),
            ));
        };
        let w = chol.inverse();
        let x = DMatrix::from_fn(m, p, |a, j| rows.x[(obs[a], j)]);
        let e = DVector::from_fn(m, |a, _| residuals[obs[a]]);
        xwx += x.transpose() * &w * &x;
        blocks.push(Cluster {
            x,
            v,
            chol: chol.l(),
            w,
            e,
        });
    }
    Ok((blocks, xwx))
}

/// M (Σ_j X_j' W_j A_j e_j e_j' A_j' W_j X_j) M with the bread M = (Σ X_j' W_j X_j)⁻¹, and
/// each coefficient's Satterthwaite df.
fn sandwich(
    blocks: &[Cluster],
    bread: &DMatrix<f64>,
    adjustment: Adjustment,
) -> (DMatrix<f64>, Vec<f64>) {
    let p = bread.nrows();
    let lower_bread = bread
        .clone()
        .cholesky()
        .map_or_else(|| DMatrix::zeros(p, p), |c| c.l());
    let mut meat = DMatrix::zeros(p, p);
    // For the Satterthwaite df: per cluster G_j = M E_j L_j (p × n_j) and H_j = M E_j X_j L_M.
    let mut g_rows: Vec<DMatrix<f64>> = Vec::with_capacity(blocks.len());
    let mut h: Vec<DMatrix<f64>> = Vec::with_capacity(blocks.len());
    for b in blocks {
        let estimating = match adjustment {
            Adjustment::Cr0 => b.x.transpose() * &b.w,
            Adjustment::Cr2 => {
                let hat = &b.x * bread * b.x.transpose();
                let g = b.chol.transpose() * (&b.v - hat) * &b.chol;
                let a = &b.chol * inverse_sqrt(&g) * b.chol.transpose();
                b.x.transpose() * &b.w * a
            }
        };
        let component = &estimating * &b.e;
        meat += &component * component.transpose();
        let me = bread * &estimating;
        g_rows.push(&me * &b.chol);
        h.push(&me * &b.x * &lower_bread);
    }
    let covariance = bread * meat * bread;
    let df = (0..p).map(|i| satterthwaite_df(i, &g_rows, &h)).collect();
    (covariance, df)
}

/// V_j = Σ_k Z_kj (I ⊗ ΛΛ'_k) Z_kj' + diag(δ²) over the observations `obs` of one cluster,
/// relative to σ²: per term, each level's rows get Z C Z' on their block.
fn marginal_covariance(
    rows: &ObservationRows,
    obs: &[usize],
    relative: &[DMatrix<f64>],
    delta2: &[f64],
) -> DMatrix<f64> {
    let m = obs.len();
    let mut v = DMatrix::from_fn(m, m, |a, b| {
        if a == b {
            delta2.get(rows.class[obs[a]]).copied().unwrap_or(1.0)
        } else {
            0.0
        }
    });
    for (term, c) in rows.terms.iter().zip(relative) {
        let mut by_level: Vec<(usize, Vec<usize>)> = Vec::new();
        for (a, &i) in obs.iter().enumerate() {
            if let Some(l) = term.level[i] {
                match by_level.iter_mut().find(|(level, _)| *level == l) {
                    Some((_, members)) => members.push(a),
                    None => by_level.push((l, vec![a])),
                }
            }
        }
        for (_, members) in &by_level {
            let z = DMatrix::from_fn(members.len(), term.z.ncols(), |r, j| {
                term.z[(obs[members[r]], j)]
            });
            let block = &z * c * z.transpose();
            for (r, &a) in members.iter().enumerate() {
                for (t, &b) in members.iter().enumerate() {
                    v[(a, b)] += block[(r, t)];
                }
            }
        }
    }
    v
}

/// clubSandwich's `Satterthwaite_df` for coefficient `i` (inverse-variance working model):
/// P = diag(‖G_j[i,·]‖²) − H[i]'H[i] over clusters, df = 2 tr(P)² / (2 ‖P‖²_F).
fn satterthwaite_df(i: usize, g: &[DMatrix<f64>], h: &[DMatrix<f64>]) -> f64 {
    let j = g.len();
    let mut p = DMatrix::from_fn(j, j, |a, b| {
        -(h[a].row(i) * h[b].row(i).transpose())[(0, 0)]
    });
    for a in 0..j {
        p[(a, a)] += g[a].row(i).norm_squared();
    }
    let e = p.trace();
    let v = 2.0 * p.norm_squared();
    2.0 * e * e / v
}

/// x^(−1/2) of a symmetric positive semi-definite matrix, with eigenvalues ≤ 1e-12 mapped to 0
/// (clubSandwich's `matrix_power`).
fn inverse_sqrt(x: &DMatrix<f64>) -> DMatrix<f64> {
    let symmetric = (x + x.transpose()) * 0.5;
    let eig = symmetric.symmetric_eigen();
    let values = eig
        .eigenvalues
        .map(|v| if v > 1e-12 { v.powf(-0.5) } else { 0.0 });
    &eig.eigenvectors * DMatrix::from_diagonal(&values) * eig.eigenvectors.transpose()
}
