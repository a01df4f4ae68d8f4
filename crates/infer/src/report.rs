//! Pictures of a run: training curves from `metrics.json`, and the test-set confusion matrix.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;

use crate::InferError;

/// DejaVu Sans Mono (Bitstream Vera license, see `assets/`), bundled so that drawing text needs no
/// system fonts.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled font is a valid TrueType font"));
    });
}

/// One epoch's numbers from `metrics.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    /// 1-based epoch.
    pub epoch: f64,
    /// Training loss.
    pub train_loss: f64,
    /// Validation loss.
    pub valid_loss: f64,
    /// Training accuracy, %.
    pub train_accuracy: f64,
    /// Validation accuracy, %.
    pub valid_accuracy: f64,
}

/// Reads the per-epoch numbers of a run's `metrics.json`.
pub fn read_curves(path: &Path) -> Result<Vec<EpochPoint>, InferError> {
    let bad = |message: String| InferError::RunConfig {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(format!(
            "cannot read it ({e}); was the run trained with `train`?"
        ))
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let epochs = json["epochs"]
        .as_array()
        .ok_or_else(|| bad("no `epochs` list".into()))?;
    epochs
        .iter()
        .map(|e| {
            let get = |key: &str| {
                e[key]
                    .as_f64()
                    .ok_or_else(|| bad(format!("an epoch lacks `{key}`")))
            };
            Ok(EpochPoint {
                epoch: get("epoch")?,
                train_loss: get("train_loss")?,
                valid_loss: get("valid_loss")?,
                train_accuracy: get("train_accuracy")?,
                valid_accuracy: get("valid_accuracy")?,
            })
        })
        .collect()
}

fn draw_error(path: &Path) -> impl Fn(String) -> InferError + '_ {
    move |message| InferError::Write {
        path: path.to_path_buf(),
        message,
    }
}

/// Draws loss (left) and accuracy (right) per epoch, train and validation, into a PNG file.
pub fn draw_curves(points: &[EpochPoint], out: &Path) -> Result<(), InferError> {
    register_font();
    let err = draw_error(out);
    if points.is_empty() {
        return Err(err("the run has no completed epoch to plot".into()));
    }
    let (width, height) = (1200u32, 480u32);
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let (left, right) = root.split_horizontally(width / 2);
        let last = points.iter().map(|p| p.epoch).fold(1.0, f64::max);
        type Pick = fn(&EpochPoint) -> (f64, f64);
        let panels: [(&DrawingArea<_, _>, &str, Pick); 2] = [
            (&left, "cross-entropy loss", |p| {
                (p.train_loss, p.valid_loss)
            }),
            (&right, "accuracy (%)", |p| {
                (p.train_accuracy, p.valid_accuracy)
            }),
        ];
        for (area, title, value) in panels {
            let values: Vec<f64> = points
                .iter()
                .flat_map(|p| {
                    let (a, b) = value(p);
                    [a, b]
                })
                .filter(|v| v.is_finite())
                .collect();
            let (lo, hi) = values
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let pad = ((hi - lo) * 0.05).max(1e-3);
            let mut chart = ChartBuilder::on(area)
                .caption(title, (FAMILY, 22))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(1.0..last.max(2.0), (lo - pad)..(hi + pad))
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                // At most one label per epoch: more would repeat rounded epoch numbers.
                .x_labels((last as usize).clamp(2, 10))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .label_style((FAMILY, 14))
                .draw()
                .map_err(|e| err(e.to_string()))?;
            for (name, color, pick) in [("train", BLUE, 0usize), ("validation", RED, 1)] {
                let series = points.iter().map(|p| {
                    let (a, b) = value(p);
                    (p.epoch, if pick == 0 { a } else { b })
                });
                chart
                    .draw_series(LineSeries::new(series, color.stroke_width(2)))
                    .map_err(|e| err(e.to_string()))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font((FAMILY, 14))
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    save_png(pixels, width, height, out)
}

/// Draws a confusion matrix (`matrix[true][predicted]` counts) as a PNG heat map with the counts.
pub fn draw_confusion(matrix: &[Vec<usize>], out: &Path) -> Result<(), InferError> {
    register_font();
    let err = draw_error(out);
    let classes = matrix.len();
    let cell = 56i32;
    let margin = 90i32;
    let side = (margin + cell * classes as i32 + 20) as u32;
    let mut pixels = vec![0u8; (side * side * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (side, side)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let text = |s: String, x: i32, y: i32, size: u32, color: RGBColor| {
            Text::new(s, (x, y), (FAMILY, size).into_font().color(&color))
        };
        root.draw(&text("predicted →".into(), margin, 10, 18, BLACK))
            .map_err(|e| err(e.to_string()))?;
        root.draw(&text("true ↓".into(), 10, margin - 28, 18, BLACK))
            .map_err(|e| err(e.to_string()))?;
        for (t, row) in matrix.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            let y = margin + t as i32 * cell;
            root.draw(&text(t.to_string(), margin - 30, y + cell / 3, 18, BLACK))
                .map_err(|e| err(e.to_string()))?;
            for (p, &count) in row.iter().enumerate() {
                let x = margin + p as i32 * cell;
                if t == 0 {
                    root.draw(&text(p.to_string(), x + cell / 3, margin - 28, 18, BLACK))
                        .map_err(|e| err(e.to_string()))?;
                }
                let share = count as f64 / total;
                let shade = (255.0 * (1.0 - share.sqrt())) as u8;
                let fill = if t == p {
                    RGBColor(shade, shade, 255)
                } else {
                    RGBColor(255, shade, shade)
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    fill.filled(),
                ))
                .map_err(|e| err(e.to_string()))?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    BLACK.mix(0.2),
                ))
                .map_err(|e| err(e.to_string()))?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                root.draw(&text(count.to_string(), x + 6, y + cell / 3, 14, ink))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    save_png(pixels, side, side, out)
}

fn save_png(pixels: Vec<u8>, width: u32, height: u32, out: &Path) -> Result<(), InferError> {
    let image = image::RgbImage::from_raw(width, height, pixels)
        .expect("buffer holds width*height RGB pixels");
    image.save(out).map_err(|e| InferError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    })
}

/// Counts `matrix[true][predicted]` over `(sequences, labels)` batches.
pub fn confusion_matrix<B, I>(model: &model::RecurrentClassifier<B>, batches: I) -> Vec<Vec<usize>>
where
    B: burn::tensor::backend::Backend,
    I: IntoIterator<
        Item = (
            burn::tensor::Tensor<B, 3>,
            Option<Vec<usize>>,
            burn::tensor::Tensor<B, 1, burn::tensor::Int>,
        ),
    >,
{
    let classes = model.config().num_classes;
    let mut matrix = vec![vec![0usize; classes]; classes];
    for (inputs, lengths, targets) in batches {
        let predicted = model
            .forward_lengths(inputs, lengths.as_deref())
            .argmax(1)
            .into_data()
            .convert::<i64>();
        let truth = targets.into_data().convert::<i64>();
        let (predicted, truth) = (
            predicted.to_vec::<i64>().expect("i64"),
            truth.to_vec::<i64>().expect("i64"),
        );
        for (t, p) in truth.into_iter().zip(predicted) {
            if let (Ok(t), Ok(p)) = (usize::try_from(t), usize::try_from(p))
                && t < classes
                && p < classes
            {
                matrix[t][p] += 1;
            }
        }
    }
    matrix
}
