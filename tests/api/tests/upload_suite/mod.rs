//! Black-box tests of the uploads component (docs/API.md, "Files"),
//! through the test host on the store of the run (the real MariaDB or Spin's
//! SQLite) and Redis, run once per storage: `tests/uploads.rs` (the
//! database) and `tests/uploads_s3.rs` (a real
//! S3-compatible store), each naming its storage as `super::storage()`.
//!
//! Content is fetched as a client would: with S3 storage the API must answer
//! a redirect, which is followed to the store ([`get_content`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api_tests::{unique, AppOptions, Storage, TestApp};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("random");
    bytes
}

fn sha256_of_response(json: &Value) -> String {
    json["sha256"].as_str().expect("sha256").to_string()
}

/// One file of each accepted type, with random (so unique) content:
/// `(bytes, content type the API must detect, filename)`.
fn samples() -> Vec<(Vec<u8>, &'static str, &'static str)> {
    let body = random_bytes(200 * 1024);
    let with = |prefix: &[u8]| {
        let mut v = prefix.to_vec();
        v.extend_from_slice(&body);
        v
    };
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8 ");
    webp.extend_from_slice(&body);
    let text = format!("héllo wörld ✓ {}\r\n\tline two\n", unique("t")).repeat(2000);
    vec![
        (with(b"\x89PNG\r\n\x1a\n"), "image/png", "a.png"),
        (with(b"\xff\xd8\xff\xe0"), "image/jpeg", "b.jpg"),
        (with(b"GIF89a"), "image/gif", "c.gif"),
        (webp, "image/webp", "d.webp"),
        (with(b"%PDF-1.7\n"), "application/pdf", "e.pdf"),
        (text.into_bytes(), "text/plain; charset=utf-8", "f.txt"),
    ]
}

/// A `multipart/form-data` body with one part: `(content type, body)`.
fn form(field: &str, filename: &str, part_type: Option<&str>, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = unique("----boundary");
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
    )
    .into_bytes();
    if let Some(t) = part_type {
        body.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload_raw(
    app: &TestApp,
    token: &str,
    query: &str,
    content_type: Option<&str>,
    data: Vec<u8>,
) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url(&format!("/api/v1/uploads{query}")))
        .bearer_auth(token)
        .body(data);
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    req.send().await.expect("upload request")
}

async fn upload_form(
    app: &TestApp,
    token: &str,
    query: &str,
    filename: &str,
    part_type: Option<&str>,
    data: &[u8],
) -> reqwest::Response {
    let (content_type, body) = form("file", filename, part_type, data);
    app.http
        .post(app.url(&format!("/api/v1/uploads{query}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload request")
}

/// Uploads and returns the upload JSON, asserting 201.
async fn created(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body = resp.text().await.expect("body");
    assert_eq!(status, 201, "upload answered {status}: {body}");
    serde_json::from_str(&body).expect("upload JSON")
}

/// Starts the app on this suite's storage.
async fn start() -> TestApp {
    TestApp::start_with(AppOptions {
        storage: super::storage(),
        ..Default::default()
    })
    .await
}

/// An upload's content as a client gets it.
struct Served {
    /// The final status: the API's, or the store's after a redirect.
    status: u16,
    /// The headers the client finally received.
    headers: reqwest::header::HeaderMap,
    /// The API's own answer's headers (the same as `headers` when it served
    /// the bytes itself).
    api: reqwest::header::HeaderMap,
    /// The bytes.
    body: bytes::Bytes,
}

impl Served {
    fn status(&self) -> u16 {
        self.status
    }
    fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }
}

/// `GET …/content`, following a redirect to the store as a browser would.
/// With S3 storage, bytes must come from the store: the API answering 200
/// itself fails the test.
async fn get_content(app: &TestApp, id: &str, token: Option<&str>) -> Served {
    let mut req = app
        .http
        .get(app.url(&format!("/api/v1/uploads/{id}/content")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("content request");
    let api = resp.headers().clone();
    if super::storage() != Storage::Database {
        assert_ne!(
            resp.status(),
            200,
            "S3 content must not pass through the API"
        );
    }
    if resp.status() != 302 {
        return Served {
            status: resp.status().as_u16(),
            headers: api.clone(),
            api,
            body: resp.bytes().await.expect("content body"),
        };
    }
    let location = api["location"].to_str().expect("Location").to_string();
    // The store is another origin: no bearer token goes there.
    let stored = reqwest::Client::new()
        .get(&location)
        .send()
        .await
        .expect("following the redirect to the store");
    Served {
        status: stored.status().as_u16(),
        headers: stored.headers().clone(),
        api,
        body: stored.bytes().await.expect("stored body"),
    }
}

async fn delete(app: &TestApp, id: &str, token: &str) -> reqwest::Response {
    app.http
        .delete(app.url(&format!("/api/v1/uploads/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("delete request")
}

async fn blob_rows(app: &TestApp, sha256: &str) -> i64 {
    app.query::<i64>(
        "SELECT COUNT(*) FROM upload_blobs WHERE sha256 = ?",
        (sha256,),
    )
    .await[0]
}

#[tokio::test]
async fn each_allowed_type_round_trips_byte_for_byte_raw_and_multipart() {
    let app = start().await;
    let (_, token) = app.new_user().await;
    for (bytes, content_type, filename) in samples() {
        let claim = content_type.split(';').next().unwrap();
        for multipart in [false, true] {
            let resp = if multipart {
                upload_form(&app, &token, "", filename, Some(claim), &bytes).await
            } else {
                upload_raw(
                    &app,
                    &token,
                    &format!("?filename={filename}"),
                    Some(claim),
                    bytes.clone(),
                )
                .await
            };
            let json = created(resp).await;
            assert_eq!(
                json["content_type"], content_type,
                "{filename} multipart={multipart}"
            );
            assert_eq!(json["filename"], filename);
            assert_eq!(json["size"], bytes.len());
            assert_eq!(json["visibility"], "private");
            let id = json["id"].as_str().unwrap();
            assert_eq!(json["url"], format!("/api/v1/uploads/{id}/content"));

            let resp = get_content(&app, id, Some(&token)).await;
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], content_type);
            assert_eq!(
                resp.headers()["content-length"],
                bytes.len().to_string().as_str()
            );
            let got = resp.body.clone();
            assert!(
                got.as_ref() == bytes.as_slice(),
                "{filename} multipart={multipart}: bytes differ"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn metadata_and_own_list_follow_api_md() {
    let app = start().await;
    let (_, alice) = app.new_user().await;
    let (_, bob) = app.new_user().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let json = created(
            upload_raw(
                &app,
                &alice,
                "",
                None,
                format!("note {i} {}", unique("n")).into_bytes(),
            )
            .await,
        )
        .await;
        ids.push(json["id"].as_str().unwrap().to_string());
    }
    created(upload_raw(&app, &bob, "", None, b"bob's".to_vec()).await).await;

    let resp = app
        .http
        .get(app.url("/api/v1/uploads?page=1&limit=2"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["total"], 3);
    assert_eq!(page["page"], 1);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    // Newest first.
    assert_eq!(page["items"][0]["id"], ids[2].as_str());

    let path = app.url(&format!("/api/v1/uploads/{}", ids[0]));
    let mine = app
        .http
        .get(&path)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 200);
    let json: Value = mine.json().await.unwrap();
    for field in [
        "id",
        "filename",
        "content_type",
        "size",
        "sha256",
        "visibility",
        "created_at",
        "url",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    let theirs = app.http.get(&path).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(theirs.status(), 404);
    let admin = app.admin_token().await;
    assert_eq!(
        app.http
            .get(&path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.http.get(&path).send().await.unwrap().status(), 401);
    app.stop().await;
}

// ------------------------------------------------------------------ limits

/// `VmRSS` and `VmHWM` of this process (the host runs inside it), in bytes.
fn memory() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .map(|kb| kb * 1024)
            .expect("memory field")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Sends a `total`-byte body generated on the fly (never held in memory),
/// either with a declared `Content-Length` or chunked (no length), and returns
/// the response status and how many body bytes had been written when the
/// response arrived. Raw TCP so the test controls exactly what is declared.
async fn stream_upload(
    app: &TestApp,
    token: &str,
    total: usize,
    declare_length: bool,
) -> (u16, usize) {
    let addr = app.base.trim_start_matches("http://").to_string();
    let stream = TcpStream::connect(&addr).await.expect("connect");
    stream.set_nodelay(true).ok();
    let (mut reader, mut writer) = stream.into_split();
    let framing = if declare_length {
        format!("Content-Length: {total}\r\n")
    } else {
        "Transfer-Encoding: chunked\r\n".to_string()
    };
    let head = format!(
        "POST /api/v1/uploads HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/plain\r\n{framing}\r\n"
    );
    let sent = Arc::new(AtomicUsize::new(0));
    let sent_by_writer = sent.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 64 * 1024];
        let mut done = 0;
        while done < total {
            let n = chunk.len().min(total - done);
            if declare_length {
                writer.write_all(&chunk[..n]).await?;
            } else {
                writer.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                writer.write_all(&chunk[..n]).await?;
                writer.write_all(b"\r\n").await?;
            }
            done += n;
            sent_by_writer.store(done, Ordering::SeqCst);
        }
        if !declare_length {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        writer.flush().await?;
        // Keep the write half open until the test has read the answer.
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, std::io::Error>(())
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    response.extend_from_slice(&buf[..n]);
                    if response.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    let sent_when_answered = sent.load(Ordering::SeqCst);
    writing.abort();
    assert!(read.is_ok(), "no answer within 60 s");
    let head = String::from_utf8_lossy(&response);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    (status, sent_when_answered)
}

#[tokio::test]
async fn fifty_mib_body_is_413_and_host_memory_does_not_follow_it() {
    let app = start().await;
    let (_, token) = app.new_user().await;
    // Warm up the component (instance pool, MySQL driver) so it does not count.
    created(upload_raw(&app, &token, "", None, vec![b'w'; 4 * MIB]).await).await;

    let total = 50 * MIB;
    for declare_length in [false, true] {
        // Reset the high-water mark so VmHWM is this request's peak.
        std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
        let (rss_before, _) = memory();
        let (status, sent) = stream_upload(&app, &token, total, declare_length).await;
        let (rss_after, hwm) = memory();
        eprintln!(
            "declared={declare_length}: status {status}, {} KiB sent when answered, \
             RSS {} -> {} MiB, peak {} MiB",
            sent / 1024,
            rss_before / MIB,
            rss_after / MIB,
            hwm / MIB
        );
        assert_eq!(status, 413, "declared={declare_length}");
        assert!(sent < total, "the whole body was read before the answer");
        let growth = hwm.saturating_sub(rss_before);
        assert!(
            growth < 20 * MIB,
            "declared={declare_length}: peak memory grew by {} MiB",
            growth / MIB
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn file_just_over_the_limit_is_413_and_at_the_limit_is_201() {
    let app = TestApp::start_with(AppOptions {
        storage: super::storage(),
        variables: vec![("upload_max_bytes".into(), "1000".into())],
        ..Default::default()
    })
    .await;
    let (_, token) = app.new_user().await;
    let mut at_limit = unique("x").into_bytes();
    at_limit.resize(1000, b'.');
    created(upload_raw(&app, &token, "", None, at_limit.clone()).await).await;
    at_limit.push(b'!');
    let resp = upload_raw(&app, &token, "", None, at_limit.clone()).await;
    assert_eq!(resp.status(), 413);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["code"], "payload_too_large");
    let resp = upload_form(&app, &token, "", "x.txt", None, &at_limit).await;
    assert_eq!(resp.status(), 413);
    app.stop().await;
}

// ------------------------------------------------------------------ types and names

#[tokio::test]
async fn png_declared_as_pdf_and_executables_are_415() {
    let app = start().await;
    let (_, token) = app.new_user().await;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&random_bytes(1000));
    let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (png.clone(), Some("application/pdf")),
        (
            [&b"\x7fELF\x02\x01\x01\0"[..], &random_bytes(1000)].concat(),
            None,
        ),
        (
            [&b"MZ\x90\0\x03\0\0\0"[..], &random_bytes(1000)].concat(),
            Some("application/octet-stream"),
        ),
    ];
    for (bytes, claim) in cases {
        let resp = upload_raw(&app, &token, "", claim, bytes.clone()).await;
        assert_eq!(resp.status(), 415, "claim {claim:?}");
        let json: Value = resp.json().await.unwrap();
        assert_eq!(json["code"], "unsupported_media_type");
        assert_eq!(json["status"], 415);
    }
    let resp = upload_form(&app, &token, "", "x.png", Some("application/pdf"), &png).await;
    assert_eq!(resp.status(), 415);
    // Nothing was stored for the refused PNG.
    let sha = sha256_hex(&png);
    assert_eq!(blob_rows(&app, &sha).await, 0);
    assert_eq!(
        upload_raw(&app, &token, "", None, Vec::new())
            .await
            .status(),
        400
    );
    app.stop().await;
}

/// SHA-256 of `bytes`, lowercase hex (as `upload_blobs.sha256` holds it).
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn traversal_filename_is_stored_sanitised() {
    let app = start().await;
    let (_, token) = app.new_user().await;
    let resp = upload_raw(
        &app,
        &token,
        "?filename=..%2F..%2Fetc%2Fpasswd",
        None,
        unique("root:x:0:0:").into_bytes(),
    )
    .await;
    let json = created(resp).await;
    assert_eq!(json["filename"], "passwd");
    let id = json["id"].as_str().unwrap().to_string();
    let stored: Vec<String> = app
        .query("SELECT filename FROM uploads WHERE id = ?", (id.as_str(),))
        .await;
    assert_eq!(stored, vec!["passwd".to_string()]);

    // The multipart filename, Windows-style, with a quote and a CR/LF.
    let resp = upload_form(
        &app,
        &token,
        "",
        "..\\\\..\\\\win\\\\bo\\\"ot.log",
        None,
        unique("x").as_bytes(),
    )
    .await;
    let json = created(resp).await;
    assert_eq!(json["filename"], "boot.log");
    let resp = get_content(&app, json["id"].as_str().unwrap(), Some(&token)).await;
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"boot.log\""
    );
    app.stop().await;
}

// ------------------------------------------------------------------ storage

#[tokio::test]
async fn same_file_from_two_users_is_stored_once_and_outlives_one_delete() {
    let app = start().await;
    let (_, alice) = app.new_user().await;
    let (_, bob) = app.new_user().await;
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend_from_slice(&random_bytes(300 * 1024));

    // Both at once: the blob insert must not race into two rows or an error.
    let (a, b) = tokio::join!(
        upload_raw(
            &app,
            &alice,
            "?visibility=public",
            Some("image/gif"),
            bytes.clone()
        ),
        upload_raw(
            &app,
            &bob,
            "?visibility=public",
            Some("image/gif"),
            bytes.clone()
        ),
    );
    let (a, b) = (created(a).await, created(b).await);
    let sha = sha256_of_response(&a);
    assert_eq!(sha, sha256_of_response(&b));
    assert_eq!(blob_rows(&app, &sha).await, 1);
    let refs: Vec<i64> = app
        .query(
            "SELECT COUNT(*) FROM uploads WHERE sha256 = ?",
            (sha.as_str(),),
        )
        .await;
    assert_eq!(refs, vec![2]);

    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_eq!(delete(&app, a_id, &alice).await.status(), 204);
    assert_eq!(blob_rows(&app, &sha).await, 1);
    assert_eq!(get_content(&app, a_id, None).await.status(), 404);
    let resp = get_content(&app, b_id, None).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.body.as_ref() == bytes.as_slice());

    assert_eq!(delete(&app, b_id, &bob).await.status(), 204);
    assert_eq!(blob_rows(&app, &sha).await, 0);
    assert_eq!(delete(&app, b_id, &bob).await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_uploads_and_deletes_of_one_content_never_lose_live_bytes() {
    let app = start().await;
    let (_, token) = app.new_user().await;
    let mut bytes = b"%PDF-1.5\n".to_vec();
    bytes.extend_from_slice(&random_bytes(64 * 1024));

    let uploads = futures_join_all(
        (0..6)
            .map(|_| upload_raw(&app, &token, "", None, bytes.clone()))
            .collect(),
    )
    .await;
    let mut ids = Vec::new();
    for resp in uploads {
        ids.push(created(resp).await["id"].as_str().unwrap().to_string());
    }
    let sha = sha256_hex(&bytes);
    assert_eq!(blob_rows(&app, &sha).await, 1);

    // Delete the first three while three more of the same content arrive.
    let deletes = futures_join_all(ids[..3].iter().map(|id| delete(&app, id, &token)).collect());
    let more = futures_join_all(
        (0..3)
            .map(|_| upload_raw(&app, &token, "", None, bytes.clone()))
            .collect(),
    );
    let (deleted, more) = tokio::join!(deletes, more);
    for resp in deleted {
        assert_eq!(resp.status(), 204);
    }
    for resp in more {
        ids.push(created(resp).await["id"].as_str().unwrap().to_string());
    }
    for id in &ids[3..] {
        let resp = get_content(&app, id, Some(&token)).await;
        assert_eq!(resp.status(), 200, "live upload {id} lost its bytes");
        assert!(resp.body.as_ref() == bytes.as_slice());
    }
    assert_eq!(blob_rows(&app, &sha).await, 1);

    let last = futures_join_all(ids[3..].iter().map(|id| delete(&app, id, &token)).collect()).await;
    assert!(last.iter().all(|r| r.status() == 204));
    assert_eq!(blob_rows(&app, &sha).await, 0);
    app.stop().await;
}

/// Runs the futures concurrently (the harness has no `futures` dependency).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let mut out = Vec::with_capacity(futures.len());
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in pinned.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

#[tokio::test]
async fn only_owner_or_admin_deletes() {
    let app = start().await;
    let (_, alice) = app.new_user().await;
    let (_, bob) = app.new_user().await;
    let json = created(
        upload_raw(
            &app,
            &alice,
            "?visibility=public",
            None,
            unique("d").into_bytes(),
        )
        .await,
    )
    .await;
    let id = json["id"].as_str().unwrap();
    assert_eq!(delete(&app, id, &bob).await.status(), 404);
    assert_eq!(get_content(&app, id, None).await.status(), 200);
    let admin = app.admin_token().await;
    assert_eq!(delete(&app, id, &admin).await.status(), 204);
    assert_eq!(get_content(&app, id, None).await.status(), 404);
    app.stop().await;
}

// ------------------------------------------------------------------ serving

#[tokio::test]
async fn private_content_is_404_for_others_and_public_is_served_to_anyone_with_cdn_headers() {
    let app = start().await;
    let (_, alice) = app.new_user().await;
    let (_, bob) = app.new_user().await;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&random_bytes(10_000));

    let private =
        created(upload_raw(&app, &alice, "?filename=secret.png", None, png.clone()).await).await;
    let private_id = private["id"].as_str().unwrap();
    assert_eq!(
        get_content(&app, private_id, Some(&bob)).await.status(),
        404
    );
    assert_eq!(get_content(&app, private_id, None).await.status(), 404);
    let own = get_content(&app, private_id, Some(&alice)).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.headers()["cache-control"], "private, no-cache");

    let public = created(
        upload_raw(
            &app,
            &alice,
            "?filename=r%C3%A9sum%C3%A9.png&visibility=public",
            None,
            png.clone(),
        )
        .await,
    )
    .await;
    let resp = get_content(&app, public["id"].as_str().unwrap(), None).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-length"], png.len().to_string().as_str());
    // Validators and nosniff are the API's own (a store has its own ETag).
    assert_eq!(
        resp.api["etag"],
        format!("\"{}\"", sha256_of_response(&public)).as_str()
    );
    assert_eq!(resp.api["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(
        h["content-disposition"],
        "inline; filename=\"r_sum_.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9.png"
    );
    assert!(resp.body.as_ref() == png.as_slice());
    app.stop().await;
}

#[tokio::test]
async fn if_none_match_gives_304() {
    let app = start().await;
    let (_, alice) = app.new_user().await;
    for visibility in ["public", "private"] {
        let json = created(
            upload_raw(
                &app,
                &alice,
                &format!("?visibility={visibility}"),
                None,
                unique("etag").into_bytes(),
            )
            .await,
        )
        .await;
        let id = json["id"].as_str().unwrap();
        let first = get_content(&app, id, Some(&alice)).await;
        assert_eq!(first.status(), 200);
        let etag = first.api["etag"].to_str().unwrap().to_string();
        let cache_control = first.headers()["cache-control"].clone();

        for candidate in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"nope\", {etag}"),
            "*".to_string(),
        ] {
            let resp = app
                .http
                .get(app.url(&format!("/api/v1/uploads/{id}/content")))
                .bearer_auth(&alice)
                .header("if-none-match", &candidate)
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                304,
                "{visibility} If-None-Match: {candidate}"
            );
            assert_eq!(resp.headers()["etag"], etag.as_str());
            assert_eq!(resp.headers()["cache-control"], cache_control);
            assert!(resp.bytes().await.unwrap().is_empty());
        }
        let stale = app
            .http
            .get(app.url(&format!("/api/v1/uploads/{id}/content")))
            .bearer_auth(&alice)
            .header("if-none-match", "\"0000\"")
            .send()
            .await
            .unwrap();
        // Served anew: the bytes, or with S3 the redirect to them.
        let anew = match super::storage() {
            Storage::Database => 200,
            Storage::S3 { .. } => 302,
        };
        assert_eq!(stale.status(), anew);
    }
    app.stop().await;
}

// ------------------------------------------------------------------ authentication first

/// Sends only the head of an upload that declares a `declared`-byte body,
/// never a byte of the body, and returns the status of the answer (or `None`
/// when none came within 10 s: the server was waiting for the body).
async fn head_only_upload(
    app: &TestApp,
    authorization: Option<&str>,
    declared: usize,
) -> Option<u16> {
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream.set_nodelay(true).ok();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /api/v1/uploads?filename=a.png HTTP/1.1\r\nHost: {addr}\r\n{auth}\
         Content-Type: image/png\r\nContent-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    response.extend_from_slice(&buf[..n]);
                    if response.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    answered.ok()?;
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
}

#[tokio::test]
async fn a_five_mib_upload_with_a_bad_token_is_401_before_any_of_the_body_is_read() {
    let app = start().await;
    let declared = 5 * MIB;
    // Not one body byte is sent: an answer proves the server read none.
    for auth in [
        Some("Bearer junk"),
        Some("Bearer "),
        Some("Basic YTpi"),
        None,
    ] {
        let status = head_only_upload(&app, auth, declared).await;
        assert_eq!(status, Some(401), "Authorization {auth:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_bad_token_is_401_for_existing_and_missing_uploads_alike() {
    let app = start().await;
    let (_, alice) = app.new_user().await;
    let private = created(upload_raw(&app, &alice, "", None, unique("p").into_bytes()).await).await;
    let public = created(
        upload_raw(
            &app,
            &alice,
            "?visibility=public",
            None,
            unique("q").into_bytes(),
        )
        .await,
    )
    .await;
    let missing = "0123456789abcdef0123456789abcdef";
    for id in [
        private["id"].as_str().unwrap(),
        public["id"].as_str().unwrap(),
        missing,
    ] {
        for (method, path) in [
            ("GET", format!("/api/v1/uploads/{id}")),
            ("GET", format!("/api/v1/uploads/{id}/content")),
            ("DELETE", format!("/api/v1/uploads/{id}")),
        ] {
            let resp = app
                .http
                .request(method.parse().unwrap(), app.url(&path))
                .header("authorization", "Bearer not-a-token")
                .send()
                .await
                .expect("request");
            let body = api_tests::assert_problem(resp, 401, "invalid_token").await;
            assert!(body["detail"].is_string());
        }
    }
    let resp = app
        .http
        .get(app.url("/api/v1/uploads"))
        .header("authorization", "Bearer not-a-token")
        .send()
        .await
        .expect("list");
    api_tests::assert_problem(resp, 401, "invalid_token").await;
    // Nothing was deleted by the refused requests.
    assert_eq!(
        get_content(&app, private["id"].as_str().unwrap(), Some(&alice))
            .await
            .status(),
        200
    );
    app.stop().await;
}

// ------------------------------------------------------------------ extensions

#[tokio::test]
async fn text_under_a_shortcut_page_or_svg_name_is_415_and_not_stored() {
    let app = start().await;
    let (_, token) = app.new_user().await;
    let shortcut = format!(
        "[InternetShortcut]\r\nURL=file:///etc/passwd\r\n{}\r\n",
        unique("x")
    );
    for name in ["a.url", "page.html", "x.svg", "run.exe", "a.txt.lnk"] {
        let resp = upload_raw(
            &app,
            &token,
            &format!("?filename={name}"),
            None,
            shortcut.clone().into_bytes(),
        )
        .await;
        api_tests::assert_problem(resp, 415, "unsupported_media_type").await;
        let resp = upload_form(&app, &token, "", name, None, shortcut.as_bytes()).await;
        assert_eq!(resp.status(), 415, "{name} (multipart)");
    }
    let sha = sha256_hex(shortcut.as_bytes());
    assert_eq!(blob_rows(&app, &sha).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn each_type_keeps_its_own_extensions_and_a_nameless_file_gets_one() {
    let app = start().await;
    let (_, token) = app.new_user().await;
    let text = unique("notes ").into_bytes();
    for name in ["notes.md", "data.csv", "app.log", "x.json", "README"] {
        let json = created(
            upload_raw(
                &app,
                &token,
                &format!("?filename={name}"),
                None,
                text.clone(),
            )
            .await,
        )
        .await;
        assert_eq!(json["filename"], name);
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&random_bytes(100));
    for name in ["photo.jpg", "photo.txt", "photo"] {
        let resp = upload_raw(
            &app,
            &token,
            &format!("?filename={name}"),
            None,
            png.clone(),
        )
        .await;
        assert_eq!(resp.status(), 415, "{name}");
    }
    let json = created(upload_raw(&app, &token, "", None, png.clone()).await).await;
    assert_eq!(json["filename"], "upload.png");
    app.stop().await;
}

// ------------------------------------------------------------------ quota

async fn stored_bytes(app: &TestApp, user_id: &str) -> (i64, i64) {
    let rows: Vec<(i64, i64)> = app
        .query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS SIGNED) FROM uploads WHERE user_id = ?",
            (user_id,),
        )
        .await;
    rows[0]
}

#[tokio::test]
async fn an_upload_past_the_quota_is_409_and_stores_nothing() {
    let app = TestApp::start_with(AppOptions {
        storage: super::storage(),
        variables: vec![("upload_quota_bytes".into(), "3000".into())],
        ..Default::default()
    })
    .await;
    let (user, token) = app.new_user().await;
    let user_id = user["id"].as_str().unwrap();
    let sized = |n: usize| {
        let mut v = unique("q").into_bytes();
        v.resize(n, b'.');
        v
    };
    created(upload_raw(&app, &token, "", None, sized(2000)).await).await;
    let refused = sized(1001);
    let resp = upload_raw(&app, &token, "", None, refused.clone()).await;
    let body = api_tests::assert_problem(resp, 409, "quota_exceeded").await;
    assert!(body["detail"].as_str().unwrap().contains("3000"));
    assert_eq!(stored_bytes(&app, user_id).await, (1, 2000));
    let sha = sha256_hex(&refused);
    assert_eq!(blob_rows(&app, &sha).await, 0);
    // Exactly up to the quota is accepted.
    created(upload_raw(&app, &token, "", None, sized(1000)).await).await;
    assert_eq!(stored_bytes(&app, user_id).await, (2, 3000));
    // Deleting frees the room again.
    let list: Value = app
        .http
        .get(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = list["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(delete(&app, &first, &token).await.status(), 204);
    created(upload_raw(&app, &token, "", None, sized(900)).await).await;
    app.stop().await;
}

#[tokio::test]
async fn concurrent_uploads_cannot_pass_the_quota_together() {
    let app = TestApp::start_with(AppOptions {
        storage: super::storage(),
        variables: vec![("upload_quota_bytes".into(), "3000".into())],
        ..Default::default()
    })
    .await;
    let (user, token) = app.new_user().await;
    let user_id = user["id"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut data = unique("c").into_bytes();
        data.resize(1000, b'.');
        let req = app
            .http
            .post(app.url("/api/v1/uploads"))
            .bearer_auth(&token)
            .body(data);
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![201, 201, 201, 409, 409, 409, 409, 409]);
    assert_eq!(stored_bytes(&app, &user_id).await, (3, 3000));
    app.stop().await;
}
