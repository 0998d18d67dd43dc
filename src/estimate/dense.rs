//! Small dense kernels on column-major slices, for the per-level blocks of the blocked Cholesky.
//!
//! Why by hand: the blocks are tiny (q ≤ a handful, p + 1 ≤ a dozen) and there are thousands per
//! evaluation; nalgebra's `DMatrix` allocates for every product, which dominated the cost of an
//! evaluation. These kernels write into caller-owned buffers. This module must not know about
//! models: only matrices as `(slice, rows, cols)`.
//!
//! Large blocks (n ≥ `LARGE`: the dense Schur complement of a crossed design, ~1000 wide) take
//! recursive, cache-friendly versions whose bulk is matrix products through nalgebra's `gemm`,
//! which hands them to `matrixmultiply` (single-threaded, so the digits do not depend on the
//! number of threads; its kernel is picked at run time, FMA/AVX2 where available). Below `LARGE`
//! the plain loops run exactly as before, so small models' digits do not change.

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

/// In-place lower Cholesky of the n×n symmetric `a` (lower triangle read; the upper triangle is
/// left zero). Returns log|L|² or `None` when `a` is not positive definite.
pub fn cholesky(a: &mut [f64], n: usize) -> Option<f64> {
    if n >= LARGE {
        return large::cholesky(a, n);
    }
    cholesky_small(a, n)
}

/// The plain loop of `cholesky`, for every n (the large path's reference).
#[doc(hidden)]
pub fn cholesky_small(a: &mut [f64], n: usize) -> Option<f64> {
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
    if n >= LARGE {
        return large::forward_solve(l, n, b, c);
    }
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

/// Solve `L' X = B` in place for lower-triangular `L` (n×n) and `B` (n×c).
pub fn backward_solve(l: &[f64], n: usize, b: &mut [f64], c: usize) {
    if n >= LARGE {
        return large::backward_solve(l, n, b, c);
    }
    for j in 0..c {
        let col = &mut b[j * n..(j + 1) * n];
        for i in (0..n).rev() {
            let li = &l[i * n..(i + 1) * n];
            let mut s = col[i];
            for k in i + 1..n {
                s -= li[k] * col[k];
            }
            col[i] = s / li[i];
        }
    }
}

/// `out = (L L')⁻¹`, the full symmetric n×n inverse, from the lower Cholesky factor `L` (as
/// `cholesky` leaves it: the upper triangle is not read).
pub fn cholesky_inverse(l: &[f64], n: usize, out: &mut [f64]) {
    if n >= LARGE {
        return large::cholesky_inverse(l, n, out);
    }
    // W = L⁻¹ column by column (lower), then out = W'W.
    let mut w = vec![0.0; n * n];
    for j in 0..n {
        w[j * n + j] = 1.0 / l[j * n + j];
        for i in j + 1..n {
            let mut s = 0.0;
            for k in j..i {
                s -= l[k * n + i] * w[j * n + k];
            }
            w[j * n + i] = s / l[i * n + i];
        }
    }
    for j in 0..n {
        for i in j..n {
            let mut s = 0.0;
            for k in i..n {
                s += w[i * n + k] * w[j * n + k];
            }
            out[j * n + i] = s;
            out[i * n + j] = s;
        }
    }
}

/// From this size on, `cholesky`, `forward_solve`, `backward_solve` and `cholesky_inverse` take
/// the blocked paths of `large`.
pub const LARGE: usize = 96;

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

/// The blocked paths for n ≥ `LARGE`: recursive halving down to small leaves, so that nearly all
/// the work is in `gemm` calls on sub-blocks addressed as (slice starting at the block, leading
/// dimension). Blocks that are read while another is written are always in different columns
/// (split with `split_at_mut`) or copied first.
///
/// Large products and independent halves run on two tasks (`rayon::join`) split by output
/// columns at sizes fixed by the problem, never by the thread count: every output entry is
/// computed by the same operations in the same order, so the digits do not depend on threads.
mod large {
    use nalgebra::{Dyn, MatrixView, MatrixViewMut};

    type View<'a> = MatrixView<'a, f64, Dyn, Dyn, Dyn, Dyn>;
    type ViewMut<'a> = MatrixViewMut<'a, f64, Dyn, Dyn, Dyn, Dyn>;

    /// Leaves of the recursions (plain loops).
    const LEAF: usize = 32;
    /// Width of the row or column blocks of the blocked products and solves.
    const BLOCK: usize = 64;
    /// Multiply-adds from which a product is split in two tasks (about a millisecond of work).
    const PARALLEL_WORK: usize = 1 << 21;

    /// A (r×c) block whose (0, 0) is `a[0]`, or its transpose.
    #[derive(Clone, Copy)]
    struct Block<'a> {
        a: &'a [f64],
        ld: usize,
        rows: usize,
        cols: usize,
        transposed: bool,
    }

    fn block(a: &[f64], ld: usize, rows: usize, cols: usize) -> Block<'_> {
        Block {
            a,
            ld,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose of the (rows×cols) block at `a[0]`, a cols×rows operand.
    fn block_t(a: &[f64], ld: usize, rows: usize, cols: usize) -> Block<'_> {
        Block {
            a,
            ld,
            rows: cols,
            cols: rows,
            transposed: true,
        }
    }

    impl<'a> Block<'a> {
        fn at(&self, r: usize, c: usize) -> f64 {
            if self.transposed {
                self.a[r * self.ld + c]
            } else {
                self.a[c * self.ld + r]
            }
        }

        /// Columns `c0..c0 + cols` of this operand.
        fn columns(self, c0: usize, cols: usize) -> Block<'a> {
            let start = if self.transposed { c0 } else { c0 * self.ld };
            Block {
                a: &self.a[start..],
                cols,
                ..self
            }
        }

        fn view(self) -> View<'a> {
            if self.transposed {
                View::from_slice_with_strides(self.a, self.rows, self.cols, self.ld, 1)
            } else {
                View::from_slice_with_strides(self.a, self.rows, self.cols, 1, self.ld)
            }
        }
    }

    /// `C = α A B + β C` for the (A.rows × B.cols) block C at `c[0]` with leading dimension `ldc`.
    fn gemm(alpha: f64, a: Block, b: Block, beta: f64, c: &mut [f64], ldc: usize) {
        debug_assert_eq!(a.cols, b.rows);
        let (m, n) = (a.rows, b.cols);
        if m == 0 || n == 0 {
            return;
        }
        // nalgebra hands a product to `matrixmultiply` only when every dimension exceeds 5; its
        // fallback (column by column) reads past the end of an operand whose rows are strided
        // (our transposed blocks), so small products are done here.
        if m.min(n).min(a.cols) <= 5 {
            // Column by column of C: axpys down A's columns, or dots along a transposed A's rows
            // (both contiguous), so that thin products (solves with a few right-hand sides)
            // vectorise.
            for j in 0..n {
                let cj = &mut c[j * ldc..j * ldc + m];
                if beta == 0.0 {
                    cj.fill(0.0);
                } else if beta != 1.0 {
                    cj.iter_mut().for_each(|o| *o *= beta);
                }
                if a.transposed {
                    for (i, o) in cj.iter_mut().enumerate() {
                        let row = &a.a[i * a.ld..i * a.ld + a.cols];
                        let s: f64 = row.iter().enumerate().map(|(k, x)| x * b.at(k, j)).sum();
                        *o += alpha * s;
                    }
                } else {
                    for k in 0..a.cols {
                        let f = alpha * b.at(k, j);
                        let column = &a.a[k * a.ld..k * a.ld + m];
                        for (o, x) in cj.iter_mut().zip(column) {
                            *o += f * x;
                        }
                    }
                }
            }
            return;
        }
        if m * n * a.cols >= PARALLEL_WORK && n >= 2 * LEAF {
            let h = n / 2;
            let (c1, c2) = c.split_at_mut(h * ldc);
            rayon::join(
                || gemm(alpha, a, b.columns(0, h), beta, c1, ldc),
                || gemm(alpha, a, b.columns(h, n - h), beta, c2, ldc),
            );
            return;
        }
        let mut cv = ViewMut::from_slice_with_strides_mut(c, m, n, 1, ldc);
        cv.gemm(alpha, &a.view(), &b.view(), beta);
    }

    pub fn cholesky(a: &mut [f64], n: usize) -> Option<f64> {
        if !factor(a, n, n) {
            return None;
        }
        // The product of the diagonals, folded into a logarithm whenever it leaves [1e-100, 1e100]:
        // 1156 diagonals of 2 would overflow a plain product.
        let (mut log, mut product) = (0.0, 1.0);
        for j in 0..n {
            product *= a[j * n + j];
            if !(1e-100..=1e100).contains(&product) {
                log += f64::ln(product);
                product = 1.0;
            }
            a[j * n..j * n + j].iter_mut().for_each(|v| *v = 0.0);
        }
        Some(2.0 * (log + product.ln()))
    }

    /// Recursive lower Cholesky of the n×n block at `a[0]` (leading dimension `ld`); the upper
    /// triangle is neither read nor kept. False when not positive definite.
    fn factor(a: &mut [f64], ld: usize, n: usize) -> bool {
        if n <= LEAF {
            return factor_leaf(a, ld, n);
        }
        let h = n / 2;
        let m = n - h;
        if !factor(a, ld, h) {
            return false;
        }
        let l11 = lower_copy(a, ld, h);
        let (left, right) = a.split_at_mut(h * ld);
        solve_right_lt(&l11, h, h, &mut left[h..], ld, m);
        syrk_sub(&mut right[h..], ld, m, &left[h..], ld, h);
        factor(&mut right[h..], ld, m)
    }

    fn factor_leaf(a: &mut [f64], ld: usize, n: usize) -> bool {
        for j in 0..n {
            let mut d = a[j * ld + j];
            for k in 0..j {
                d -= a[k * ld + j] * a[k * ld + j];
            }
            if d <= 0.0 || !d.is_finite() {
                return false;
            }
            let d = d.sqrt();
            a[j * ld + j] = d;
            let r = 1.0 / d;
            for i in j + 1..n {
                let mut s = a[j * ld + i];
                for k in 0..j {
                    s -= a[k * ld + i] * a[k * ld + j];
                }
                a[j * ld + i] = s * r;
            }
        }
        true
    }

    /// The lower triangle of the n×n block at `a[0]` as an n×n matrix of its own (upper zero).
    fn lower_copy(a: &[f64], ld: usize, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n * n];
        for j in 0..n {
            out[j * n + j..(j + 1) * n].copy_from_slice(&a[j * ld + j..j * ld + n]);
        }
        out
    }

    /// `X L' = B` in place for lower `L` (n×n at `l[0]`, leading dimension `ldl`) and `B` (m×n at
    /// `b[0]`, leading dimension `ldb`).
    fn solve_right_lt(l: &[f64], ldl: usize, n: usize, b: &mut [f64], ldb: usize, m: usize) {
        if n <= LEAF {
            for j in 0..n {
                let (done, rest) = b.split_at_mut(j * ldb);
                let col = &mut rest[..m];
                for k in 0..j {
                    let f = l[k * ldl + j];
                    for (x, y) in col.iter_mut().zip(&done[k * ldb..k * ldb + m]) {
                        *x -= f * y;
                    }
                }
                let r = 1.0 / l[j * ldl + j];
                col.iter_mut().for_each(|x| *x *= r);
            }
            return;
        }
        let h = n / 2;
        solve_right_lt(l, ldl, h, b, ldb, m);
        let (b1, b2) = b.split_at_mut(h * ldb);
        gemm(
            -1.0,
            block(b1, ldb, m, h),
            block_t(&l[h..], ldl, n - h, h),
            1.0,
            b2,
            ldb,
        );
        solve_right_lt(&l[h * ldl + h..], ldl, n - h, b2, ldb, m);
    }

    /// Lower triangle of the m×m block at `c[0]` −= A A' for A (m×k at `a[0]`). The upper triangle
    /// of the diagonal leaves is overwritten with junk (never read).
    fn syrk_sub(c: &mut [f64], ldc: usize, m: usize, a: &[f64], lda: usize, k: usize) {
        if m <= 2 * BLOCK {
            let at = block(a, lda, m, k);
            gemm(-1.0, at, block_t(a, lda, m, k), 1.0, c, ldc);
            return;
        }
        let h = m / 2;
        let (c1, c2) = c.split_at_mut(h * ldc);
        rayon::join(
            || {
                syrk_sub(c1, ldc, h, a, lda, k);
                gemm(
                    -1.0,
                    block(&a[h..], lda, m - h, k),
                    block_t(a, lda, h, k),
                    1.0,
                    &mut c1[h..],
                    ldc,
                );
            },
            || syrk_sub(&mut c2[h..], ldc, m - h, &a[h..], lda, k),
        );
    }

    pub fn forward_solve(l: &[f64], n: usize, b: &mut [f64], c: usize) {
        let mut tmp = vec![0.0; BLOCK * c];
        for i0 in (0..n).step_by(BLOCK) {
            let bi = BLOCK.min(n - i0);
            let tmp = &mut tmp[..bi * c];
            for j in 0..c {
                tmp[j * bi..(j + 1) * bi].copy_from_slice(&b[j * n + i0..j * n + i0 + bi]);
            }
            gemm(
                -1.0,
                block(&l[i0..], n, bi, i0),
                block(b, n, i0, c),
                1.0,
                tmp,
                bi,
            );
            for col in tmp.chunks_exact_mut(bi) {
                for i in 0..bi {
                    let mut s = col[i];
                    for k in 0..i {
                        s -= l[(i0 + k) * n + i0 + i] * col[k];
                    }
                    col[i] = s / l[(i0 + i) * n + i0 + i];
                }
            }
            for j in 0..c {
                b[j * n + i0..j * n + i0 + bi].copy_from_slice(&tmp[j * bi..(j + 1) * bi]);
            }
        }
    }

    pub fn backward_solve(l: &[f64], n: usize, b: &mut [f64], c: usize) {
        let mut tmp = vec![0.0; BLOCK * c];
        let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
        for &i0 in starts.iter().rev() {
            let bi = BLOCK.min(n - i0);
            let i1 = i0 + bi;
            let tmp = &mut tmp[..bi * c];
            for j in 0..c {
                tmp[j * bi..(j + 1) * bi].copy_from_slice(&b[j * n + i0..j * n + i1]);
            }
            gemm(
                -1.0,
                block_t(&l[i0 * n + i1..], n, n - i1, bi),
                block(&b[i1..], n, n - i1, c),
                1.0,
                tmp,
                bi,
            );
            for col in tmp.chunks_exact_mut(bi) {
                for i in (0..bi).rev() {
                    let li = &l[(i0 + i) * n + i0..(i0 + i) * n + i1];
                    let mut s = col[i];
                    for k in i + 1..bi {
                        s -= li[k] * col[k];
                    }
                    col[i] = s / li[i];
                }
            }
            for j in 0..c {
                b[j * n + i0..j * n + i1].copy_from_slice(&tmp[j * bi..(j + 1) * bi]);
            }
        }
    }

    pub fn cholesky_inverse(l: &[f64], n: usize, out: &mut [f64]) {
        let mut w = lower_copy(l, n, n);
        invert_lower(&mut w, n, n);
        // Lower triangle of W'W by blocks: out[I, J] = W[i0.., I]' W[i0.., J] (W[k, I] = 0 for
        // k < i0), then mirrored.
        use rayon::prelude::*;
        out[..n * n]
            .par_chunks_mut(BLOCK * n)
            .enumerate()
            .for_each(|(jb, columns)| {
                let j0 = jb * BLOCK;
                let bj = BLOCK.min(n - j0);
                for i0 in (j0..n).step_by(BLOCK) {
                    let bi = BLOCK.min(n - i0);
                    gemm(
                        1.0,
                        block_t(&w[i0 * n + i0..], n, n - i0, bi),
                        block(&w[j0 * n + i0..], n, n - i0, bj),
                        0.0,
                        &mut columns[i0..],
                        n,
                    );
                }
            });
        for j in 0..n {
            for i in j + 1..n {
                out[i * n + j] = out[j * n + i];
            }
        }
    }

    /// In place L → L⁻¹ for the lower n×n block at `a[0]` whose upper triangle is zero (kept).
    fn invert_lower(a: &mut [f64], ld: usize, n: usize) {
        if n <= LEAF {
            let l = lower_copy(a, ld, n);
            for j in 0..n {
                a[j * ld + j] = 1.0 / l[j * n + j];
                for i in j + 1..n {
                    let mut s = 0.0;
                    for k in j..i {
                        s -= l[k * n + i] * a[j * ld + k];
                    }
                    a[j * ld + i] = s / l[i * n + i];
                }
            }
            return;
        }
        let h = n / 2;
        let m = n - h;
        let (left, right) = a.split_at_mut(h * ld);
        rayon::join(
            || invert_lower(left, ld, h),
            || invert_lower(&mut right[h..], ld, m),
        );
        // [A 0; B C]⁻¹ = [A⁻¹ 0; −C⁻¹ B A⁻¹ C⁻¹]
        let a11 = lower_copy(left, ld, h);
        let mut t = vec![0.0; m * h];
        for j in 0..h {
            t[j * m..(j + 1) * m].copy_from_slice(&left[j * ld + h..j * ld + n]);
        }
        // B ← B A⁻¹ (A⁻¹ lower: column block J of the product needs rows ≥ j0 only)
        for j0 in (0..h).step_by(BLOCK) {
            let bj = BLOCK.min(h - j0);
            gemm(
                1.0,
                block(&t[j0 * m..], m, m, h - j0),
                block(&a11[j0 * h + j0..], h, h - j0, bj),
                0.0,
                &mut left[j0 * ld + h..],
                ld,
            );
        }
        for j in 0..h {
            t[j * m..(j + 1) * m].copy_from_slice(&left[j * ld + h..j * ld + n]);
        }
        // B ← −C⁻¹ B (C⁻¹ lower: row block I of the product needs columns < i1 only)
        let c = &right[h..];
        for i0 in (0..m).step_by(BLOCK) {
            let bi = BLOCK.min(m - i0);
            let i1 = i0 + bi;
            gemm(
                -1.0,
                block(&c[i0..], ld, bi, i1),
                block(&t, m, i1, h),
                0.0,
                &mut left[h + i0..],
                ld,
            );
        }
    }
}

/// The lower L with LL' = V for a positive semi-definite V, column by column; a column whose
/// pivot `zero_pivot(j, pivot)` calls zero (rounding in a rank-deficient V) is left at zero.
/// One factor for a boundary fit's Σ and for Monte Carlo draws from a semi-definite V̂, each
/// with its own tolerance.
pub(crate) fn semidefinite_cholesky(
    v: &nalgebra::DMatrix<f64>,
    zero_pivot: impl Fn(usize, f64) -> bool,
) -> nalgebra::DMatrix<f64> {
    let n = v.nrows();
    let mut l = nalgebra::DMatrix::zeros(n, n);
    for j in 0..n {
        let pivot = v[(j, j)] - (0..j).map(|m| l[(j, m)] * l[(j, m)]).sum::<f64>();
        if zero_pivot(j, pivot) {
            continue;
        }
        let d = pivot.sqrt();
        l[(j, j)] = d;
        for i in j + 1..n {
            l[(i, j)] = (v[(i, j)] - (0..j).map(|m| l[(i, m)] * l[(j, m)]).sum::<f64>()) / d;
        }
    }
    l
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

    /// A random SPD matrix (R R'/n + I, R uniform in [-1, 1) from a fixed LCG).
    fn spd(n: usize, seed: u64) -> DMatrix<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let r = DMatrix::from_fn(n, n, |_, _| next());
        &r * r.transpose() / n as f64 + DMatrix::identity(n, n)
    }

    fn relative(got: &DMatrix<f64>, want: &DMatrix<f64>) -> f64 {
        (got - want).norm() / want.norm()
    }

    #[test]
    fn large_paths_agree_with_nalgebra() {
        for (n, seed) in [
            (1, 1),
            (3, 2),
            (95, 3),
            (96, 4),
            (97, 5),
            (300, 6),
            (1156, 7),
        ] {
            let a = spd(n, seed);
            let want = a.clone().cholesky().unwrap();
            let want_l = want.l();
            let mut l = a.as_slice().to_vec();
            // Junk in the upper triangle must not be read.
            for j in 0..n {
                for i in 0..j {
                    l[j * n + i] = f64::NAN;
                }
            }
            let logdet = cholesky(&mut l, n).unwrap();
            let got = DMatrix::from_column_slice(n, n, &l);
            assert!(relative(&got, &want_l) < 1e-10, "n = {n}");
            assert_eq!(
                got.upper_triangle(),
                DMatrix::from_diagonal(&got.diagonal())
            );
            let want_logdet = 2.0 * want_l.diagonal().iter().map(|d| d.ln()).sum::<f64>();
            assert!((logdet - want_logdet).abs() < 1e-10 * want_logdet.abs().max(1.0));

            let mut inverse = vec![f64::NAN; n * n];
            cholesky_inverse(&l, n, &mut inverse);
            let inverse = DMatrix::from_column_slice(n, n, &inverse);
            assert!(relative(&inverse, &want.inverse()) < 1e-10, "n = {n}");
            assert_eq!(inverse, inverse.transpose());

            for c in [3, 20] {
                let b = DMatrix::from_fn(n, c, |i, j| ((i * 5 + j * 11) as f64 * 0.37).cos());
                let mut x = b.as_slice().to_vec();
                forward_solve(&l, n, &mut x, c);
                let want_x = want_l.solve_lower_triangular(&b).unwrap();
                assert!(relative(&DMatrix::from_column_slice(n, c, &x), &want_x) < 1e-10);
                let mut x = b.as_slice().to_vec();
                backward_solve(&l, n, &mut x, c);
                let want_x = want_l.transpose().solve_upper_triangular(&b).unwrap();
                assert!(relative(&DMatrix::from_column_slice(n, c, &x), &want_x) < 1e-10);
            }
        }
    }

    /// The large paths split products over tasks: the digits must not depend on the threads.
    #[test]
    fn large_paths_give_the_same_digits_on_any_number_of_threads() {
        let a = spd(700, 8);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut l = a.as_slice().to_vec();
                let logdet = cholesky(&mut l, 700).unwrap();
                let mut inverse = vec![0.0; 700 * 700];
                cholesky_inverse(&l, 700, &mut inverse);
                (logdet.to_bits(), l, inverse)
            })
        };
        let one = run(1);
        assert!(one == run(2) && one == run(3));
    }

    #[test]
    fn small_path_is_unchanged_and_large_logdet_does_not_overflow() {
        let a = spd(50, 9);
        let (mut x, mut y) = (a.as_slice().to_vec(), a.as_slice().to_vec());
        assert_eq!(cholesky(&mut x, 50), cholesky_small(&mut y, 50));
        assert_eq!(x, y);

        let n = 1156;
        let mut a = (DMatrix::<f64>::identity(n, n) * 4.0).as_slice().to_vec();
        let logdet = cholesky(&mut a, n).unwrap();
        assert!((logdet - n as f64 * 4f64.ln()).abs() < 1e-9);
        let mut a = (DMatrix::<f64>::identity(n, n) * 1e-4).as_slice().to_vec();
        let logdet = cholesky(&mut a, n).unwrap();
        assert!((logdet - n as f64 * 1e-4f64.ln()).abs() < 1e-8);

        let mut a = spd(200, 10);
        a[(150, 150)] = -1.0;
        assert!(cholesky(&mut a.as_mut_slice().to_vec(), 200).is_none());
        let mut a = spd(200, 11);
        a[(150, 20)] = f64::NAN;
        assert!(cholesky(&mut a.as_mut_slice().to_vec(), 200).is_none());
    }
}
