//! Blocks of rows turned into columns: the input projection's gather of each step's inputs into the
//! feature-major layout its matrix product packs as whole vectors. Pure data movement, so every
//! instruction set gives the same bits.

use super::isa::{InstructionSet, instruction_set};

/// Rows per block: one AVX-512 vector of f32.
pub const BLOCK_ROWS: usize = 16;

/// `dst[p·dst_stride + l] = src[l·src_stride + p]` for `l < rows ≤ 16` and `p < width`: `rows` rows of
/// `width` values, `src_stride` apart, written as `width` columns of `rows` values, `dst_stride` apart.
pub fn rows_to_columns(
    src: &[f32],
    src_stride: usize,
    rows: usize,
    width: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    assert!(rows <= BLOCK_ROWS, "at most {BLOCK_ROWS} rows a block");
    if rows == 0 || width == 0 {
        return;
    }
    assert!(
        (rows - 1) * src_stride + width <= src.len(),
        "rows outside the source"
    );
    assert!(
        (width - 1) * dst_stride + rows <= dst.len(),
        "columns outside the destination"
    );
    match instruction_set() {
        #[cfg(target_arch = "x86_64")]
        InstructionSet::Avx512 => {
            // SAFETY: `instruction_set` returns AVX-512 only where the CPU has it, and the asserts
            // above keep every (masked) access inside `src` and `dst`.
            unsafe { rows_to_columns_avx512(src, src_stride, rows, width, dst, dst_stride) }
        }
        _ => rows_to_columns_portable(src, src_stride, rows, width, dst, dst_stride),
    }
}

fn rows_to_columns_portable(
    src: &[f32],
    src_stride: usize,
    rows: usize,
    width: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    for l in 0..rows {
        let row = &src[l * src_stride..][..width];
        for (p, &v) in row.iter().enumerate() {
            dst[p * dst_stride + l] = v;
        }
    }
}

/// 16 × 16 tiles transposed in registers: pairs of rows interleaved, then pairs of pairs, then the
/// 128-bit lanes exchanged twice; partial tiles through masked loads and stores.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_to_columns_avx512(
    src: &[f32],
    src_stride: usize,
    rows: usize,
    width: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    use std::arch::x86_64::*;
    let row_mask: __mmask16 = if rows == 16 {
        0xFFFF
    } else {
        (1u16 << rows) - 1
    };
    for p0 in (0..width).step_by(16) {
        let cols = (width - p0).min(16);
        let col_mask: __mmask16 = if cols == 16 {
            0xFFFF
        } else {
            (1u16 << cols) - 1
        };
        let mut r = [_mm512_setzero_ps(); 16];
        for (l, r) in r.iter_mut().enumerate().take(rows) {
            // SAFETY: row l < rows reads `cols` values from `l·src_stride + p0`, inside `src`
            // (`(rows − 1)·src_stride + width ≤ src.len()`); the masked lanes are not read.
            *r = unsafe { _mm512_maskz_loadu_ps(col_mask, src.as_ptr().add(l * src_stride + p0)) };
        }
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // u[4g + j], lane L: column 4L + j of rows 4g..4g + 4.
        let mut u = [_mm512_setzero_ps(); 16];
        for g in 0..4 {
            let b = 4 * g;
            u[b] = _mm512_shuffle_ps::<0x44>(t[b], t[b + 2]);
            u[b + 1] = _mm512_shuffle_ps::<0xEE>(t[b], t[b + 2]);
            u[b + 2] = _mm512_shuffle_ps::<0x44>(t[b + 1], t[b + 3]);
            u[b + 3] = _mm512_shuffle_ps::<0xEE>(t[b + 1], t[b + 3]);
        }
        for j in 0..4 {
            let v0 = _mm512_shuffle_f32x4::<0x44>(u[j], u[4 + j]);
            let v1 = _mm512_shuffle_f32x4::<0xEE>(u[j], u[4 + j]);
            let w0 = _mm512_shuffle_f32x4::<0x44>(u[8 + j], u[12 + j]);
            let w1 = _mm512_shuffle_f32x4::<0xEE>(u[8 + j], u[12 + j]);
            // Column 4L + j of all 16 rows, for lanes L = 0..4.
            let columns = [
                _mm512_shuffle_f32x4::<0x88>(v0, w0),
                _mm512_shuffle_f32x4::<0xDD>(v0, w0),
                _mm512_shuffle_f32x4::<0x88>(v1, w1),
                _mm512_shuffle_f32x4::<0xDD>(v1, w1),
            ];
            for (lane, column) in columns.into_iter().enumerate() {
                let c = 4 * lane + j;
                if c < cols {
                    // SAFETY: column p0 + c < width writes `rows` values from
                    // `(p0 + c)·dst_stride`, inside `dst` (`(width − 1)·dst_stride + rows ≤
                    // dst.len()`); the masked lanes are not written.
                    unsafe {
                        _mm512_mask_storeu_ps(
                            dst.as_mut_ptr().add((p0 + c) * dst_stride),
                            row_mask,
                            column,
                        )
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::isa::set_instruction_set;

    /// Every path moves every value where the plain loop does, and nothing else, for partial and
    /// whole tiles of rows and of columns.
    #[test]
    fn every_path_moves_the_same_values() {
        let _serial = crate::cpu::isa::CHOICE_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for set in InstructionSet::available() {
            set_instruction_set(Some(set)).expect("an available path");
            for rows in [1, 5, 15, 16] {
                for width in [1, 10, 16, 28, 33] {
                    let src_stride = width + 7;
                    let dst_stride = rows + 3;
                    let src: Vec<f32> = (0..rows * src_stride).map(|i| i as f32 + 0.5).collect();
                    let mut dst = vec![-1.0; width * dst_stride];
                    rows_to_columns(&src, src_stride, rows, width, &mut dst, dst_stride);
                    let mut expected = vec![-1.0; width * dst_stride];
                    rows_to_columns_portable(
                        &src,
                        src_stride,
                        rows,
                        width,
                        &mut expected,
                        dst_stride,
                    );
                    assert_eq!(dst, expected, "{set:?}, {rows} rows of {width}");
                    for l in 0..rows {
                        for p in 0..width {
                            assert_eq!(dst[p * dst_stride + l], src[l * src_stride + p]);
                        }
                    }
                }
            }
        }
        set_instruction_set(None).expect("the detected path");
    }
}
