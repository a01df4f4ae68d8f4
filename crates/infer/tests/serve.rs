//! `infer serve` as a user runs it: the binary on a free loopback port, on the committed reference
//! model, checked through its HTTP API.

use crate::server;

use std::io::Cursor;

use crate::server::Server;
use serde_json::{Value, json};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Status and JSON body of a POST.
fn post(server: &Server, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut request = agent().post(format!("{}{path}", server.url));
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let mut response = request.send(body).expect("the server answers");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

fn get(server: &Server, path: &str) -> (u16, String) {
    let mut response = agent()
        .get(format!("{}{path}", server.url))
        .call()
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// A white vertical bar on black, as someone would draw a "1" on the page.
fn drawn_one() -> Vec<u8> {
    let mut picture = image::GrayImage::new(280, 280);
    for y in 50..230 {
        for x in 130..150 {
            picture.put_pixel(x, y, image::Luma([255]));
        }
    }
    let mut png = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

fn probabilities(answer: &Value) -> Vec<f64> {
    answer["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect()
}

#[test]
fn health_describes_the_run() {
    let server = Server::start(&["--run", "artifacts/reference"]);
    let (status, body) = get(&server, "/api/health");
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["run"], "artifacts/reference");
    assert_eq!(health["model"]["cell"], "lstm");
    assert_eq!(health["model"]["hidden_size"], 10);
    assert_eq!(health["model"]["num_layers"], 2);
    assert_eq!(health["sequence"], "rows");
    assert_eq!(health["steps"], 28);

    let (status, page) = get(&server, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<canvas id=\"pad\""), "{page}");
    for asset in ["/app.js", "/style.css"] {
        let (status, text) = get(&server, asset);
        assert_eq!(status, 200, "{asset}");
        assert!(!text.is_empty(), "{asset}");
    }
}

#[test]
fn a_png_is_read_like_infer_predict_reads_it() {
    let server = Server::start(&["--run", "artifacts/reference"]);
    let png = drawn_one();
    let (status, answer) = post(&server, "/api/predict", Some("image/png"), &png);
    assert_eq!(status, 200, "{answer}");

    let p = probabilities(&answer);
    assert_eq!(p.len(), 10);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{p:?}");
    assert_eq!(answer["digit"], 1, "a vertical bar is a one: {answer}");
    let steps = answer["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 28, "one prediction per row");
    assert_eq!(
        steps.last().unwrap()["probabilities"],
        answer["probabilities"]
    );
    assert_eq!(answer["image"].as_array().unwrap().len(), 28 * 28);

    // The CLI, given the same picture as a file, says the same thing.
    let dir = std::env::temp_dir().join(format!("infer-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("one.png");
    std::fs::write(&file, &png).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_infer"))
        .args(["predict", "--run", "artifacts/reference", "--json"])
        .arg(&file)
        .current_dir(server::repo())
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cli["digit"], answer["digit"]);
    assert_eq!(probabilities(&cli), p);

    // The 28x28 image the model read, sent back as a JSON array, gives the same answer.
    let body = serde_json::to_vec(&json!({ "pixels": answer["image"] })).unwrap();
    let (status, again) = post(&server, "/api/predict", Some("application/json"), &body);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["probabilities"], answer["probabilities"]);
    assert_eq!(again["steps"], answer["steps"]);

    // Inverting a white-on-black picture leaves a black-on-white blob: a different input.
    let (status, inverted) = post(&server, "/api/predict?invert=true", Some("image/png"), &png);
    assert_eq!(status, 200, "{inverted}");
    assert_ne!(inverted["image"], answer["image"]);
}

#[test]
fn bad_requests_get_a_4xx_and_a_message() {
    let server = Server::start(&["--run", "artifacts/reference"]);
    // Path, Content-Type, body, expected status, part of the expected message.
    type Case = (
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "/api/predict",
            Some("image/png"),
            b"hello".to_vec(),
            400,
            "not a PNG or JPEG",
        ),
        (
            "/api/predict",
            Some("text/plain"),
            b"hello".to_vec(),
            415,
            "Content-Type is text/plain",
        ),
        (
            "/api/predict",
            Some("application/json"),
            b"{\"pixels\": [1, 2".to_vec(),
            400,
            "not valid JSON",
        ),
        (
            "/api/predict",
            Some("application/json"),
            serde_json::to_vec(&json!({"pixels": vec![vec![0; 32]; 32]})).unwrap(),
            422,
            "`pixels` has 32 rows",
        ),
        (
            "/api/predict",
            Some("application/json"),
            serde_json::to_vec(&json!({"pixels": vec![300; 784]})).unwrap(),
            422,
            "not an integer from 0 to 255",
        ),
        (
            "/api/predict?invert=maybe",
            Some("image/png"),
            drawn_one(),
            400,
            "bad query string",
        ),
        (
            "/api/predict?colour=red",
            Some("image/png"),
            drawn_one(),
            400,
            "bad query string",
        ),
        (
            "/api/predict",
            Some("image/png"),
            vec![0; infer::serve::BODY_LIMIT + 1],
            413,
            "larger than 1048576 bytes",
        ),
        (
            "/api/nothing",
            Some("image/png"),
            b"x".to_vec(),
            404,
            "nothing at /api/nothing",
        ),
    ];
    for (path, content_type, body, status, expected) in cases {
        let (got, answer) = post(&server, path, content_type, &body);
        let message = answer["error"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{path} {content_type:?}: {answer}");
        assert!(
            message.contains(expected),
            "{path} {content_type:?}: {message}"
        );
    }
    let (status, _) = get(&server, "/api/predict");
    assert_eq!(status, 405, "GET on the POST endpoint");
    // The server is still up after all that.
    assert_eq!(get(&server, "/api/health").0, 200);
}

#[test]
fn a_bad_run_or_a_taken_port_is_an_error_not_a_panic() {
    let missing = server::infer(&["serve", "--run", "artifacts/no-such-run", "--port", "0"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("artifacts/no-such-run")
            && !stderr.contains("panicked"),
        "{stderr}"
    );

    let server = Server::start(&["--run", "artifacts/reference"]);
    let port = server.url.rsplit(':').next().unwrap().trim_end_matches('/');
    let taken = server::infer(&["serve", "--run", "artifacts/reference", "--port", port]);
    assert!(!taken.status.success());
    let stderr = String::from_utf8_lossy(&taken.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")) && stderr.contains("--port"),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = Server::start(&["--run", "artifacts/reference"]);
    assert_eq!(get(&server, "/api/health").0, 200);
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}
