//! Small dense kernels on column-major slices, for the per-level blocks of the blocked Cholesky.
//!
//! Why by hand: the blocks are tiny (q ≤ a handful, p + 1 ≤ a dozen) and there are thousands per
//! evaluation; nalgebra's `DMatrix` allocates for every product, which dominated the cost of an
//! evaluation. These kernels write into caller-owned buffers. This module must not know about
//! models: only matrices as `(slice, rows, cols)`.

/// `out = w₀·b₀ + w₁·b₁ + …` over `(class, block)` pairs.
pub fn combine<'a>(
    out: &mut [f64],
    blocks: impl Iterator<Item = (usize, &'a [f64])>,
    weights: &[f64],
) {
    out.iter_mut().for_each(|v| *v = 0.0);
    for (c, b) in blocks {
        let w = weights[c];
        for (o, v) in out.iter_mut().zip(b) {
            *o += w * v;
        }
    }
}

/// `combine` into `buf`, except that a single block of weight 1 (one residual class, the common
/// case) is returned as it is, without copying.
pub fn weighted<'a, I>(buf: &'a mut [f64], blocks: I, weights: &[f64]) -> &'a [f64]
where
    I: Iterator<Item = (usize, &'a [f64])> + Clone,
{
    let mut probe = blocks.clone();
    if let (Some((c, b)), None) = (probe.next(), probe.next()) {
        if weights[c] == 1.0 {
            return b;
        }
    }
    combine(buf, blocks, weights);
    buf
}

/// `out = T'A` for lower-triangular `T` (r×r) and `A` (r×c).
pub fn lower_t_mul(t: &[f64], r: usize, a: &[f64], c: usize, out: &mut [f64]) {
    for j in 0..c {
        for i in 0..r {
            let mut s = 0.0;
            for k in i..r {
                s += t[i * r + k] * a[j * r + k];
            }
            out[j * r + i] = s;
        }
    }
}

/// `out = A T` for `A` (r×c) and lower-triangular `T` (c×c).
pub fn mul_lower(a: &[f64], r: usize, t: &[f64], c: usize, out: &mut [f64]) {
    for j in 0..c {
        for i in 0..r {
            let mut s = 0.0;
            for k in j..c {
                s += a[k * r + i] * t[j * c + k];
            }
            out[j * r + i] = s;
        }
    }
}

/// In-place lower Cholesky of the n×n symmetric `a` (lower triangle read). Returns log|L|² or
/// `None` when `a` is not positive definite.
pub fn cholesky(a: &mut [f64], n: usize) -> Option<f64> {
    // One logarithm per call: the product of a few diagonals cannot over- or underflow here
    // (each is ≥ 1 for M + I, and moderate for the X block).
    let mut product = 1.0;
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[k * n + j] * a[k * n + j];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        product *= d;
        let r = 1.0 / d;
        for i in j + 1..n {
            let mut s = a[j * n + i];
            for k in 0..j {
                s -= a[k * n + i] * a[k * n + j];
            }
            a[j * n + i] = s * r;
        }
        for i in 0..j {
            a[j * n + i] = 0.0;
        }
    }
    Some(2.0 * product.ln())
}

/// Solve `L X = B` in place for lower-triangular `L` (n×n) and `B` (n×c).
pub fn forward_solve(l: &[f64], n: usize, b: &mut [f64], c: usize) {
    // Reciprocals once per call: divisions are the slowest step of these tiny solves.
    let mut inverse = [0.0; 8];
    let small = n <= inverse.len();
    if small {
        for i in 0..n {
            inverse[i] = 1.0 / l[i * n + i];
        }
    }
    for j in 0..c {
        let col = &mut b[j * n..(j + 1) * n];
        for i in 0..n {
            let mut s = col[i];
            for k in 0..i {
                s -= l[k * n + i] * col[k];
            }
            col[i] = if small {
                s * inverse[i]
            } else {
                s / l[i * n + i]
            };
        }
    }
}

/// `out[r0 + i, c0 + j] -= Σ_k a[k, i] b[k, j]` (out −= A'B) for `A` (k×ra), `B` (k×cb), into a
/// column-major `out` with `ld` rows.
#[allow(clippy::too_many_arguments)]
pub fn sub_at_b(
    out: &mut [f64],
    ld: usize,
    r0: usize,
    c0: usize,
    a: &[f64],
    ra: usize,
    b: &[f64],
    cb: usize,
    k: usize,
) {
    for j in 0..cb {
        let bj = &b[j * k..(j + 1) * k];
        for i in 0..ra {
            let ai = &a[i * k..(i + 1) * k];
            let s: f64 = ai.iter().zip(bj).map(|(x, y)| x * y).sum();
            out[(c0 + j) * ld + r0 + i] -= s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    fn m(r: usize, c: usize, seed: f64) -> DMatrix<f64> {
        DMatrix::from_fn(r, c, |i, j| ((i * 7 + j * 3) as f64 * seed).sin())
    }

    #[test]
    fn kernels_agree_with_nalgebra() {
        let t = m(3, 3, 0.7).lower_triangle();
        let a = m(3, 4, 1.3);
        let mut out = vec![0.0; 12];
        lower_t_mul(t.as_slice(), 3, a.as_slice(), 4, &mut out);
        assert!((DMatrix::from_column_slice(3, 4, &out) - t.transpose() * &a).norm() < 1e-12);

        let b = m(4, 3, 0.4);
        mul_lower(b.as_slice(), 4, t.as_slice(), 3, &mut out);
        assert!((DMatrix::from_column_slice(4, 3, &out) - &b * &t).norm() < 1e-12);

        let spd = &a * a.transpose() + DMatrix::identity(3, 3);
        let mut l = spd.as_slice().to_vec();
        let logdet = cholesky(&mut l, 3).unwrap();
        let l = DMatrix::from_column_slice(3, 3, &l);
        assert!((&l * l.transpose() - &spd).norm() < 1e-12);
        assert!((logdet - spd.determinant().ln()).abs() < 1e-12);

        let mut x = a.as_slice().to_vec();
        forward_solve(l.as_slice(), 3, &mut x, 4);
        assert!((&l * DMatrix::from_column_slice(3, 4, &x) - &a).norm() < 1e-12);

        let mut big = vec![0.0; 25];
        sub_at_b(
            &mut big,
            5,
            1,
            1,
            a.as_slice(),
            4,
            b.transpose().as_slice(),
            4,
            3,
        );
        let want = -(a.transpose() * b.transpose());
        let got = DMatrix::from_column_slice(5, 5, &big);
        assert!((got.view((1, 1), (4, 4)) - want).norm() < 1e-12);

        let mut neg = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky(&mut neg, 2).is_none());
    }
}
