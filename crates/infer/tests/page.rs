//! The draw-a-digit page in headless Chromium, driven through chromedriver as a user would use it: draw
//! a stroke with the mouse, read the prediction off the page, check it against the API, move the step
//! slider, clear the pad. Saves a screenshot of the page (`serve-page.png`) in `$SCREENSHOT_DIR`, or
//! in Cargo's per-target temporary directory when that is unset.
//!
//! Needs Chromium and chromedriver: Debian's `chromium` and `chromium-driver` (`.ci/run` installs them),
//! or the binaries named by `$CHROMIUM` and `$CHROMEDRIVER`; so it is in the second tier, which
//! `cargo test --workspace -- --include-ignored` (and CI) runs.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::Server;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const INSTALL: &str = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver, as .ci/run does) or set CHROMIUM and CHROMEDRIVER";

fn program(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(path.is_file(), "{} not found: {INSTALL}", path.display());
    path
}

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(program("CHROMEDRIVER", "/usr/bin/chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}): {INSTALL}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": program("CHROMIUM", "/usr/bin/chromium"),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,1000", "--force-device-scale-factor=1"],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("chromedriver starts a headless Chromium session")
}

/// Waits until the page's `data-state` is `state`.
async fn wait_for_state(client: &Client, state: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(&format!("body[data-state='{state}']")))
        .await
        .unwrap_or_else(|e| panic!("the page never reached state {state}: {e}"));
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// What the API says of the pad as it is now, asked from inside the page.
async fn api_answer_for_pad(client: &Client) -> Value {
    client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               document.getElementById("pad").toBlob(async (png) => {
                 const response = await fetch("/api/predict", {
                   method: "POST", headers: {"Content-Type": "image/png"}, body: png });
                 done(await response.json());
               }, "image/png");"#,
            vec![],
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium and chromedriver (Debian: chromium chromium-driver); CI runs it with --include-ignored"]
async fn drawing_a_one_on_the_page_shows_a_one_read_row_by_row() {
    let server = Server::start(&["--run", "artifacts/reference"]);
    let driver = Driver::start();
    let client = browser(&driver).await;
    client.goto(&format!("{}/", server.url)).await.unwrap();
    wait_for_state(&client, "idle").await;
    assert!(
        text(&client, "#model")
            .await
            .contains("lstm, hidden 10, 2 layers")
    );

    // A vertical stroke down the middle of the pad.
    let pad = client.find(Locator::Css("#pad")).await.unwrap();
    let mut stroke = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: pad.clone(),
            duration: None,
            x: 0.0,
            y: -95.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        });
    for _ in 0..19 {
        stroke = stroke.then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(20)),
            x: 0.0,
            y: 10.0,
        });
    }
    stroke = stroke.then(PointerAction::Up {
        button: MOUSE_BUTTON_LEFT,
    });
    client.perform_actions(stroke).await.unwrap();
    wait_for_state(&client, "done").await;

    let shown = text(&client, "#digit").await;
    let answer = api_answer_for_pad(&client).await;
    assert_eq!(shown, answer["digit"].to_string(), "page vs API: {answer}");
    assert_eq!(shown, "1", "a vertical stroke is a one");
    let bars = client
        .find_all(Locator::Css("#bars li .value"))
        .await
        .unwrap();
    assert_eq!(bars.len(), 10);
    for (class, bar) in bars.iter().enumerate() {
        let p = answer["probabilities"][class].as_f64().unwrap();
        assert_eq!(
            bar.text().await.unwrap(),
            format!("{:.1}", 100.0 * p),
            "bar {class}"
        );
    }
    assert_eq!(
        client
            .execute("return document.getElementById('steps').width", vec![])
            .await
            .unwrap(),
        json!(28),
        "one heat-map column per row"
    );
    let last = text(&client, "#step-text").await;
    assert!(last.starts_with("After row 28 of 28: 1 ("), "{last}");

    // The slider shows the prediction after fewer rows.
    client
        .execute(
            "const s = document.getElementById('step'); s.value = 14; s.dispatchEvent(new Event('input'));",
            vec![],
        )
        .await
        .unwrap();
    let halfway = text(&client, "#step-text").await;
    let expected = &answer["steps"][13];
    assert!(
        halfway.starts_with(&format!("After row 14 of 28: {} (", expected["digit"])),
        "{halfway} vs {expected}"
    );
    // The screenshot shows the page halfway through the reading.
    let screenshot = client.screenshot().await.unwrap();
    let dir = std::env::var_os("SCREENSHOT_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("serve-page.png");
    std::fs::write(&file, &screenshot).unwrap();
    let saved = image::open(&file).expect("the screenshot is a PNG");
    assert!(saved.width() >= 800 && saved.height() >= 600);
    eprintln!("screenshot: {}", file.display());

    client
        .find(Locator::Css("#clear"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_state(&client, "idle").await;
    assert_eq!(text(&client, "#digit").await, "–");

    client.close().await.unwrap();
    drop(driver);
    drop(server);
}
