//! Numerical first and second derivatives by central differences with Richardson extrapolation.
//!
//! Owns the step-size and extrapolation rules, chosen like R's numDeriv (relative step
//! `d·|x|`, an absolute step where `x` is near zero, four halvings) because lmerTest computes its
//! Satterthwaite ingredients with numDeriv and we want the same numbers, not merely close ones.
//! It must not know what is being differentiated.

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

/// numDeriv's defaults: relative step `d = 1e-4` for first derivatives and `d = 0.1` for the
/// Hessian (`genD`: second differences need larger steps to stay clear of rounding), `eps = 1e-4`
/// absolute step for components smaller than `zero_tol`, `r = 4` Richardson rounds halving the
/// step (`v = 2`).
const RELATIVE_STEP: f64 = 1e-4;
const HESSIAN_RELATIVE_STEP: f64 = 0.1;
const ABSOLUTE_STEP: f64 = 1e-4;
const ROUNDS: usize = 4;

fn zero_tolerance() -> f64 {
    (f64::EPSILON / 7e-7).sqrt()
}

fn initial_steps(x: &[f64], relative: f64) -> Vec<f64> {
    let zero_tol = zero_tolerance();
    x.iter()
        .map(|&xi| {
            if xi.abs() < zero_tol {
                ABSOLUTE_STEP
            } else {
                relative * xi.abs()
            }
        })
        .collect()
}

/// Richardson extrapolation of central-difference estimates `a[k]` made with steps `h / 2^k`
/// (error O(h²), so each round removes the next even power).
fn extrapolate(mut a: Vec<DVector<f64>>) -> DVector<f64> {
    let mut power = 4.0;
    while a.len() > 1 {
        a = a
            .windows(2)
            .map(|w| (&w[1] * power - &w[0]) / (power - 1.0))
            .collect();
        power *= 4.0;
    }
    a.pop().expect("at least one round")
}

/// The Jacobian of a vector-valued function: column `j` is ∂f/∂x_j.
pub fn jacobian(f: &mut dyn FnMut(&[f64]) -> DVector<f64>, x: &[f64]) -> DMatrix<f64> {
    let steps = initial_steps(x, RELATIVE_STEP);
    let m = f(x).len();
    let mut jac = DMatrix::zeros(m, x.len());
    let mut point = x.to_vec();
    for j in 0..x.len() {
        let mut rounds = Vec::with_capacity(ROUNDS);
        let mut h = steps[j];
        for _ in 0..ROUNDS {
            point[j] = x[j] + h;
            let up = f(&point);
            point[j] = x[j] - h;
            let down = f(&point);
            point[j] = x[j];
            rounds.push((up - down) / (2.0 * h));
            h /= 2.0;
        }
        jac.set_column(j, &extrapolate(rounds));
    }
    jac
}

/// The Hessian of a scalar function, symmetric by construction.
///
/// Diagonal: second central differences; off-diagonal: the mixed difference
/// `[f(x+hᵢ+hⱼ) − f(x+hᵢ−hⱼ) − f(x−hᵢ+hⱼ) + f(x−hᵢ−hⱼ)] / 4hᵢhⱼ`; both Richardson-extrapolated.
pub fn hessian(f: &mut dyn FnMut(&[f64]) -> f64, x: &[f64]) -> DMatrix<f64> {
    let steps = initial_steps(x, HESSIAN_RELATIVE_STEP);
    let f0 = f(x);
    let values: Vec<f64> = hessian_points(x, &steps).iter().map(|p| f(p)).collect();
    hessian_from_values(x, &steps, f0, &values)
}

/// `hessian` with the function evaluated at its points in parallel (rayon). Each evaluation is
/// the same call on the same point as in `hessian`, so the result is identical for any number of
/// threads.
pub fn hessian_parallel(f: &(dyn Fn(&[f64]) -> f64 + Sync), x: &[f64]) -> DMatrix<f64> {
    let steps = initial_steps(x, HESSIAN_RELATIVE_STEP);
    let f0 = f(x);
    let values: Vec<f64> = hessian_points(x, &steps).par_iter().map(|p| f(p)).collect();
    hessian_from_values(x, &steps, f0, &values)
}

/// Every point the Hessian evaluates, in the order `hessian_from_values` reads them: per
/// (i, j ≤ i), per round, the two points (diagonal) or four corners (off-diagonal).
fn hessian_points(x: &[f64], steps: &[f64]) -> Vec<Vec<f64>> {
    let n = x.len();
    let mut points = Vec::new();
    for i in 0..n {
        for j in 0..=i {
            let (mut hi, mut hj) = (steps[i], steps[j]);
            for _ in 0..ROUNDS {
                if i == j {
                    for s in [1.0, -1.0] {
                        let mut p = x.to_vec();
                        p[i] = x[i] + s * hi;
                        points.push(p);
                    }
                } else {
                    for (si, sj) in [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)] {
                        let mut p = x.to_vec();
                        p[i] = x[i] + si * hi;
                        p[j] = x[j] + sj * hj;
                        points.push(p);
                    }
                }
                hi /= 2.0;
                hj /= 2.0;
            }
        }
    }
    points
}

fn hessian_from_values(x: &[f64], steps: &[f64], f0: f64, values: &[f64]) -> DMatrix<f64> {
    let n = x.len();
    let mut hess = DMatrix::zeros(n, n);
    let mut v = values.iter().copied();
    let mut next = || v.next().unwrap_or(f64::NAN);
    for i in 0..n {
        for j in 0..=i {
            let mut rounds = Vec::with_capacity(ROUNDS);
            let (mut hi, mut hj) = (steps[i], steps[j]);
            for _ in 0..ROUNDS {
                let value = if i == j {
                    let (up, down) = (next(), next());
                    (up - 2.0 * f0 + down) / (hi * hi)
                } else {
                    let (pp, pm, mp, mm) = (next(), next(), next(), next());
                    (pp - pm - mp + mm) / (4.0 * hi * hj)
                };
                rounds.push(DVector::from_element(1, value));
                hi /= 2.0;
                hj /= 2.0;
            }
            let value = extrapolate(rounds)[0];
            hess[(i, j)] = value;
            hess[(j, i)] = value;
        }
    }
    hess
}

/// `jacobian` with the function evaluated in parallel (rayon); identical results for any number
/// of threads.
pub fn jacobian_parallel(f: &(dyn Fn(&[f64]) -> DVector<f64> + Sync), x: &[f64]) -> DMatrix<f64> {
    let ok = |p: &[f64]| -> Result<DVector<f64>, std::convert::Infallible> { Ok(f(p)) };
    match try_jacobian_parallel(&ok, x, ROUNDS) {
        Ok(jac) => jac,
        Err(never) => match never {},
    }
}

/// A vector-valued function that can fail, evaluated from several threads.
pub type FallibleMap<'a, E> = dyn Fn(&[f64]) -> Result<DVector<f64>, E> + Sync + 'a;

/// `jacobian_parallel` with `rounds` Richardson rounds (each costs two evaluations per
/// coordinate: an exact gradient needs fewer than numDeriv's four) for a function that can
/// fail: the error of the first failing point in the order the points are laid out
/// (coordinate, round, up before down), so which thread failed first never changes the message.
pub fn try_jacobian_parallel<E: Send>(
    f: &FallibleMap<'_, E>,
    x: &[f64],
    rounds: usize,
) -> Result<DMatrix<f64>, E> {
    let rounds = rounds.max(1);
    let steps = initial_steps(x, RELATIVE_STEP);
    let mut points = Vec::with_capacity(x.len() * rounds * 2);
    for j in 0..x.len() {
        let mut h = steps[j];
        for _ in 0..rounds {
            for s in [1.0, -1.0] {
                let mut p = x.to_vec();
                p[j] = x[j] + s * h;
                points.push(p);
            }
            h /= 2.0;
        }
    }
    let values: Vec<Result<DVector<f64>, E>> = points.par_iter().map(|p| f(p)).collect();
    let values: Vec<DVector<f64>> = values.into_iter().collect::<Result<_, E>>()?;
    let m = match values.first() {
        Some(v) => v.len(),
        None => f(x)?.len(),
    };
    let mut jac = DMatrix::zeros(m, x.len());
    let mut v = values.into_iter();
    for (j, &step) in steps.iter().enumerate() {
        let mut estimates = Vec::with_capacity(rounds);
        let mut h = step;
        for _ in 0..rounds {
            let up = v
                .next()
                .unwrap_or_else(|| DVector::from_element(m, f64::NAN));
            let down = v
                .next()
                .unwrap_or_else(|| DVector::from_element(m, f64::NAN));
            estimates.push((up - down) / (2.0 * h));
            h /= 2.0;
        }
        jac.set_column(j, &extrapolate(estimates));
    }
    Ok(jac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobian_of_a_smooth_map() {
        let mut f = |x: &[f64]| DVector::from_vec(vec![x[0] * x[1], x[0].exp(), x[1].powi(3)]);
        let jac = jacobian(&mut f, &[0.7, -1.3]);
        let expected = [[-1.3, 0.7], [0.7f64.exp(), 0.0], [0.0, 3.0 * 1.69]];
        for (r, row) in expected.iter().enumerate() {
            for (c, &value) in row.iter().enumerate() {
                assert!((jac[(r, c)] - value).abs() < 1e-9, "({r},{c})");
            }
        }
    }

    #[test]
    fn parallel_derivatives_equal_serial_ones() {
        let f = |v: &[f64]| v[0] * v[0] * v[1] + v[1].sin() + (v[0] * v[1]).exp() + v[2].cosh();
        let x = [0.4, 1.1, -0.3];
        assert_eq!(hessian(&mut |v| f(v), &x), hessian_parallel(&f, &x));
        let g = |v: &[f64]| DVector::from_vec(vec![f(v), v[0] * v[2]]);
        assert_eq!(jacobian(&mut |v| g(v), &x), jacobian_parallel(&g, &x));
    }

    #[test]
    fn hessian_of_a_smooth_function() {
        // f = x² y + sin(y) + exp(x y): the Hessian written out by hand.
        let mut f = |v: &[f64]| v[0] * v[0] * v[1] + v[1].sin() + (v[0] * v[1]).exp();
        let (x, y): (f64, f64) = (0.4, 1.1);
        let e = (x * y).exp();
        let expected = [
            [2.0 * y + y * y * e, 2.0 * x + e + x * y * e],
            [2.0 * x + e + x * y * e, -y.sin() + x * x * e],
        ];
        let hess = hessian(&mut f, &[x, y]);
        for r in 0..2 {
            for c in 0..2 {
                assert!((hess[(r, c)] - expected[r][c]).abs() < 1e-7, "({r},{c})");
            }
        }
    }
}
