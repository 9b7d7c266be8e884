//! Shared harness of the browser tests: finds Debian's `chromium` and `chromedriver`, starts
//! chromedriver on a free port and a headless Chromium with a fresh profile, and offers the
//! small WebDriver steps the tests repeat. Without a browser, [`start`] prints a notice and
//! returns `None` (the test passes) — unless `CAMGATE_REQUIRE_BROWSER=1`, when it panics.
//!
//! The browser tests share one test process (and so may be scheduled at the same time): a
//! [`Browser`] holds [`ONE_BROWSER`] for its whole life, so only one chromedriver + Chromium
//! runs at a time, as when each browser suite was a test binary of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Kills the child process when dropped (chromedriver must not outlive the test).
struct ChildGuard(std::process::Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_driver(port: u16) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
        {
            if let Ok(v) = r.json::<Value>().await {
                if v["value"]["ready"] == true {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Held by every live [`Browser`]: one headless Chromium at a time in this process. A tokio
/// mutex (not std) so that a browser test failing while it holds it does not poison it for
/// the next one.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running headless Chromium session; dropping it stops chromedriver and removes the profile.
/// Call `c.close()` before reporting a failure so the browser does not linger.
pub struct Browser {
    pub c: fantoccini::Client,
    _driver: ChildGuard,
    _profile: tempfile::TempDir,
    /// Dropped last (fields drop in order): released once chromedriver is gone.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Starts chromedriver + headless Chromium (1280×900), or returns `None` after printing why
/// when they are not installed and the browser is not required.
pub async fn start(test: &str) -> Option<Browser> {
    let required = std::env::var("CAMGATE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chrome = which(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = which(&["chromedriver"]);
    let (chrome, driver) = match (chrome, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => {
            let msg = format!(
                "browser test needs chromium and chromedriver (found chromium: {}, chromedriver: {}); \
                 install Debian's `chromium chromium-driver`",
                c.is_some(),
                d.is_some()
            );
            if required {
                panic!("CAMGATE_REQUIRE_BROWSER=1: {msg}");
            }
            // Straight to the stderr handle: libtest captures eprintln! of passing tests.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {msg}");
            return None;
        }
    };

    let turn = ONE_BROWSER.lock().await;
    let port = free_port();
    let driver = ChildGuard(
        std::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    wait_for_driver(port).await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chrome.to_string_lossy(),
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect to chromedriver");
    Some(Browser {
        c,
        _driver: driver,
        _profile: profile,
        _turn: turn,
    })
}

/// `target/screenshots/` (or under `CARGO_TARGET_DIR`), created if missing.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the viewport as `file` in [`screenshot_dir`].
pub async fn save_screenshot(c: &fantoccini::Client, file: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = screenshot_dir().join(file);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

pub async fn type_into(c: &fantoccini::Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

pub async fn click(c: &fantoccini::Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The `value` property of the element with this id.
pub async fn value_of(c: &fantoccini::Client, id: &str) -> String {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Waits (15 s at most) until the current URL starts with `prefix`, and returns it.
pub async fn wait_for_url(c: &fantoccini::Client, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let u = c.current_url().await.unwrap().to_string();
        if u.starts_with(prefix) {
            return u;
        }
        assert!(Instant::now() < deadline, "never reached {prefix}; at {u}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (15 s at most) until `main` contains `text`, and returns its text.
pub async fn wait_for_text(c: &fantoccini::Client, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(m) = c.find(Locator::Css("main")).await {
            if let Ok(t) = m.text().await {
                if t.contains(text) {
                    return t;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "never saw {text:?}; at {}",
            c.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
