//! The small product of every time step, `out (+)= a × b` with `b` the state: register-blocked
//! chains of fused multiply-adds, in AVX-512 and AVX2 builds and a portable one with the same bits.

use super::InstructionSet;
use super::isa::instruction_set;

/// `out = a × b`, or `out += a × b` when `accumulate`, for the small products of every time step:
/// `a` is `rows × k` with rows `a_stride` apart, `b` row-major `k × n`, `out` rows `out_stride` apart.
///
/// A general GEMM packs both operands (and allocates) on every call, which costs more than a
/// `[batch, H] × [H, G·H]` product of a small layer. Here each output element is one chain of fused
/// multiply-adds over k in order, from zero, then stored (or added to `out`); the chains of a block of
/// rows × columns live in registers (8 × 32 on AVX-512, 6 × 16 on AVX2, masked at the right edge), so
/// each load of `b` serves every row of the block and each value of `a` every column. The bits depend
/// neither on the instruction set nor on the blocking.
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
    small_matmul_strided(rows, k, n, a, a_stride, b, n, out, out_stride, accumulate)
}

/// [`small_matmul`] with the rows of `b` `b_stride ≥ n` apart: `n` columns out of a wider matrix
/// (a range of hidden units of a gate), with the bits they have in the whole product.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn small_matmul_strided(
    rows: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_stride: usize,
    b: &[f32],
    b_stride: usize,
    out: &mut [f32],
    out_stride: usize,
    accumulate: bool,
) {
    assert!(
        rows == 0 || (rows - 1) * a_stride + k <= a.len(),
        "small_matmul: a"
    );
    assert!(
        b_stride >= n && (k == 0 || (k - 1) * b_stride + n <= b.len()),
        "small_matmul: b"
    );
    assert!(
        rows == 0 || ((rows - 1) * out_stride + n <= out.len() && (rows == 1 || out_stride >= n)),
        "small_matmul: out"
    );
    if rows == 0 || n == 0 {
        return;
    }
    let product = Product {
        rows,
        k,
        n,
        a,
        a_stride,
        b: if k == 0 {
            &[]
        } else {
            &b[..(k - 1) * b_stride + n]
        },
        b_stride,
        out_stride,
        accumulate,
    };
    match instruction_set() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `instruction_set` returns only paths this CPU runs: AVX-512F here.
        InstructionSet::Avx512 => unsafe { product.avx512(out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2 and FMA.
        InstructionSet::Avx2Fma => unsafe { product.avx2(out) },
        _ => product.portable(out),
    }
}

/// Columns per panel of a one-row product: 16 AVX-512 vectors of chains, a kilobyte of each row of
/// `b` read contiguously.
const PANEL: usize = 256;

/// The operands of one [`small_matmul`] (checked by it).
struct Product<'a> {
    rows: usize,
    k: usize,
    n: usize,
    a: &'a [f32],
    a_stride: usize,
    /// `k` rows of `n` values, `b_stride` apart.
    b: &'a [f32],
    b_stride: usize,
    out_stride: usize,
    accumulate: bool,
}

/// Calls `$block::<R, $vectors>` for every block of `$max` rows, then once for the rows left (fewer
/// than `$max`).
macro_rules! row_blocks {
    ($self:ident, $max:literal, $vectors:literal, $block:ident, $($arg:expr),*) => {{
        let mut r0 = 0;
        while r0 + $max <= $self.rows {
            $self.$block::<$max, $vectors>(r0, $($arg),*);
            r0 += $max;
        }
        match $self.rows - r0 {
            0 => {}
            1 => $self.$block::<1, $vectors>(r0, $($arg),*),
            2 => $self.$block::<2, $vectors>(r0, $($arg),*),
            3 => $self.$block::<3, $vectors>(r0, $($arg),*),
            4 => $self.$block::<4, $vectors>(r0, $($arg),*),
            5 => $self.$block::<5, $vectors>(r0, $($arg),*),
            6 => $self.$block::<6, $vectors>(r0, $($arg),*),
            _ => $self.$block::<7, $vectors>(r0, $($arg),*),
        }
    }};
}

impl Product<'_> {
    /// Any CPU: each chain through [`f32::mul_add`], one element at a time.
    fn portable(&self, out: &mut [f32]) {
        for r in 0..self.rows {
            let a = &self.a[r * self.a_stride..][..self.k];
            for j in 0..self.n {
                let mut acc = 0.0f32;
                for (kk, &av) in a.iter().enumerate() {
                    acc = av.mul_add(self.b[kk * self.b_stride + j], acc);
                }
                let o = &mut out[r * self.out_stride + j];
                *o = if self.accumulate { *o + acc } else { acc };
            }
        }
    }

    /// Asserts that rows `r0..r0 + R` by columns `j0..j0 + width` lie inside `a` and `out`.
    #[inline(always)]
    fn check_block<const R: usize>(&self, r0: usize, j0: usize, width: usize, out: &[f32]) {
        assert!(
            j0 + width <= self.n
                && (r0 + R - 1) * self.a_stride + self.k <= self.a.len()
                && (r0 + R - 1) * self.out_stride + j0 + width <= out.len()
        );
    }

    /// One row (`a` a vector): `b` read row after row, in panels of [`PANEL`] columns whose chains
    /// sit in an array the compiler keeps in vector registers, then panels of 128, 64 and 32 for
    /// what is left (a range of hidden units is often such a width). Walking `b` down a narrow block
    /// of columns, as the blocks of several rows do, touches two cache lines per row of `b` and a new
    /// page every few rows; a panel's row is contiguous. The chains are the same, so are the bits.
    #[inline(always)]
    fn single_row(&self, out: &mut [f32]) {
        let n = self.n;
        let out = &mut out[..n];
        let mut j0 = 0;
        while j0 + PANEL <= n {
            self.panel::<PANEL>(j0, out);
            j0 += PANEL;
        }
        if j0 + 128 <= n {
            self.panel::<128>(j0, out);
            j0 += 128;
        }
        if j0 + 64 <= n {
            self.panel::<64>(j0, out);
            j0 += 64;
        }
        if j0 + 32 <= n {
            self.panel::<32>(j0, out);
            j0 += 32;
        }
        if j0 < n {
            let width = n - j0;
            let mut acc = [0.0f32; 32];
            for (kk, &av) in self.a[..self.k].iter().enumerate() {
                let row = &self.b[kk * self.b_stride + j0..][..width];
                for (acc, &bv) in acc.iter_mut().zip(row) {
                    *acc = av.mul_add(bv, *acc);
                }
            }
            self.write(&mut out[j0..], &acc[..width]);
        }
    }

    /// Columns `j0..j0 + W` of a one-row product: `W` chains held in registers.
    #[inline(always)]
    fn panel<const W: usize>(&self, j0: usize, out: &mut [f32]) {
        let mut acc = [0.0f32; W];
        for (kk, &av) in self.a[..self.k].iter().enumerate() {
            let row: &[f32; W] = self.b[kk * self.b_stride + j0..][..W]
                .try_into()
                .expect("a panel");
            for (acc, &bv) in acc.iter_mut().zip(row) {
                *acc = av.mul_add(bv, *acc);
            }
        }
        self.write(&mut out[j0..j0 + W], &acc);
    }

    /// `out = chains`, or `out += chains` when accumulating.
    #[inline(always)]
    fn write(&self, out: &mut [f32], chains: &[f32]) {
        if self.accumulate {
            for (o, &c) in out.iter_mut().zip(chains) {
                *o += c;
            }
        } else {
            out.copy_from_slice(chains);
        }
    }

    /// Blocks of 8 rows × 32 columns (two vectors of 16), the last columns under a mask.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn avx512(&self, out: &mut [f32]) {
        if self.rows == 1 {
            return self.single_row(out);
        }
        let mut j0 = 0;
        while j0 < self.n {
            let width = (self.n - j0).min(32);
            // Lanes of the last vector that hold columns.
            let last = if width > 16 { width - 16 } else { width };
            let mask = if last == 16 {
                u16::MAX
            } else {
                ((1u32 << last) - 1) as u16
            };
            if width > 16 {
                row_blocks!(self, 8, 2, block_avx512, j0, mask, out);
            } else {
                row_blocks!(self, 8, 1, block_avx512, j0, mask, out);
            }
            j0 += width;
        }
    }

    /// Rows `r0..r0 + R` by the columns of `V` vectors from `j0`, the last one's lanes under `mask`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn block_avx512<const R: usize, const V: usize>(
        &self,
        r0: usize,
        j0: usize,
        mask: u16,
        out: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let (k, b_stride, a_stride, out_stride) =
            (self.k, self.b_stride, self.a_stride, self.out_stride);
        self.check_block::<R>(r0, j0, 16 * (V - 1) + mask.count_ones() as usize, out);
        let (a, b) = (
            self.a.as_ptr().wrapping_add(r0 * a_stride),
            self.b.as_ptr().wrapping_add(j0),
        );
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        let mut bv = [_mm512_setzero_ps(); V];
        for kk in 0..k {
            // SAFETY: row kk of `b` holds the block's columns (`b` holds `k` rows `b_stride` apart, checked above), the
            // mask keeping the last load within them; row r0 + i of `a` holds k values.
            unsafe {
                for (v, bv) in bv.iter_mut().enumerate() {
                    let at = b.add(kk * b_stride + 16 * v);
                    *bv = if v + 1 < V {
                        _mm512_loadu_ps(at)
                    } else {
                        _mm512_maskz_loadu_ps(mask, at)
                    };
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(i * a_stride + kk));
                    for (acc, bv) in acc.iter_mut().zip(&bv) {
                        *acc = _mm512_fmadd_ps(av, *bv, *acc);
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                // SAFETY: row r0 + i of `out` holds the block's columns (checked above); the mask
                // keeps the last vector within them.
                unsafe {
                    let o = out.as_mut_ptr().add((r0 + i) * out_stride + j0 + 16 * v);
                    let lanes = if v + 1 < V { u16::MAX } else { mask };
                    let mut value = *acc;
                    if self.accumulate {
                        value = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, o), value);
                    }
                    _mm512_mask_storeu_ps(o, lanes, value);
                }
            }
        }
    }

    /// Blocks of 6 rows × 16 columns (two vectors of 8), the last columns under a mask.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn avx2(&self, out: &mut [f32]) {
        use std::arch::x86_64::*;
        if self.rows == 1 {
            return self.single_row(out);
        }
        let mut j0 = 0;
        while j0 < self.n {
            let width = (self.n - j0).min(16);
            let last = if width > 8 { width - 8 } else { width };
            let lanes: [i32; 8] = std::array::from_fn(|l| if l < last { -1 } else { 0 });
            // SAFETY: `lanes` holds 8 i32.
            let mask = unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) };
            if width > 8 {
                row_blocks!(self, 6, 2, block_avx2, j0, last, mask, out);
            } else {
                row_blocks!(self, 6, 1, block_avx2, j0, last, mask, out);
            }
            j0 += width;
        }
    }

    /// Rows `r0..r0 + R` by the columns of `V` vectors from `j0`, the last one's `last` lanes under
    /// `mask`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn block_avx2<const R: usize, const V: usize>(
        &self,
        r0: usize,
        j0: usize,
        last: usize,
        mask: std::arch::x86_64::__m256i,
        out: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let (k, b_stride, a_stride, out_stride) =
            (self.k, self.b_stride, self.a_stride, self.out_stride);
        self.check_block::<R>(r0, j0, 8 * (V - 1) + last, out);
        let (a, b) = (
            self.a.as_ptr().wrapping_add(r0 * a_stride),
            self.b.as_ptr().wrapping_add(j0),
        );
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        let mut bv = [_mm256_setzero_ps(); V];
        for kk in 0..k {
            // SAFETY: as in `block_avx512`: the mask keeps the last load within the columns.
            unsafe {
                for (v, bv) in bv.iter_mut().enumerate() {
                    let at = b.add(kk * b_stride + 8 * v);
                    *bv = if v + 1 < V {
                        _mm256_loadu_ps(at)
                    } else {
                        _mm256_maskload_ps(at, mask)
                    };
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let av = _mm256_set1_ps(*a.add(i * a_stride + kk));
                    for (acc, bv) in acc.iter_mut().zip(&bv) {
                        *acc = _mm256_fmadd_ps(av, *bv, *acc);
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                // SAFETY: row r0 + i of `out` holds the block's columns (checked above); the mask
                // keeps the last vector within them.
                unsafe {
                    let o = out.as_mut_ptr().add((r0 + i) * out_stride + j0 + 8 * v);
                    let mut value = *acc;
                    if v + 1 < V {
                        if self.accumulate {
                            value = _mm256_add_ps(_mm256_loadu_ps(o), value);
                        }
                        _mm256_storeu_ps(o, value);
                    } else {
                        if self.accumulate {
                            value = _mm256_add_ps(_mm256_maskload_ps(o, mask), value);
                        }
                        _mm256_maskstore_ps(o, mask, value);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::gemm::{Mat, matmul, transpose};
    use crate::cpu::isa::set_instruction_set;

    /// Every element as one chain of fused multiply-adds over k in order: the bits the small
    /// product must give whatever the row grouping, the column blocking or the instruction set.
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
                    acc = a[r * a_stride + kk].mul_add(b[kk * n + j], acc);
                }
                out[r * n + j] = acc;
            }
        }
        out
    }

    #[test]
    fn small_products_are_bitwise_the_sequential_sums() {
        let _serial = crate::cpu::isa::CHOICE_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (rows, k, n) in [
            (1, 5, 3),
            (2, 64, 256),
            (3, 40, 41),
            (5, 128, 64),
            (7, 13, 71),
            (4, 0, 9),
            (17, 64, 75),
            (40, 10, 500),
            // One row: panels of 256 columns and a partial one.
            (1, 64, 2048),
            (1, 37, 600),
            (1, 9, 200),
            (1, 30, 128 + 64 + 32 + 7),
        ] {
            let a_stride = k + 2;
            let a: Vec<f32> = (0..rows * a_stride)
                .map(|i| ((i * 7919) % 1013) as f32 / 331.0 - 1.5)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104_729) % 997) as f32 / 419.0 - 1.2)
                .collect();
            let want = sequential(rows, k, n, &a, a_stride, &b);
            let doubled: Vec<f32> = want.iter().map(|w| w + w).collect();
            let same =
                |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits());
            // Every path this CPU runs, whichever the kernels would choose.
            for set in InstructionSet::available() {
                let run = |out: &mut [f32], accumulate| {
                    let product = Product {
                        rows,
                        k,
                        n,
                        a: &a,
                        a_stride,
                        b: &b,
                        b_stride: n,
                        out_stride: n,
                        accumulate,
                    };
                    match set {
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: `available` lists only paths this CPU runs.
                        InstructionSet::Avx512 => unsafe { product.avx512(out) },
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: as above.
                        InstructionSet::Avx2Fma => unsafe { product.avx2(out) },
                        _ => product.portable(out),
                    }
                };
                let mut out = vec![f32::NAN; rows * n];
                run(&mut out, false);
                assert!(
                    same(&out, &want),
                    "{rows}x{k}x{n} on {set}: not the sequential sums"
                );
                let mut twice = want.clone();
                run(&mut twice, true);
                assert!(
                    same(&twice, &doubled),
                    "{rows}x{k}x{n} on {set}: accumulate"
                );
            }
            let mut out = vec![f32::NAN; rows * n];
            small_matmul(rows, k, n, &a, a_stride, &b, &mut out, n, false);
            assert!(same(&out, &want), "{rows}x{k}x{n}: small_matmul");
            // The same columns out of a wider matrix (5 more on each side, never read), on every
            // path.
            let wide = n + 10;
            let b_wide: Vec<f32> = (0..k * wide)
                .map(|i| match i % wide {
                    col if (5..5 + n).contains(&col) => b[i / wide * n + col - 5],
                    _ => f32::NAN,
                })
                .collect();
            let b_wide = &b_wide[5.min(b_wide.len())..];
            for set in InstructionSet::available() {
                set_instruction_set(Some(set)).unwrap();
                let mut out = vec![f32::NAN; rows * n];
                small_matmul_strided(rows, k, n, &a, a_stride, b_wide, wide, &mut out, n, false);
                assert!(same(&out, &want), "{rows}x{k}x{n} on {set}: strided");
            }
            set_instruction_set(None).unwrap();
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
