//! The matrix products of the kernels: matrixmultiply's sgemm (the one burn-ndarray links), always on
//! the calling thread. Each element of a product is accumulated over k in the same order whatever the
//! number of rows or columns computed, which is what lets the kernels split a batch across threads
//! without changing a bit.

use rayon::prelude::*;

/// A matrix view: `data[row * row_stride + col * col_stride]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix whose rows are `row_stride` apart.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Rows `start..start + len` (no copy).
    pub fn row_range(self, start: usize, len: usize) -> Self {
        assert!(start + len <= self.rows, "row range outside the matrix");
        Mat {
            data: if len == 0 {
                &[]
            } else {
                &self.data[start * self.row_stride..]
            },
            rows: len,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `out = a × b`, or `out += a × b` when `accumulate`; `out` is row-major `a.rows × b.cols` with
/// rows `out_stride` apart.
pub fn matmul(a: Mat<'_>, b: Mat<'_>, out: &mut [f32], out_stride: usize, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions of a matrix product");
    assert!(a.fits() && b.fits(), "matrix view outside its buffer");
    assert!(
        m == 0 || n == 0 || (m - 1) * out_stride + n <= out.len(),
        "product outside its output buffer"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                out[row * out_stride..row * out_stride + n].fill(0.0);
            }
        }
        return;
    }
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: the assertions above keep every element read or written inside its slice, and `out`
    // is borrowed mutably, so it aliases neither input.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            out.as_mut_ptr(),
            out_stride as isize,
            1,
        );
    }
}

/// Multiply-adds below which [`matmul_on_pool`] computes on the calling thread alone.
const MIN_WORK_TO_SPLIT: usize = 4_000_000;

/// `a × b` into a new row-major matrix, its rows split into contiguous pieces computed on rayon's
/// pool when the product is large enough (the weight gradients over all steps of a batch). The bits
/// are those of one [`matmul`]: each element is computed the same way whatever rows are around it.
pub fn matmul_on_pool(a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
    let (m, n) = (a.rows, b.cols);
    let mut out = vec![0.0; m * n];
    let pieces = if m * a.cols * n < MIN_WORK_TO_SPLIT {
        1
    } else {
        rayon::current_num_threads().clamp(1, m.max(1))
    };
    if pieces <= 1 || n == 0 {
        matmul(a, b, &mut out, n, false);
        return out;
    }
    let rows_per_piece = m.div_ceil(pieces);
    out.par_chunks_mut(rows_per_piece * n)
        .enumerate()
        .for_each(|(i, piece)| {
            let rows = a.row_range(i * rows_per_piece, piece.len() / n);
            matmul(rows, b, piece, n, false);
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut acc = 0.0f64;
                for k in 0..a.cols {
                    acc += a.data[i * a.row_stride + k * a.col_stride] as f64
                        * b.data[k * b.row_stride + j * b.col_stride] as f64;
                }
                out[i * b.cols + j] = acc as f32;
            }
        }
        out
    }

    #[test]
    fn strided_and_transposed_products_are_right() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..24).map(|i| (i as f32 * 0.91).cos()).collect();
        // a: 3 rows of 4 taken every 7 elements; b: 4 × 6, used as is and as the transpose of 6 × 4.
        let av = Mat::rows(&a, 3, 4, 7);
        let bv = Mat::rows(&b, 4, 6, 6);
        let mut out = vec![0.0; 3 * 6];
        matmul(av, bv, &mut out, 6, false);
        let want = naive(av, bv);
        assert!(out.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5));
        let bt = Mat::rows(&b, 6, 4, 4).t();
        matmul(av, bt, &mut out, 6, true);
        let twice: Vec<f32> = want.iter().zip(naive(av, bt)).map(|(x, y)| x + y).collect();
        assert!(out.iter().zip(&twice).all(|(x, y)| (x - y).abs() < 1e-5));
    }

    #[test]
    fn products_split_over_the_pool_are_bitwise_one_product() {
        // A transposed left operand, as in the weight gradients: `[k, m]` stored, read as `m × k`.
        let (m, k, n) = (70, 1200, 96);
        let a: Vec<f32> = (0..k * m)
            .map(|i| ((i * 7919) % 1009) as f32 / 250.0 - 2.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 983) as f32 / 400.0 - 1.2)
            .collect();
        let (av, bv) = (Mat::rows(&a, k, m, m).t(), Mat::rows(&b, k, n, n));
        let mut one = vec![0.0; m * n];
        matmul(av, bv, &mut one, n, false);
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            let split = pool.install(|| matmul_on_pool(av, bv));
            assert!(
                split
                    .iter()
                    .zip(&one)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn rows_do_not_depend_on_how_many_are_computed() {
        let a: Vec<f32> = (0..64 * 37)
            .map(|i| ((i * 7919) % 1000) as f32 / 300.0 - 1.5)
            .collect();
        let b: Vec<f32> = (0..37 * 40)
            .map(|i| ((i * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let bv = Mat::rows(&b, 37, 40, 40);
        let mut all = vec![0.0; 64 * 40];
        matmul(Mat::rows(&a, 64, 37, 37), bv, &mut all, 40, false);
        for (start, len) in [(0, 1), (5, 3), (17, 30), (63, 1)] {
            let mut part = vec![0.0; len * 40];
            matmul(
                Mat::rows(&a[start * 37..], len, 37, 37),
                bv,
                &mut part,
                40,
                false,
            );
            assert_eq!(part, all[start * 40..(start + len) * 40]);
        }
    }
}

/// `out = a × b`, or `out += a × b` when `accumulate`, for the small products of every time step:
/// `a` is `rows × k` with rows `a_stride` apart, `b` row-major `k × n`, `out` rows `out_stride` apart.
///
/// A general GEMM packs both operands (and allocates) on every call, which costs more than a
/// `[batch, H] × [H, G·H]` product of a small layer. Here each output element is a running sum over k
/// in order, kept in registers for blocks of two rows and 32 or 8 columns (each load of `b` serves
/// both rows): vectorized across columns, so the bits depend neither on the vector width nor on how
/// rows are grouped.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn small_matmul(
    rows: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_stride: usize,
    b: &[f32],
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    assert!(
        rows == 0 || (rows - 1) * a_stride + k <= a.len(),
        "small_matmul: a"
    );
    assert!(b.len() >= k * n, "small_matmul: b");
    assert!(
        rows == 0 || ((rows - 1) * out_stride + n <= out.len() && (rows == 1 || out_stride >= n)),
        "small_matmul: out"
    );
    let b = &b[..k * n];
    let mut r = 0;
    while r + 2 <= rows {
        let a_rows = [&a[r * a_stride..][..k], &a[(r + 1) * a_stride..][..k]];
        let (first, rest) = out[r * out_stride..].split_at_mut(out_stride);
        let mut out_rows = [&mut first[..n], &mut rest[..n]];
        row_block::<2>(a_rows, b, k, n, &mut out_rows, accumulate);
        r += 2;
    }
    if r < rows {
        let a_rows = [&a[r * a_stride..][..k]];
        let mut out_rows = [&mut out[r * out_stride..][..n]];
        row_block::<1>(a_rows, b, k, n, &mut out_rows, accumulate);
    }
}

/// `R` rows of the product, column block by column block.
#[inline(always)]
fn row_block<const R: usize>(
    a_rows: [&[f32]; R],
    b: &[f32],
    k: usize,
    n: usize,
    out_rows: &mut [&mut [f32]; R],
    accumulate: bool,
) {
    let mut j = 0;
    while j + 32 <= n {
        column_block::<R, 32>(&a_rows, b, k, n, j, out_rows, accumulate);
        j += 32;
    }
    while j + 8 <= n {
        column_block::<R, 8>(&a_rows, b, k, n, j, out_rows, accumulate);
        j += 8;
    }
    while j < n {
        column_block::<R, 1>(&a_rows, b, k, n, j, out_rows, accumulate);
        j += 1;
    }
}

/// Columns `j0..j0 + W` of `R` rows: `acc += a[i][kk] · b[kk][j]` for kk in order, then stored.
#[inline(always)]
fn column_block<const R: usize, const W: usize>(
    a_rows: &[&[f32]; R],
    b: &[f32],
    k: usize,
    n: usize,
    j0: usize,
    out_rows: &mut [&mut [f32]; R],
    accumulate: bool,
) {
    assert!(j0 + W <= n && b.len() == k * n && a_rows.iter().all(|row| row.len() == k));
    let mut acc = [[0.0f32; W]; R];
    for kk in 0..k {
        // SAFETY: kk < k and j0 + W <= n, so `kk * n + j0 + W <= k * n = b.len()`, and every
        // row of `a_rows` holds k values (asserted above); unchecked so the loop keeps no bounds test.
        let (b_row, a_values): (&[f32; W], [f32; R]) = unsafe {
            (
                &*b.as_ptr().add(kk * n + j0).cast::<[f32; W]>(),
                std::array::from_fn(|i| *a_rows[i].get_unchecked(kk)),
            )
        };
        for (i, &av) in a_values.iter().enumerate() {
            for l in 0..W {
                acc[i][l] += av * b_row[l];
            }
        }
    }
    for i in 0..R {
        let out: &mut [f32; W] = (&mut out_rows[i][j0..j0 + W])
            .try_into()
            .expect("a block of W columns");
        if accumulate {
            for l in 0..W {
                out[l] += acc[i][l];
            }
        } else {
            *out = acc[i];
        }
    }
}

/// The transpose of a row-major `rows × cols` matrix, row-major.
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

#[cfg(test)]
mod small_tests {
    use super::*;

    /// Every element as one running f32 sum over k in order, `acc += a · b`: the bits the small
    /// product must give whatever the row grouping or column blocking.
    fn sequential(
        rows: usize,
        k: usize,
        n: usize,
        a: &[f32],
        a_stride: usize,
        b: &[f32],
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                let mut acc = 0.0f32;
                for kk in 0..k {
                    acc += a[r * a_stride + kk] * b[kk * n + j];
                }
                out[r * n + j] = acc;
            }
        }
        out
    }

    #[test]
    fn small_products_are_bitwise_the_sequential_sums() {
        for (rows, k, n) in [
            (1, 5, 3),
            (2, 64, 256),
            (3, 40, 41),
            (5, 128, 64),
            (7, 13, 71),
            (4, 0, 9),
        ] {
            let a_stride = k + 2;
            let a: Vec<f32> = (0..rows * a_stride)
                .map(|i| ((i * 7919) % 1013) as f32 / 331.0 - 1.5)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104_729) % 997) as f32 / 419.0 - 1.2)
                .collect();
            let want = sequential(rows, k, n, &a, a_stride, &b);
            let mut out = vec![f32::NAN; rows * n];
            small_matmul(rows, k, n, &a, a_stride, &b, &mut out, n, false);
            assert!(
                out.iter()
                    .zip(&want)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{rows}x{k}x{n}: not the sequential sums"
            );
            let mut twice = want.clone();
            small_matmul(rows, k, n, &a, a_stride, &b, &mut twice, n, true);
            let doubled: Vec<f32> = want.iter().map(|w| w + w).collect();
            assert!(
                twice
                    .iter()
                    .zip(&doubled)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{rows}x{k}x{n}: accumulate"
            );
        }
    }

    #[test]
    fn small_products_agree_with_the_general_one() {
        for (rows, k, n) in [(3, 10, 40), (5, 1, 1), (2, 64, 256), (4, 7, 45), (1, 0, 9)] {
            let a: Vec<f32> = (0..rows * (k + 3))
                .map(|i| ((i * 37) % 17) as f32 / 7.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53) % 23) as f32 / 11.0 - 1.0)
                .collect();
            let mut general = vec![0.5; rows * n];
            let mut small = general.clone();
            matmul(
                Mat::rows(&a, rows, k, k + 3),
                Mat::rows(&b, k, n, n),
                &mut general,
                n,
                true,
            );
            small_matmul(rows, k, n, &a, k + 3, &b, &mut small, n, true);
            for (x, y) in general.iter().zip(&small) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{rows}x{k}x{n}: {x} vs {y}"
                );
            }
        }
        assert_eq!(
            transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3),
            [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
    }
}
