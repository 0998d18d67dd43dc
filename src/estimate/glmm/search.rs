//! The two minimizers of the GLMM driver, both derivative-free in the sense that they only
//! evaluate the criterion: Nelder–Mead (glmer's first stage over θ, where the criterion has no
//! cheap gradient and the start may be far) and a damped Newton method with central-difference
//! gradient and Hessian (the second stage over (θ, β), started close to the optimum, run until
//! the Newton decrement says the criterion is settled). Sequential and deterministic. Must not
//! know what the criterion is.

use nalgebra::{DMatrix, DVector};

/// A criterion: `None` where it cannot be evaluated (treated as +∞).
pub type Criterion<'a> = dyn Fn(&[f64]) -> Option<f64> + Sync + 'a;

/// Where a minimizer stopped.
#[derive(Debug, Clone)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub evaluations: usize,
    pub converged: bool,
    /// Half the squared Newton decrement at `x` (Newton only): how much the criterion could
    /// still fall.
    pub remaining: f64,
}

fn value(f: &Criterion, x: &[f64], count: &mut usize) -> f64 {
    *count += 1;
    f(x).filter(|v| v.is_finite()).unwrap_or(f64::INFINITY)
}

/// Nelder–Mead from `start` with initial steps `step`, until the simplex's values agree to
/// `ftol` (absolute) or `max_evaluations`.
pub fn nelder_mead(
    f: &Criterion,
    start: &[f64],
    step: f64,
    ftol: f64,
    max_evaluations: usize,
) -> Minimum {
    let n = start.len();
    let mut count = 0;
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((start.to_vec(), value(f, start, &mut count)));
    for i in 0..n {
        let mut x = start.to_vec();
        x[i] += step;
        let v = value(f, &x, &mut count);
        simplex.push((x, v));
    }
    let mut converged = false;
    while count < max_evaluations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        let size = (1..=n)
            .flat_map(|k| (0..n).map(move |i| (k, i)))
            .fold(0.0_f64, |m, (k, i)| {
                m.max((simplex[k].0[i] - simplex[0].0[i]).abs())
            });
        if (worst - best).abs() <= ftol && size < 1e-6 {
            converged = true;
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|i| simplex[..n].iter().map(|s| s.0[i]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|i| centroid[i] + t * (simplex[n].0[i] - centroid[i]))
                .collect()
        };
        let xr = along(-1.0);
        let fr = value(f, &xr, &mut count);
        if fr < best {
            let xe = along(-2.0);
            let fe = value(f, &xe, &mut count);
            simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (xr, fr);
        } else {
            let t = if fr < worst { -0.5 } else { 0.5 };
            let xc = along(t);
            let fc = value(f, &xc, &mut count);
            if fc < worst.min(fr) {
                simplex[n] = (xc, fc);
            } else {
                let x0 = simplex[0].0.clone();
                for s in simplex.iter_mut().skip(1) {
                    let x: Vec<f64> = (0..n).map(|i| x0[i] + 0.5 * (s.0[i] - x0[i])).collect();
                    *s = (x.clone(), value(f, &x, &mut count));
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    Minimum {
        x: simplex[0].0.clone(),
        evaluations: count,
        converged,
        remaining: f64::NAN,
    }
}

/// Central-difference gradient and Hessian of `f` at `x` (steps `h` per coordinate).
fn derivatives(
    f: &Criterion,
    x: &[f64],
    fx: f64,
    h: &[f64],
    count: &mut usize,
) -> (DVector<f64>, DMatrix<f64>) {
    let n = x.len();
    let at = |d: &[(usize, f64)], count: &mut usize| {
        let mut y = x.to_vec();
        for &(i, s) in d {
            y[i] += s;
        }
        value(f, &y, count)
    };
    let mut g = DVector::zeros(n);
    let mut hess = DMatrix::zeros(n, n);
    for i in 0..n {
        let (fp, fm) = (at(&[(i, h[i])], count), at(&[(i, -h[i])], count));
        g[i] = (fp - fm) / (2.0 * h[i]);
        hess[(i, i)] = (fp - 2.0 * fx + fm) / (h[i] * h[i]);
        for j in 0..i {
            let fpp = at(&[(i, h[i]), (j, h[j])], count);
            let fpm = at(&[(i, h[i]), (j, -h[j])], count);
            let fmp = at(&[(i, -h[i]), (j, h[j])], count);
            let fmm = at(&[(i, -h[i]), (j, -h[j])], count);
            let v = (fpp - fpm - fmp + fmm) / (4.0 * h[i] * h[j]);
            hess[(i, j)] = v;
            hess[(j, i)] = v;
        }
    }
    (g, hess)
}

/// Damped Newton from `start`: each step solves (H + λI)s = −g with λ raised until H + λI is
/// positive definite and the step lowers the criterion. Converged when half the squared Newton
/// decrement g'H⁻¹g is below `tolerance` with H positive definite.
pub fn newton(f: &Criterion, start: &[f64], tolerance: f64, max_iterations: usize) -> Minimum {
    let n = start.len();
    let mut count = 0;
    let mut x = start.to_vec();
    let mut fx = value(f, &x, &mut count);
    let mut remaining = f64::INFINITY;
    let mut converged = false;
    for _ in 0..max_iterations {
        let h: Vec<f64> = x.iter().map(|v| 1e-4 * v.abs().max(0.1)).collect();
        let (g, hess) = derivatives(f, &x, fx, &h, &mut count);
        if let Some(chol) = hess.clone().cholesky() {
            let s = chol.solve(&g);
            remaining = g.dot(&s) / 2.0;
            if remaining < tolerance {
                converged = true;
                break;
            }
        }
        let scale = hess
            .diagonal()
            .iter()
            .fold(0.0_f64, |m, v| m.max(v.abs()))
            .max(1e-8);
        let mut lambda = 0.0;
        let mut moved = false;
        for _ in 0..60 {
            let damped = &hess + DMatrix::identity(n, n) * lambda;
            if let Some(chol) = damped.cholesky() {
                let s = chol.solve(&(-&g));
                let y: Vec<f64> = (0..n).map(|i| x[i] + s[i]).collect();
                let fy = value(f, &y, &mut count);
                if fy <= fx {
                    (x, fx, moved) = (y, fy, true);
                    break;
                }
            }
            lambda = if lambda == 0.0 {
                1e-6 * scale
            } else {
                lambda * 10.0
            };
        }
        if !moved {
            break;
        }
    }
    Minimum {
        x,
        evaluations: count,
        converged,
        remaining,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_find_a_quadratic_minimum() {
        let f = |x: &[f64]| Some((x[0] - 1.0).powi(2) + 3.0 * (x[1] + 2.0).powi(2) + x[0] * x[1]);
        let nm = nelder_mead(&f, &[0.0, 0.0], 0.5, 1e-12, 5000);
        let nt = newton(&f, &nm.x, 1e-14, 50);
        assert!(nt.converged);
        // Minimum: gradient (2(x−1) + y, 6(y+2) + x) = 0 → x = 26/11·…; check stationarity.
        let (x, y) = (nt.x[0], nt.x[1]);
        assert!((2.0 * (x - 1.0) + y).abs() < 1e-6 && (6.0 * (y + 2.0) + x).abs() < 1e-6);
    }
}
