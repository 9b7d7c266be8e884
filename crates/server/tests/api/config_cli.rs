//! `camgate config check` (the resolved configuration, the database password masked) and
//! `CAMGATE_DATABASE_URL_FILE` (the database URL, a secret, read from a file).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn camgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_camgate"));
    for v in [
        "CAMGATE_BIND",
        "CAMGATE_CONFIG",
        "CAMGATE_DATABASE_URL",
        "CAMGATE_DATABASE_URL_FILE",
        "CAMGATE_LOG_FORMAT",
    ] {
        c.env_remove(v);
    }
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn config_check_accepts_the_example_and_prints_resolved_values() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../camgate.example.toml");
    let o = camgate()
        .args(["config", "check", "--config", example])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("bind = \"127.0.0.1:8080\""), "{out}");
    assert!(out.contains("refresh_grace_secs = 10"), "{out}");
    assert!(out.contains("login_failure_window_secs = 3600"), "{out}");
    assert!(err.contains("configuration ok"));
}

#[test]
fn config_check_names_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("camgate.toml");
    std::fs::write(&f, "bind = \"127.0.0.1:1\"\nrefresh_grace_sec = 5\n").unwrap();
    let o = camgate()
        .args(["config", "check", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("refresh_grace_sec"), "{out}{err}");
    // An invalid value is named too.
    std::fs::write(&f, "refresh_grace_secs = 99999\n").unwrap();
    let o = camgate()
        .args(["config", "check", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("refresh_grace_secs"));
}

#[test]
fn database_url_from_file_is_used_and_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("db_url");
    std::fs::write(
        &secret,
        "postgres://camgate:s3cr3t-pw@db.internal:5432/camgate\n",
    )
    .unwrap();
    let o = camgate()
        .args(["config", "check"])
        .env("CAMGATE_DATABASE_URL_FILE", &secret)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("database_url = \"postgres://camgate:***@db.internal:5432/camgate\""),
        "{out}"
    );
    assert!(!out.contains("s3cr3t-pw") && !err.contains("s3cr3t-pw"));
    // A flag still wins over the file.
    let o = camgate()
        .args(["config", "check", "--database-url", "sqlite://flag.db"])
        .env("CAMGATE_DATABASE_URL_FILE", &secret)
        .output()
        .unwrap();
    assert!(text(&o).0.contains("database_url = \"sqlite://flag.db\""));
    // Both the variable and its _FILE twin: refused.
    let o = camgate()
        .args(["config", "check"])
        .env("CAMGATE_DATABASE_URL_FILE", &secret)
        .env("CAMGATE_DATABASE_URL", "sqlite://env.db")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("CAMGATE_DATABASE_URL_FILE"));
    // A missing file is named.
    let o = camgate()
        .args(["config", "check"])
        .env("CAMGATE_DATABASE_URL_FILE", dir.path().join("missing"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("CAMGATE_DATABASE_URL_FILE"));
}

#[test]
fn serve_log_format_flag_is_validated() {
    let o = camgate()
        .args(["serve", "--log-format", "xml", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("xml"));
}
