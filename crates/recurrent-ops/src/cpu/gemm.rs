//! The matrix products of the kernels, always on the calling thread. Each element of a product is
//! accumulated over k in the same order whatever the number of rows or columns computed and whatever
//! the [`InstructionSet`], which is what lets the kernels split a batch across threads, and run on
//! any CPU, without changing a bit.

use rayon::prelude::*;

use super::isa::{InstructionSet, instruction_set};
use super::step_product::small_matmul_strided;
use super::transpose::{BLOCK_ROWS, rows_to_columns};

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

/// Depth of a block of k. Each output element is a running fused multiply-add over a block, from
/// zero, then added to the output (or stored, for the first block of a product that does not
/// accumulate). 256 is matrixmultiply's `S_KC`: on a CPU with FMA these are the bits of its sgemm,
/// which burn-ndarray links, so runs made before these products were ours reproduce.
const KC: usize = 256;
/// Columns per packed panel of `b`: one AVX-512 vector, two AVX2 vectors.
const NR: usize = 16;
/// Rows per packed block of `a`: 16 accumulator vectors on AVX-512; AVX2 (16 registers) takes them
/// eight at a time.
const MR: usize = 16;
/// Columns of `b` packed at a time (a block of `KC × NC` is 1 MiB at most, cache-sized).
const NC: usize = 1024;

/// `out = a × b`, or `out += a × b` when `accumulate`; `out` is row-major `a.rows × b.cols` with
/// rows `out_stride` apart. Each element is computed by the same operations in the same order on
/// every [`InstructionSet`] and whatever rows or columns are computed with it.
pub fn matmul(a: Mat<'_>, b: Mat<'_>, out: &mut [f32], out_stride: usize, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions of a matrix product");
    assert!(a.fits() && b.fits(), "matrix view outside its buffer");
    assert!(
        m == 0 || n == 0 || (m - 1) * out_stride + n <= out.len(),
        "product outside its output buffer"
    );
    assert!(m <= 1 || out_stride >= n, "output rows overlap");
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
    let set = instruction_set();
    let mut b_pack = vec![0.0f32; KC.min(k) * NC.min(n).next_multiple_of(NR)];
    let mut a_pack = [0.0f32; KC * MR];
    let mut block = [[0.0f32; NR]; MR];
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let store = p0 == 0 && !accumulate;
            pack_b(b, p0, kc, j0, nc, &mut b_pack);
            for i0 in (0..m).step_by(MR) {
                let mr = MR.min(m - i0);
                pack_a(a, i0, mr, p0, kc, &mut a_pack);
                for (panel, jp) in (0..nc).step_by(NR).enumerate() {
                    let panel_b = &b_pack[panel * kc * NR..][..kc * NR];
                    micro_kernel(set, mr, kc, &a_pack, panel_b, &mut block);
                    let cols = NR.min(nc - jp);
                    for (r, values) in block.iter().enumerate().take(mr) {
                        let row = &mut out[(i0 + r) * out_stride + j0 + jp..][..cols];
                        write_row(row, values, store);
                    }
                }
            }
        }
    }
}

/// `out = x × w` for a few rows `x` (`rows × k`, rows `x_stride` apart) and `w` row-major `k × n`
/// read where it lies, into the row-major `rows × n` `out`: the bits of
/// `matmul(Mat::rows(w, k, n, n).t(), xᵀ, …)` transposed (a chain per block of [`KC`], the blocks
/// added in order) without packing `w`. One sequence's input projection (few columns: a word, a
/// generated character) would otherwise spend most of its time packing the weights.
pub fn matmul_few_columns(
    w: &[f32],
    k: usize,
    n: usize,
    x: &[f32],
    x_stride: usize,
    rows: usize,
    out: &mut [f32],
) {
    matmul_few_columns_strided(w, n, k, n, x, x_stride, rows, out, n);
}

/// [`matmul_few_columns`] for `n` columns out of a wider `w` (rows `w_stride` apart), into rows of
/// `out` `out_stride` apart: a range of hidden units of one gate, with the bits of the whole product.
#[allow(clippy::too_many_arguments)]
pub fn matmul_few_columns_strided(
    w: &[f32],
    w_stride: usize,
    k: usize,
    n: usize,
    x: &[f32],
    x_stride: usize,
    rows: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    assert!(
        w_stride >= n
            && (k == 0 || (k - 1) * w_stride + n <= w.len())
            && (rows == 0 || (rows - 1) * x_stride + k <= x.len())
            && (rows == 0 || (rows - 1) * out_stride + n <= out.len()),
        "few-column product sizes"
    );
    if k == 0 {
        for row in 0..rows {
            out[row * out_stride..][..n].fill(0.0);
        }
        return;
    }
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        small_matmul_strided(
            rows,
            kc,
            n,
            &x[p0..],
            x_stride,
            &w[p0 * w_stride..],
            w_stride,
            out,
            out_stride,
            p0 > 0,
        );
    }
}

/// `row = values` when `store`, else `row += values`, for the first `row.len() ≤ NR` values: whole
/// rows as fixed-size arrays (a few vector moves; a slice copy of 16 values would call `memmove`).
#[inline(always)]
fn write_row(row: &mut [f32], values: &[f32; NR], store: bool) {
    if let Ok(row) = <&mut [f32; NR]>::try_from(&mut *row) {
        if store {
            *row = *values;
        } else {
            for (o, v) in row.iter_mut().zip(values) {
                *o += v;
            }
        }
    } else if store {
        for (o, v) in row.iter_mut().zip(values) {
            *o = *v;
        }
    } else {
        for (o, v) in row.iter_mut().zip(values) {
            *o += v;
        }
    }
}

/// Rows `p0..p0 + kc`, columns `j0..j0 + nc` of `b` as panels of [`NR`] columns, each `kc × NR`
/// row-major, the last one padded with zeros.
fn pack_b(b: Mat<'_>, p0: usize, kc: usize, j0: usize, nc: usize, pack: &mut [f32]) {
    for (panel, jp) in (0..nc).step_by(NR).enumerate() {
        let cols = NR.min(nc - jp);
        let panel = &mut pack[panel * kc * NR..][..kc * NR];
        for p in 0..kc {
            let dst: &mut [f32; NR] = (&mut panel[p * NR..][..NR]).try_into().expect("NR values");
            let src = (p0 + p) * b.row_stride + (j0 + jp) * b.col_stride;
            if b.col_stride == 1 && cols == NR {
                *dst = b.data[src..src + NR].try_into().expect("NR values");
                continue;
            }
            if b.col_stride == 1 {
                dst[..cols].copy_from_slice(&b.data[src..src + cols]);
            } else {
                for (l, d) in dst[..cols].iter_mut().enumerate() {
                    *d = b.data[src + l * b.col_stride];
                }
            }
            dst[cols..].fill(0.0);
        }
    }
}

/// Rows `i0..i0 + mr`, columns `p0..p0 + kc` of `a`, column by column: `pack[p * MR + r]`.
fn pack_a(a: Mat<'_>, i0: usize, mr: usize, p0: usize, kc: usize, pack: &mut [f32; KC * MR]) {
    if a.row_stride == 1 {
        for p in 0..kc {
            let src = i0 + (p0 + p) * a.col_stride;
            if mr == MR {
                let dst: &mut [f32; MR] =
                    (&mut pack[p * MR..][..MR]).try_into().expect("MR values");
                *dst = a.data[src..src + MR].try_into().expect("MR values");
            } else {
                pack[p * MR..][..mr].copy_from_slice(&a.data[src..src + mr]);
            }
        }
    } else {
        for r in 0..mr {
            let row = (i0 + r) * a.row_stride + p0 * a.col_stride;
            for p in 0..kc {
                pack[p * MR + r] = a.data[row + p * a.col_stride];
            }
        }
    }
}

/// `block[r][l] = Σ_p a_pack[p·MR + r] · panel[p·NR + l]` for the first `mr` rows, one fused
/// multiply-add per p, in order, from zero.
fn micro_kernel(
    set: InstructionSet,
    mr: usize,
    kc: usize,
    a_pack: &[f32; KC * MR],
    panel: &[f32],
    block: &mut [[f32; NR]; MR],
) {
    assert!(mr <= MR && kc <= KC && panel.len() == kc * NR);
    macro_rules! rows {
        ($kernel:ident, $offset:expr, $rows:expr) => {
            match $rows {
                1 => $kernel::<1>(kc, a_pack, $offset, panel, block),
                2 => $kernel::<2>(kc, a_pack, $offset, panel, block),
                3 => $kernel::<3>(kc, a_pack, $offset, panel, block),
                4 => $kernel::<4>(kc, a_pack, $offset, panel, block),
                5 => $kernel::<5>(kc, a_pack, $offset, panel, block),
                6 => $kernel::<6>(kc, a_pack, $offset, panel, block),
                7 => $kernel::<7>(kc, a_pack, $offset, panel, block),
                8 => $kernel::<8>(kc, a_pack, $offset, panel, block),
                9 => $kernel::<9>(kc, a_pack, $offset, panel, block),
                10 => $kernel::<10>(kc, a_pack, $offset, panel, block),
                11 => $kernel::<11>(kc, a_pack, $offset, panel, block),
                12 => $kernel::<12>(kc, a_pack, $offset, panel, block),
                13 => $kernel::<13>(kc, a_pack, $offset, panel, block),
                14 => $kernel::<14>(kc, a_pack, $offset, panel, block),
                15 => $kernel::<15>(kc, a_pack, $offset, panel, block),
                _ => $kernel::<16>(kc, a_pack, $offset, panel, block),
            }
        };
    }
    match set {
        #[cfg(target_arch = "x86_64")]
        InstructionSet::Avx512 => {
            // SAFETY: `instruction_set` only gives a path the CPU has (checked by `is_available`),
            // and every kernel reads `kc ≤ KC` columns of rows `offset..offset + R ≤ MR` of `a_pack`
            // and `kc × NR` values of `panel` (asserted above).
            unsafe { rows!(kernel_avx512, 0, mr) }
        }
        #[cfg(target_arch = "x86_64")]
        InstructionSet::Avx2Fma => {
            for offset in (0..mr).step_by(8) {
                // SAFETY: as above, for AVX2 and FMA, eight rows at a time.
                unsafe { rows!(kernel_avx2_fma, offset, (mr - offset).min(8)) }
            }
        }
        _ => rows!(kernel_portable, 0, mr),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<const R: usize>(
    kc: usize,
    a_pack: &[f32; KC * MR],
    offset: usize,
    panel: &[f32],
    block: &mut [[f32; NR]; MR],
) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); R];
    let (a, b) = (a_pack.as_ptr().wrapping_add(offset), panel.as_ptr());
    for p in 0..kc {
        // SAFETY: p < kc: `p·NR + 16 ≤ panel.len()` and `offset + p·MR + r < KC·MR` (asserted by the
        // caller).
        unsafe {
            let bv = _mm512_loadu_ps(b.add(p * NR));
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*a.add(p * MR + r)), bv, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: a row of `block` holds NR = 16 values.
        unsafe { _mm512_storeu_ps(block[offset + r].as_mut_ptr(), *acc) };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2_fma<const R: usize>(
    kc: usize,
    a_pack: &[f32; KC * MR],
    offset: usize,
    panel: &[f32],
    block: &mut [[f32; NR]; MR],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let (a, b) = (a_pack.as_ptr().wrapping_add(offset), panel.as_ptr());
    for p in 0..kc {
        // SAFETY: as in `kernel_avx512`: two vectors of 8 fill a row of NR = 16.
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * NR));
            let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*a.add(p * MR + r));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: a row of `block` holds NR = 16 values.
        unsafe {
            _mm256_storeu_ps(block[offset + r].as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(block[offset + r].as_mut_ptr().add(8), acc[1]);
        }
    }
}

fn kernel_portable<const R: usize>(
    kc: usize,
    a_pack: &[f32; KC * MR],
    offset: usize,
    panel: &[f32],
    block: &mut [[f32; NR]; MR],
) {
    let mut acc = [[0.0f32; NR]; R];
    for (p, b) in panel.chunks_exact(NR).enumerate().take(kc) {
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = a_pack[p * MR + offset + r];
            for (acc, &bv) in acc.iter_mut().zip(b) {
                *acc = av.mul_add(bv, *acc);
            }
        }
    }
    block[offset..offset + R].copy_from_slice(&acc);
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

/// `a^T × b`, `[a.cols, b.cols]` row-major, for two tall matrices with the same rows (sums over
/// every row: the weight gradients), on rayon's pool. When `a` is at least a panel of columns wide
/// the product is computed as `(b^T × a)^T`: `b`, the wide operand, is then packed once, each thread
/// its own columns, instead of whole by every thread. A fused multiply-add's product does not depend
/// on the order of its factors, so both ways give the same bits.
pub fn tall_product(a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
    if a.cols >= NR {
        transpose(&matmul_on_pool(b.t(), a), b.cols, a.cols)
    } else {
        matmul_on_pool(a.t(), b)
    }
}

/// The transpose of a row-major `rows × cols` matrix, row-major: blocks of 16 rows turned into
/// columns in registers ([`rows_to_columns`]), not one strided store per element.
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    for r0 in (0..rows).step_by(BLOCK_ROWS) {
        let block = BLOCK_ROWS.min(rows - r0);
        rows_to_columns(&m[r0 * cols..], cols, block, cols, &mut t[r0..], rows);
    }
    t
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::isa::set_instruction_set;

    /// matrixmultiply's sgemm, the products' reference: `out = a × b` (+ `out` when `accumulate`).
    fn sgemm(a: Mat<'_>, b: Mat<'_>, out: &mut [f32], out_stride: usize, accumulate: bool) {
        // SAFETY: the callers pass views that fit their buffers and an output of `a.rows` rows
        // `out_stride ≥ b.cols` apart.
        unsafe {
            matrixmultiply::sgemm(
                a.rows,
                a.cols,
                b.cols,
                1.0,
                a.data.as_ptr(),
                a.row_stride as isize,
                a.col_stride as isize,
                b.data.as_ptr(),
                b.row_stride as isize,
                b.col_stride as isize,
                if accumulate { 1.0 } else { 0.0 },
                out.as_mut_ptr(),
                out_stride as isize,
                1,
            );
        }
    }

    /// Deterministic values in [-2, 2), different for each `seed`, for the products' tests.
    pub(crate) fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 2011) as f32 / 503.0 - 2.0)
            .collect()
    }

    /// Every path gives the same bits, and on a CPU with FMA they are those of matrixmultiply (which
    /// picks its AVX-512 or AVX2 fused kernels there): several blocks of k, of columns and of rows,
    /// transposed and strided operands, stored and accumulated.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let _serial = crate::cpu::isa::CHOICE_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let shapes = [
            (1, 1, 1),
            (3, 28, 40),
            (9, 257, 17),
            (40, 1, 1100),
            (17, 600, 33),
            (64, 100, 400),
        ];
        for (m, k, n) in shapes {
            // a: m × k taken from a k × (m + 2) buffer (transposed, strided); b: k × n row-major.
            let a_data = values(k * (m + 2), 1);
            let b_data = values(k * n, 2);
            let a = Mat::rows(&a_data, k, m, m + 2).t();
            let b = Mat::rows(&b_data, k, n, n);
            let start = values(m * (n + 3), 3);
            let mut want = start.clone();
            sgemm(a, b, &mut want, n + 3, false);
            let mut want_acc = start.clone();
            sgemm(a, b, &mut want_acc, n + 3, true);
            let fma = InstructionSet::Avx2Fma.is_available();
            let mut first: Option<(Vec<f32>, Vec<f32>)> = None;
            for set in InstructionSet::available() {
                set_instruction_set(Some(set)).unwrap();
                assert_eq!(instruction_set(), set);
                let mut got = start.clone();
                matmul(a, b, &mut got, n + 3, false);
                let mut got_acc = start.clone();
                matmul(a, b, &mut got_acc, n + 3, true);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                if fma {
                    assert!(
                        bits(&got) == bits(&want),
                        "{set} {m}x{k}x{n}: not sgemm's bits"
                    );
                    assert!(
                        bits(&got_acc) == bits(&want_acc),
                        "{set} {m}x{k}x{n}: accumulate"
                    );
                }
                match &first {
                    None => first = Some((got, got_acc)),
                    Some((g, ga)) => {
                        assert!(
                            bits(g) == bits(&got) && bits(ga) == bits(&got_acc),
                            "{set} {m}x{k}x{n}"
                        )
                    }
                }
            }
            set_instruction_set(None).unwrap();
        }
    }

    /// A product of a few columns reads the weights where they lie and gives the general product's
    /// bits on every path: one block of k, several, and a partial last one; one column and several.
    #[test]
    fn few_column_products_are_bitwise_the_general_one() {
        let _serial = crate::cpu::isa::CHOICE_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (k, n, columns) in [
            (0, 5, 1),
            (1, 3, 1),
            (64, 2048, 1),
            (512, 300, 1),
            (600, 65, 1),
            (600, 65, 3),
            (300, 1024, 17),
            (64, 40, 9),
        ] {
            let w = values(k * n, 4);
            // The columns of x as rows, 3 values apart more than k (a stride wider than a row).
            let stride = k + 3;
            let x = values(columns * stride, 5);
            let x_t: Vec<f32> = (0..k * columns)
                .map(|i| x[(i % columns) * stride + i / columns])
                .collect();
            let mut want = vec![f32::NAN; n * columns];
            matmul(
                Mat::rows(&w, k, n, n).t(),
                Mat::rows(&x_t, k, columns, columns),
                &mut want,
                columns,
                false,
            );
            let want: Vec<f32> = (0..n * columns)
                .map(|i| want[(i % n) * columns + i / n])
                .collect();
            for set in InstructionSet::available() {
                set_instruction_set(Some(set)).unwrap();
                let mut got = vec![f32::NAN; n * columns];
                matmul_few_columns(&w, k, n, &x, stride, columns, &mut got);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&got) == bits(&want),
                    "{set} {k}x{n}, {columns} columns"
                );
            }
            set_instruction_set(None).unwrap();
        }
    }

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
