//! `infer serve`: a local web server over one trained run. It serves a draw-a-digit page (plain
//! HTML/CSS/JS compiled into the binary, nothing fetched from elsewhere) and the JSON API the page uses:
//!
//! - `GET /api/health`: the run, its model and backend;
//! - `POST /api/predict`: a PNG or JPEG picture (preprocessed exactly like `infer predict`) or a JSON
//!   28×28 array of grey levels (taken as an MNIST image); answers the digit, the ten probabilities,
//!   the prediction after each step of the sequence and the 28×28 image the model read.
//!
//! Bad requests get a 4xx status and a JSON body `{"error": "..."}` saying what was wrong.

use std::io::Cursor;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burn::tensor::backend::Backend;
use data::MnistBatcher;
use model::RecurrentClassifier;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::preprocess::{self, SIDE};
use crate::{InferError, Reading, Run, read_steps};

/// The largest request body accepted, in bytes: a drawn digit is a few kilobytes of PNG.
pub const BODY_LIMIT: usize = 1 << 20;
/// The largest picture side accepted, in pixels, so that a small file cannot claim a huge image.
pub const MAX_IMAGE_SIDE: u32 = 4096;

const PAGE: &str = include_str!("../web/index.html");
const SCRIPT: &str = include_str!("../web/app.js");
const STYLE: &str = include_str!("../web/style.css");

/// What the server holds: one trained model and the batcher that prepares its input.
pub struct App<B: Backend> {
    run: Run,
    model: RecurrentClassifier<B>,
    batcher: MnistBatcher,
    device: B::Device,
    backend: &'static str,
}

impl<B: Backend> App<B> {
    /// Loads the run's model for 28×28 images; fails if the run does not read such images.
    pub fn load(run: Run, device: B::Device, backend: &'static str) -> Result<Self, InferError> {
        let batcher = run.batcher(SIDE, SIDE)?;
        let model = run.load_model::<B>(&device)?;
        Ok(Self {
            run,
            model,
            batcher,
            device,
            backend,
        })
    }

    /// The run being served.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// The page and the API, with the body limit set.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(page))
            .route("/app.js", get(script))
            .route("/style.css", get(style))
            .route("/api/health", get(health::<B>))
            .route("/api/predict", post(predict::<B>))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(Arc::new(self))
    }

    fn describe(&self) -> Value {
        let (steps, features) = self.batcher.sequence_shape();
        let config = &self.run.model;
        json!({
            "status": "ok",
            "run": self.run.dir.display().to_string(),
            "backend": self.backend,
            "model": {
                "cell": config.cell.name(),
                "input_size": config.input_size,
                "hidden_size": config.hidden_size,
                "num_layers": config.num_layers,
                "num_classes": config.num_classes,
            },
            "sequence": self.run.data.sequence.name(),
            "steps": steps,
            "features": features,
            "image_side": SIDE,
        })
    }
}

/// A 4xx answer: a status and a message for the client.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "nothing at {}: the page is at /, the API at /api/predict (POST) and /api/health",
            uri.path()
        ),
    )
}

async fn health<B: Backend>(State(app): State<Arc<App<B>>>) -> Json<Value> {
    Json(app.describe())
}

/// Options of `POST /api/predict` in its query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictOptions {
    /// Dark ink on a light background: invert a picture before converting it (pictures only).
    #[serde(default)]
    invert: bool,
}

async fn predict<B: Backend>(
    State(app): State<Arc<App<B>>>,
    options: Result<Query<PredictOptions>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(options) = options.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "bad query string: {}; the only option is invert=true|false",
                e.body_text()
            ),
        )
    })?;
    let body = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                format!("the body is larger than {BODY_LIMIT} bytes; send a smaller picture"),
            )
        } else {
            ApiError::new(status, format!("cannot read the body: {}", e.body_text()))
        }
    })?;
    let image = match media_type(&headers).as_deref() {
        Some("image/png" | "image/jpeg") => decode_picture(&body, options.invert)?,
        Some("application/json") => pixels_from_json(&body)?,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type is {}; send image/png, image/jpeg or application/json",
                    other.unwrap_or("missing")
                ),
            ));
        }
    };
    let (reading, image) = tokio::task::spawn_blocking(move || {
        let reading = read_steps(&app.model, &app.batcher, &image, &app.device);
        (reading, image)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(answer(&reading, &image)))
}

fn answer(reading: &Reading, image: &[u8]) -> Value {
    let last = reading.last();
    json!({
        "digit": last.digit,
        "probabilities": last.probabilities,
        "steps": reading.steps,
        "image": image,
    })
}

/// The media type of the request, lower case, without parameters such as `charset`.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(media)
}

/// Decodes a PNG or JPEG (whatever the body really is) and converts it like `infer predict` does.
fn decode_picture(bytes: &[u8], invert: bool) -> Result<Vec<u8>, ApiError> {
    let not_an_image = |e: &dyn std::fmt::Display| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a PNG or JPEG image ({e})"),
        )
    };
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| not_an_image(&e))?;
    if !matches!(
        reader.format(),
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)
    ) {
        return Err(not_an_image(&"unrecognized format"));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the picture is larger than {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels; scale it down"
            ),
        ),
        other => not_an_image(&other),
    })?;
    Ok(preprocess::to_mnist(&picture, invert))
}

/// Reads `{"pixels": [[...28 grey levels...] × 28]}` (or a flat list of 784) as an MNIST image.
fn pixels_from_json(bytes: &[u8]) -> Result<Vec<u8>, ApiError> {
    let expected = format!(
        "expected {{\"pixels\": [...]}} with {SIDE} rows of {SIDE} grey levels (integers 0-255), or a flat list of {}",
        SIDE * SIDE
    );
    let unprocessable = |what: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{what}; {expected}"),
        )
    };
    let json: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON ({e}); {expected}"),
        )
    })?;
    let object = json
        .as_object()
        .ok_or_else(|| unprocessable("the body is not a JSON object".into()))?;
    if let Some(key) = object.keys().find(|k| *k != "pixels") {
        return Err(unprocessable(format!("unknown key `{key}`")));
    }
    let pixels = object
        .get("pixels")
        .ok_or_else(|| unprocessable("no `pixels` key".into()))?
        .as_array()
        .ok_or_else(|| unprocessable("`pixels` is not an array".into()))?;
    let values: Vec<&Value> = if pixels.iter().all(Value::is_array) && !pixels.is_empty() {
        if pixels.len() != SIDE {
            return Err(unprocessable(format!("`pixels` has {} rows", pixels.len())));
        }
        let mut values = Vec::with_capacity(SIDE * SIDE);
        for (r, row) in pixels.iter().enumerate() {
            let row = row.as_array().expect("checked to be an array");
            if row.len() != SIDE {
                return Err(unprocessable(format!(
                    "row {r} of `pixels` has {} values",
                    row.len()
                )));
            }
            values.extend(row);
        }
        values
    } else {
        if pixels.len() != SIDE * SIDE {
            return Err(unprocessable(format!(
                "`pixels` has {} values",
                pixels.len()
            )));
        }
        pixels.iter().collect()
    };
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|v| u8::try_from(v).ok())
                .ok_or_else(|| {
                    unprocessable(format!(
                        "pixel {i} (row {}, column {}) is {v}, not an integer from 0 to 255",
                        i / SIDE,
                        i % SIDE
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(result: Result<Vec<u8>, ApiError>) -> (StatusCode, String) {
        let error = result.expect_err("should be refused");
        (error.status, error.message)
    }

    #[test]
    fn json_pixels_take_rows_or_a_flat_list() {
        let rows: Vec<Vec<u8>> = (0..SIDE).map(|r| vec![r as u8; SIDE]).collect();
        let nested = serde_json::to_vec(&json!({ "pixels": rows })).unwrap();
        let flat: Vec<u8> = rows.concat();
        let flat_body = serde_json::to_vec(&json!({ "pixels": flat })).unwrap();
        assert_eq!(pixels_from_json(&nested).unwrap(), flat);
        assert_eq!(pixels_from_json(&flat_body).unwrap(), flat);
    }

    #[test]
    fn json_pixels_of_the_wrong_shape_or_range_are_refused() {
        let cases = [
            (json!({"pixels": vec![vec![0; SIDE]; 27]}), "has 27 rows"),
            (json!({"pixels": vec![0; 783]}), "has 783 values"),
            (json!({"pixels": []}), "has 0 values"),
            (json!({"pixels": 3}), "not an array"),
            (json!({"image": []}), "unknown key `image`"),
            (json!([1, 2]), "not a JSON object"),
            (json!({}), "no `pixels` key"),
        ];
        for (body, expected) in cases {
            let (code, message) = status(pixels_from_json(&serde_json::to_vec(&body).unwrap()));
            assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(message.contains(expected), "{body}: {message}");
        }
        let mut bad_row = vec![vec![0; SIDE]; SIDE];
        bad_row[3] = vec![0; 5];
        let (_, message) = status(pixels_from_json(
            &serde_json::to_vec(&json!({ "pixels": bad_row })).unwrap(),
        ));
        assert!(
            message.contains("row 3 of `pixels` has 5 values"),
            "{message}"
        );
        for value in [json!(256), json!(-1), json!(0.5), json!("7")] {
            let mut flat = vec![json!(0); SIDE * SIDE];
            flat[30] = value.clone();
            let (_, message) = status(pixels_from_json(
                &serde_json::to_vec(&json!({ "pixels": flat })).unwrap(),
            ));
            assert!(
                message.contains(&format!("pixel 30 (row 1, column 2) is {value}")),
                "{message}"
            );
        }
        let (code, message) = status(pixels_from_json(b"{\"pixels\": [1,"));
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(message.contains("not valid JSON"), "{message}");
    }

    #[test]
    fn pictures_must_be_png_or_jpeg_of_bounded_size() {
        let (code, message) = status(decode_picture(b"GIF89a not really", false));
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(message.contains("not a PNG or JPEG"), "{message}");
        let (code, _) = status(decode_picture(b"\x89PNG\r\n\x1a\n truncated", false));
        assert_eq!(code, StatusCode::BAD_REQUEST);

        let mut huge = Vec::new();
        image::GrayImage::new(MAX_IMAGE_SIDE + 1, 1)
            .write_to(&mut Cursor::new(&mut huge), image::ImageFormat::Png)
            .unwrap();
        let (code, message) = status(decode_picture(&huge, false));
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.contains("larger than 4096x4096"), "{message}");

        let mut stroke = image::GrayImage::new(100, 100);
        for y in 20..80 {
            for x in 45..55 {
                stroke.put_pixel(x, y, image::Luma([255]));
            }
        }
        let mut png = Vec::new();
        stroke
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let decoded = decode_picture(&png, false).unwrap();
        let expected = preprocess::to_mnist(&image::DynamicImage::ImageLuma8(stroke), false);
        assert_eq!(
            decoded, expected,
            "a picture is converted like `infer predict`"
        );
    }
}
