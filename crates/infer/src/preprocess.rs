//! Turning an arbitrary picture of a digit into a 28×28 MNIST-style image.
//!
//! MNIST digits are white on black, size-normalized to fit a 20×20 box (keeping the aspect ratio)
//! and centred by their centre of mass in a 28×28 frame. Pictures get the same treatment.

use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage};

use crate::InferError;

/// Side of an MNIST image.
pub const SIDE: usize = 28;
/// Side of the box the digit is scaled into.
const BOX: u32 = 20;
/// Grey level above which a pixel counts as ink when finding the digit's bounds.
const INK: u8 = 32;

/// Reads an image file (PNG or JPEG) and converts it with [`to_mnist`].
pub fn load_image(path: &Path, invert: bool) -> Result<Vec<u8>, InferError> {
    let image = image::open(path).map_err(|e| InferError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(to_mnist(&image, invert))
}

/// 28×28 grey levels, row-major, white digit on black. `invert` is for dark ink on a light background.
pub fn to_mnist(image: &DynamicImage, invert: bool) -> Vec<u8> {
    let mut gray: GrayImage = image.to_luma8();
    if invert {
        image::imageops::invert(&mut gray);
    }
    let Some((x0, y0, x1, y1)) = ink_bounds(&gray) else {
        return vec![0; SIDE * SIDE];
    };
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = image::imageops::crop_imm(&gray, x0, y0, w, h).to_image();
    let scale = BOX as f32 / w.max(h) as f32;
    let (nw, nh) = (
        ((w as f32 * scale).round() as u32).clamp(1, BOX),
        ((h as f32 * scale).round() as u32).clamp(1, BOX),
    );
    let digit = image::imageops::resize(&crop, nw, nh, FilterType::Triangle);
    let (cx, cy) = centre_of_mass(&digit);
    let side = SIDE as i64;
    let offset_x = (side as f32 / 2.0 - cx).round() as i64;
    let offset_y = (side as f32 / 2.0 - cy).round() as i64;
    let offset_x = offset_x.clamp(0, side - nw as i64);
    let offset_y = offset_y.clamp(0, side - nh as i64);
    let mut out = vec![0u8; SIDE * SIDE];
    for (x, y, p) in digit.enumerate_pixels() {
        let (ox, oy) = (x as i64 + offset_x, y as i64 + offset_y);
        out[oy as usize * SIDE + ox as usize] = p.0[0];
    }
    out
}

fn ink_bounds(image: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let mut bounds: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in image.enumerate_pixels() {
        if p.0[0] > INK {
            bounds = Some(match bounds {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    bounds
}

fn centre_of_mass(image: &GrayImage) -> (f32, f32) {
    let (mut sum, mut sx, mut sy) = (0f32, 0f32, 0f32);
    for (x, y, p) in image.enumerate_pixels() {
        let v = p.0[0] as f32;
        sum += v;
        sx += v * (x as f32 + 0.5);
        sy += v * (y as f32 + 0.5);
    }
    if sum == 0.0 {
        (image.width() as f32 / 2.0, image.height() as f32 / 2.0)
    } else {
        (sx / sum, sy / sum)
    }
}
