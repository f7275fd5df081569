//! A component's static `files`, as `spin up` (Spin 4.0.2) mounts them by
//! default: copied at start into a `spinup-` working directory, preopened
//! read-only as `/`; no `files`, no preopen.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use spin_test_host::{HostConfig, RunningHost};

/// Writes `spin.toml` (one component `c` on `/...` running the fixture,
/// its table ending with `component_keys`) and `files` into a fresh app
/// directory; returns the manifest's path.
fn app(component_keys: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let manifest = temp_manifest(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "files"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "{{wasm}}"
{component_keys}
"#
    ));
    let dir = app_dir(&manifest);
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    manifest
}

fn app_dir(manifest: &Path) -> PathBuf {
    manifest.parent().unwrap().to_path_buf()
}

async fn start(manifest: &Path) -> RunningHost {
    RunningHost::start(config(manifest)).await.unwrap()
}

fn config(manifest: &Path) -> HostConfig {
    let mut config = HostConfig::new(manifest);
    config.state_dir = Some(temp_dir("state"));
    config
}

async fn start_error(manifest: &Path) -> String {
    match RunningHost::start(config(manifest)).await {
        Ok(host) => {
            host.stop().await;
            panic!("the host started");
        }
        Err(e) => format!("{e:#}"),
    }
}

/// The guest's `std::fs::read` of `guest_path`: (status, body bytes).
async fn read(host: &RunningHost, guest_path: &str) -> (u16, Vec<u8>) {
    let mut url = reqwest::Url::parse(&format!("{}/api/fs/read", host.base_url())).unwrap();
    // Percent-encodes what is not ASCII; the fixture decodes it.
    url.set_query(Some(guest_path));
    let res = client().get(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.bytes().await.unwrap().to_vec())
}

/// Reads a file the guest must see, as text.
async fn read_ok(host: &RunningHost, guest_path: &str) -> Vec<u8> {
    let (status, body) = read(host, guest_path).await;
    assert_eq!(
        status,
        200,
        "{guest_path}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// Asserts the guest cannot read `guest_path`; returns the error text.
async fn read_fails(host: &RunningHost, guest_path: &str) -> String {
    let (status, body) = read(host, guest_path).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 404, "{guest_path} was readable: {text}");
    text
}

/// The guest's `std::fs::write` of `content` to `guest_path`: the fixture's
/// `{"ok": null}` or `{"err": "<kind>: <text>"}`.
async fn write(host: &RunningHost, guest_path: &str, content: &str) -> serde_json::Value {
    let mut url = reqwest::Url::parse(&format!("{}/api/fs/write", host.base_url())).unwrap();
    url.set_query(Some(guest_path));
    let res = client()
        .post(url)
        .body(content.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Non-ASCII text, then every byte value (not UTF-8 as a whole).
fn awkward_bytes() -> Vec<u8> {
    let mut bytes = "Grüße, ✓ 日本語 🦀\r\n".as_bytes().to_vec();
    bytes.extend(0..=255u8);
    bytes
}

#[tokio::test]
async fn a_placed_directory_reads_back_byte_for_byte() {
    let content = awkward_bytes();
    let manifest = app(
        r#"files = [{ source = "site", destination = "/static" }]"#,
        &[
            ("site/héllo-✓.txt", &content),
            ("site/nested/deeper/empty.bin", b""),
            ("site/.hidden", b"dot"),
        ],
    );
    let host = start(&manifest).await;
    assert_eq!(read_ok(&host, "/static/héllo-✓.txt").await, content);
    assert_eq!(read_ok(&host, "/static/nested/deeper/empty.bin").await, b"");
    assert_eq!(read_ok(&host, "/static/.hidden").await, b"dot");
    // Relative paths resolve from `/`, the only preopen.
    assert_eq!(read_ok(&host, "static/héllo-✓.txt").await, content);
    // The source's name is not a guest path.
    read_fails(&host, "/site/héllo-✓.txt").await;
    host.stop().await;
}

#[tokio::test]
async fn a_single_file_mount_lands_at_its_destination_path() {
    let manifest = app(
        r#"files = [{ source = "data/one.txt", destination = "/x/y.txt" }]"#,
        &[("data/one.txt", b"one")],
    );
    let host = start(&manifest).await;
    assert_eq!(read_ok(&host, "/x/y.txt").await, b"one");
    read_fails(&host, "/data/one.txt").await;
    read_fails(&host, "/one.txt").await;
    host.stop().await;
}

#[tokio::test]
async fn a_plain_file_entry_keeps_its_app_relative_path() {
    let manifest = app(
        r#"files = ["conf/app.json"]"#,
        &[("conf/app.json", b"{}"), ("conf/other.json", b"no")],
    );
    let host = start(&manifest).await;
    assert_eq!(read_ok(&host, "/conf/app.json").await, b"{}");
    read_fails(&host, "/conf/other.json").await;
    host.stop().await;
}

/// Spin 4.0.2 joins a plain directory entry's path twice (`copy_glob` of
/// `dir/**/*` relative to the app directory, under `<root>/dir`): `static`
/// puts `static/a.txt` at `/static/static/a.txt`, not `/static/a.txt`.
#[tokio::test]
async fn a_plain_directory_entry_lands_under_its_path_twice_as_on_spin() {
    let manifest = app(
        r#"files = ["static"]"#,
        &[("static/a.txt", b"a"), ("static/sub/b.txt", b"b")],
    );
    let host = start(&manifest).await;
    assert_eq!(read_ok(&host, "/static/static/a.txt").await, b"a");
    assert_eq!(read_ok(&host, "/static/static/sub/b.txt").await, b"b");
    let err = read_fails(&host, "/static/a.txt").await;
    assert!(err.starts_with("NotFound"), "{err}");
    host.stop().await;
}

#[tokio::test]
async fn the_guest_cannot_write_its_files() {
    let manifest = app(
        r#"files = [{ source = "site", destination = "/" }]"#,
        &[("site/a.txt", b"original")],
    );
    let host = start(&manifest).await;
    for (path, what) in [
        ("/new.txt", "a new file under /"),
        ("/sub/new.txt", "a new file in a new directory"),
        ("/a.txt", "an existing file"),
    ] {
        let outcome = write(&host, path, "written").await;
        let err = outcome["err"]
            .as_str()
            .unwrap_or_else(|| panic!("{what} ({path}) was written: {outcome}"));
        assert!(
            err.starts_with("PermissionDenied") || err.starts_with("NotFound"),
            "{path}: {err}"
        );
    }
    assert_eq!(
        write(&host, "/new.txt", "x").await["err"],
        "PermissionDenied: Operation not permitted (os error 63)"
    );
    read_fails(&host, "/new.txt").await;
    assert_eq!(read_ok(&host, "/a.txt").await, b"original");
    host.stop().await;
}

#[tokio::test]
async fn an_edit_to_a_source_after_start_is_not_seen() {
    let manifest = app(
        r#"files = [{ source = "site", destination = "/" }]"#,
        &[("site/a.txt", b"before")],
    );
    let host = start(&manifest).await;
    assert_eq!(read_ok(&host, "/a.txt").await, b"before");
    let site = app_dir(&manifest).join("site");
    std::fs::write(site.join("a.txt"), "after").unwrap();
    std::fs::write(site.join("added.txt"), "added").unwrap();
    assert_eq!(read_ok(&host, "/a.txt").await, b"before");
    read_fails(&host, "/added.txt").await;
    host.stop().await;
}

#[tokio::test]
async fn a_component_without_files_cannot_read_any_path() {
    let manifest = app("", &[("a.txt", b"a")]);
    let host = start(&manifest).await;
    // wasi-libc finds no preopen to resolve any path against: ENOENT.
    let not_found = "NotFound: No such file or directory (os error 44)";
    for path in ["/a.txt", "a.txt", "/", ".", "/etc/passwd", "/tmp"] {
        assert_eq!(read_fails(&host, path).await, not_found, "{path}");
    }
    assert_eq!(write(&host, "/new.txt", "x").await["err"], not_found);
    host.stop().await;
}

#[tokio::test]
async fn the_copy_lives_in_a_spinup_directory_removed_when_the_host_stops() {
    let marker = unique("marker");
    let manifest = app(
        &format!(r#"files = ["{marker}.txt"]"#),
        &[(&format!("{marker}.txt"), b"m")],
    );
    let host = start(&manifest).await;
    let copies: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("spinup-"))
        })
        .filter(|p| p.join(format!("assets/c/{marker}.txt")).is_file())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    host.stop().await;
    let gone = async {
        while copies[0].exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .unwrap_or_else(|_| panic!("{} outlived the host", copies[0].display()));
}

#[tokio::test]
async fn a_missing_source_stops_the_start_naming_it() {
    let manifest = app(
        r#"files = [{ source = "no-such-dir", destination = "/x" }]"#,
        &[],
    );
    let err = start_error(&manifest).await;
    assert!(
        err.contains("File or directory \"no-such-dir\" does not exist"),
        "{err}"
    );
    assert!(err.contains("component `c`"), "{err}");

    let manifest = app(r#"files = ["no-such-file.txt"]"#, &[]);
    let err = start_error(&manifest).await;
    assert!(
        err.contains("\"no-such-file.txt\" does not exist and doesn't appear to be a glob pattern"),
        "{err}"
    );
}

#[tokio::test]
async fn a_glob_pattern_is_refused_as_not_implemented_by_the_test_host() {
    let manifest = app(r#"files = ["static/*.txt"]"#, &[("static/a.txt", b"a")]);
    let err = start_error(&manifest).await;
    assert!(err.contains("not implemented by the test host"), "{err}");
    assert!(err.contains("static/*.txt"), "{err}");
}

#[tokio::test]
async fn exclude_files_is_refused_as_not_implemented_by_the_test_host() {
    let manifest = app(
        "files = [{ source = \"static\", destination = \"/\" }]\nexclude_files = [\"static/secret.txt\"]",
        &[("static/a.txt", b"a"), ("static/secret.txt", b"s")],
    );
    let err = start_error(&manifest).await;
    assert!(err.contains("not implemented by the test host"), "{err}");
    assert!(err.contains("exclude_files"), "{err}");
}

#[test]
fn binary_exits_nonzero_on_a_missing_source() {
    let manifest = app(
        r#"files = [{ source = "no-such-dir", destination = "/x" }]"#,
        &[],
    );
    let (code, stderr) = run_host_to_exit(&["--from", manifest.to_str().unwrap()]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("File or directory \"no-such-dir\" does not exist"),
        "{stderr}"
    );
}
