//! Uploads on object storage (README "Uploads on object storage"), against a
//! real S3-compatible store (`s3s-fs`, which checks SigV4 signatures,
//! presigned-URL expiry and checksums): the whole uploads suite
//! (`upload_suite/`) with `upload_storage = s3`, then direct uploads,
//! redirects, the CDN and reference-safe deletes.

use api_tests::{assert_problem, unique, AppOptions, Storage, TestApp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn storage() -> Storage {
    Storage::S3 { cdn: None }
}

#[path = "upload_suite/mod.rs"]
mod suite;

async fn s3_app(cdn: Option<&str>, variables: Vec<(String, String)>) -> TestApp {
    TestApp::start_with(AppOptions {
        storage: Storage::S3 {
            cdn: cdn.map(str::to_string),
        },
        variables,
        ..Default::default()
    })
    .await
}

fn png(n: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut random = vec![0u8; n];
    getrandom::fill(&mut random).expect("random");
    bytes.extend_from_slice(&random);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn keys(app: &TestApp) -> Vec<String> {
    app.s3.as_ref().expect("an S3 app").keys()
}

/// `POST /api/v1/uploads/presign` for `bytes`, asserting 201.
async fn presign(app: &TestApp, token: &str, filename: &str, bytes: &[u8]) -> Value {
    let resp = app
        .http
        .post(app.url("/api/v1/uploads/presign"))
        .bearer_auth(token)
        .json(&json!({
            "filename": filename,
            "size": bytes.len(),
            "sha256": sha256_hex(bytes),
            "visibility": "private",
        }))
        .send()
        .await
        .expect("presign");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.expect("presign JSON")
}

/// PUTs `body` to a presigned URL with its headers, as a browser would.
async fn put(presigned: &Value, url: &str, body: Vec<u8>) -> reqwest::Response {
    let mut req = reqwest::Client::new().put(url).body(body);
    for (name, value) in presigned["headers"].as_object().expect("headers") {
        req = req.header(name, value.as_str().expect("header value"));
    }
    req.send().await.expect("PUT to the store")
}

/// A raw upload through the API (`query` with its `?`), asserting 201; its id.
async fn upload(app: &TestApp, token: &str, query: &str, bytes: Vec<u8>) -> String {
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/uploads{query}")))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.expect("upload JSON")["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn complete(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v1/uploads/{id}/complete")))
        .bearer_auth(token)
        .send()
        .await
        .expect("complete")
}

async fn content(app: &TestApp, id: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app
        .http
        .get(app.url(&format!("/api/v1/uploads/{id}/content")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("content")
}

async fn follow(redirect: &reqwest::Response) -> reqwest::Response {
    let location = redirect.headers()["location"].to_str().unwrap();
    reqwest::Client::new()
        .get(location)
        .send()
        .await
        .expect("GET the redirect")
}

/// The test store's bucket and the component's credentials, to act on the
/// store directly as the component (or a laxer store) would.
fn store_access(app: &TestApp) -> (rusty_s3::Bucket, rusty_s3::Credentials) {
    let server = app.s3.as_ref().expect("an S3 app");
    let bucket = rusty_s3::Bucket::new(
        server.endpoint.parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        api_tests::s3::BUCKET,
        api_tests::s3::REGION,
    )
    .unwrap();
    let credentials = rusty_s3::Credentials::new(&server.access_key, &server.secret_key);
    (bucket, credentials)
}

/// The headers the store serves `key` with: what a CDN in front of the
/// bucket passes on to browsers.
async fn stored_headers(app: &TestApp, key: &str) -> reqwest::header::HeaderMap {
    let (bucket, credentials) = store_access(app);
    let url = rusty_s3::S3Action::sign(
        &bucket.head_object(Some(&credentials), key),
        std::time::Duration::from_secs(60),
    );
    let resp = reqwest::Client::new().head(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "HEAD {key}");
    resp.headers().clone()
}

async fn pending_rows(app: &TestApp, id: &str) -> i64 {
    app.query::<i64>("SELECT COUNT(*) FROM pending_uploads WHERE id = ?", (id,))
        .await[0]
}

#[tokio::test]
async fn presign_put_complete_then_get_follows_the_redirect_to_the_exact_bytes() {
    let app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let bytes = png(300_000);
    let presigned = presign(&app, &token, "holiday.png", &bytes).await;
    let id = presigned["id"].as_str().unwrap();
    assert_eq!(presigned["method"], "PUT");
    assert_eq!(
        presigned["complete_url"],
        format!("/api/v1/uploads/{id}/complete")
    );
    assert_eq!(pending_rows(&app, id).await, 1);

    let stored = put(
        &presigned,
        presigned["url"].as_str().unwrap(),
        bytes.clone(),
    )
    .await;
    assert_eq!(stored.status(), 200, "{}", stored.text().await.unwrap());
    let resp = complete(&app, &token, id).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["location"],
        format!("/api/v1/uploads/{id}").as_str()
    );
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["content_type"], "image/png");
    assert_eq!(json["size"], bytes.len());
    assert_eq!(json["sha256"], sha256_hex(&bytes));
    assert_eq!(pending_rows(&app, id).await, 0);
    // Served from a checked copy under a key no client can write; the
    // client's object is gone.
    let key = app
        .query::<String>(
            "SELECT object_key FROM upload_blobs WHERE sha256 = ?",
            (sha256_hex(&bytes),),
        )
        .await
        .remove(0);
    assert!(key.starts_with("objects/"), "{key}");
    assert_eq!(keys(&app), vec![key]);

    let redirect = content(&app, id, Some(&token)).await;
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["cache-control"], "no-store");
    let got = follow(&redirect).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.headers()["cache-control"], "private, no-cache");
    assert!(got.bytes().await.unwrap().as_ref() == bytes.as_slice());
    app.stop().await;
}

#[tokio::test]
async fn a_tampered_presigned_url_is_refused_by_the_store() {
    let app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let bytes = png(1_000);
    let presigned = presign(&app, &token, "a.png", &bytes).await;
    let url = presigned["url"].as_str().unwrap();
    // Another key with the same signature.
    let other_key = url.replacen("/incoming/", "/objects/", 1);
    assert_ne!(other_key, url);
    assert_eq!(
        put(&presigned, &other_key, bytes.clone()).await.status(),
        403
    );
    // A longer lifetime than was signed.
    let longer = url.replacen("X-Amz-Expires=300", "X-Amz-Expires=86400", 1);
    assert_ne!(longer, url);
    assert_eq!(put(&presigned, &longer, bytes.clone()).await.status(), 403);
    // Without the signed checksum header.
    let bare = reqwest::Client::new()
        .put(url)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    assert!(keys(&app).is_empty(), "{:?}", keys(&app));
    app.stop().await;
}

#[tokio::test]
async fn an_expired_presigned_url_is_refused_by_the_store() {
    let app = s3_app(None, vec![("presign_ttl_secs".into(), "1".into())]).await;
    let (_, token) = app.new_user().await;
    let bytes = png(1_000);
    let presigned = presign(&app, &token, "a.png", &bytes).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let resp = put(&presigned, presigned["url"].as_str().unwrap(), bytes).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("expired"));
    // Nothing arrived, so completing finds nothing to complete.
    let resp = complete(&app, &token, presigned["id"].as_str().unwrap()).await;
    assert_problem(resp, 409, "invalid_state").await;
    assert!(keys(&app).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn other_bytes_than_announced_fail_and_leave_no_object() {
    let app = s3_app(None, vec![]).await;
    let (user, token) = app.new_user().await;
    let announced = png(5_000);
    let mut other = announced.clone();
    other[100] ^= 0xff;
    let presigned = presign(&app, &token, "a.png", &announced).await;
    let id = presigned["id"].as_str().unwrap();
    let resp = put(&presigned, presigned["url"].as_str().unwrap(), other).await;
    assert_eq!(resp.status(), 400, "the store checks the signed checksum");
    // s3s-fs answers BadDigest but has already stored the bytes, without a
    // checksum: `complete` hashes the object as it streams in, refuses it and
    // deletes it. (A store that kept nothing would make this 409.)
    let resp = complete(&app, &token, id).await;
    let body = assert_problem(resp, 400, "bad_request").await;
    assert!(
        body["detail"].as_str().unwrap().contains("SHA-256"),
        "{body}"
    );
    assert_eq!(pending_rows(&app, id).await, 0);
    assert!(keys(&app).is_empty(), "{:?}", keys(&app));
    let user_id = user["id"].as_str().unwrap();
    assert_eq!(
        app.query::<i64>("SELECT COUNT(*) FROM uploads WHERE user_id = ?", (user_id,))
            .await[0],
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn an_object_of_another_size_fails_complete_and_is_deleted() {
    let app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let announced = png(5_000);
    let presigned = presign(&app, &token, "a.png", &announced).await;
    let id = presigned["id"].as_str().unwrap();
    // A store that did not bind the size: simulated by putting other bytes
    // under the key with the component's own credentials.
    let server = app.s3.as_ref().unwrap();
    let bucket = rusty_s3::Bucket::new(
        server.endpoint.parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        api_tests::s3::BUCKET,
        api_tests::s3::REGION,
    )
    .unwrap();
    let credentials = rusty_s3::Credentials::new(&server.access_key, &server.secret_key);
    let url = rusty_s3::S3Action::sign(
        &bucket.put_object(Some(&credentials), &format!("incoming/{id}")),
        std::time::Duration::from_secs(60),
    );
    let resp = reqwest::Client::new()
        .put(url)
        .body(announced[..4_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = complete(&app, &token, id).await;
    let body = assert_problem(resp, 400, "bad_request").await;
    assert!(body["detail"].as_str().unwrap().contains("announced"));
    assert!(keys(&app).is_empty());
    assert_eq!(pending_rows(&app, id).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn bytes_put_again_after_complete_are_never_served() {
    let app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let bytes = png(4_000);
    let presigned = presign(&app, &token, "a.png", &bytes).await;
    let id = presigned["id"].as_str().unwrap();
    let url = presigned["url"].as_str().unwrap();
    put(&presigned, url, bytes.clone()).await;
    assert_eq!(complete(&app, &token, id).await.status(), 201);
    // The URL is still valid: other bytes of the same length under the same
    // headers (s3s-fs stores them before it finds the checksum wrong).
    let mut exe = b"MZ\x90\0".to_vec();
    exe.resize(bytes.len(), 0);
    put(&presigned, url, exe).await;
    let redirect = content(&app, id, Some(&token)).await;
    let got = follow(&redirect).await;
    assert!(got.bytes().await.unwrap().as_ref() == bytes.as_slice());
    app.stop().await;
}

#[tokio::test]
async fn a_disguised_executable_is_refused_and_deleted() {
    let app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let mut exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec();
    exe.extend_from_slice(unique("payload").as_bytes());
    let presigned = presign(&app, &token, "holiday.png", &exe).await;
    let id = presigned["id"].as_str().unwrap();
    let stored = put(&presigned, presigned["url"].as_str().unwrap(), exe).await;
    assert_eq!(stored.status(), 200);
    assert_eq!(keys(&app), vec![format!("incoming/{id}")]);
    let resp = complete(&app, &token, id).await;
    assert_problem(resp, 415, "unsupported_media_type").await;
    assert!(keys(&app).is_empty());
    assert_eq!(pending_rows(&app, id).await, 0);
    let resp = content(&app, id, Some(&token)).await;
    assert_eq!(resp.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn presign_is_held_to_the_quota_with_what_is_pending() {
    let app = s3_app(None, vec![("upload_quota_bytes".into(), "10000".into())]).await;
    let (_, token) = app.new_user().await;
    presign(&app, &token, "a.png", &png(6_000)).await;
    let big = png(6_000);
    let resp = app
        .http
        .post(app.url("/api/v1/uploads/presign"))
        .bearer_auth(&token)
        .json(&json!({"filename": "b.png", "size": big.len(), "sha256": sha256_hex(&big)}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 409, "quota_exceeded").await;
    app.stop().await;
}

#[tokio::test]
async fn a_user_holds_at_most_twenty_announcements() {
    let app = s3_app(None, vec![]).await;
    let (user, token) = app.new_user().await;
    for i in 0..20 {
        presign(&app, &token, "a.txt", format!("note {i}").as_bytes()).await;
    }
    let resp = app
        .http
        .post(app.url("/api/v1/uploads/presign"))
        .bearer_auth(&token)
        .json(&json!({"size": 3, "sha256": sha256_hex(b"abc")}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 429, "too_many_attempts").await;
    let user_id = user["id"].as_str().unwrap();
    assert_eq!(
        app.query::<i64>(
            "SELECT COUNT(*) FROM pending_uploads WHERE user_id = ?",
            (user_id,)
        )
        .await[0],
        20
    );
    app.stop().await;
}

#[tokio::test]
async fn only_the_owner_completes_and_completing_twice_answers_the_same() {
    let app = s3_app(None, vec![]).await;
    let (_, alice) = app.new_user().await;
    let (_, bob) = app.new_user().await;
    let bytes = png(2_000);
    let presigned = presign(&app, &alice, "a.png", &bytes).await;
    let id = presigned["id"].as_str().unwrap();
    put(&presigned, presigned["url"].as_str().unwrap(), bytes).await;
    assert_problem(complete(&app, &bob, id).await, 404, "not_found").await;
    let first: Value = complete(&app, &alice, id).await.json().await.unwrap();
    let again = complete(&app, &alice, id).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    app.stop().await;
}

#[tokio::test]
async fn private_content_redirects_only_for_the_owner_or_an_admin() {
    let app = s3_app(None, vec![]).await;
    let (_, alice) = app.new_user().await;
    let (_, bob) = app.new_user().await;
    let admin = app.admin_token().await;
    let bytes = png(2_000);
    let id = upload(&app, &alice, "?filename=a.png", bytes.clone()).await;
    for token in [&alice, &admin] {
        let redirect = content(&app, &id, Some(token)).await;
        assert_eq!(redirect.status(), 302);
        let got = follow(&redirect).await;
        assert!(got.bytes().await.unwrap().as_ref() == bytes.as_slice());
    }
    assert_eq!(content(&app, &id, Some(&bob)).await.status(), 404);
    assert_eq!(content(&app, &id, None).await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn public_content_redirects_to_the_cdn_base_when_set() {
    let cdn = "https://cdn.example.test/uploads";
    let app = s3_app(Some(cdn), vec![]).await;
    let (_, alice) = app.new_user().await;
    let public = upload(
        &app,
        &alice,
        "?filename=p.png&visibility=public",
        png(1_000),
    )
    .await;
    let redirect = content(&app, &public, None).await;
    assert_eq!(redirect.status(), 302);
    assert_eq!(
        redirect.headers()["location"],
        format!("{cdn}/objects/{public}").as_str()
    );
    // Private content never goes through the CDN.
    let private = upload(&app, &alice, "?filename=q.png", png(1_000)).await;
    let redirect = content(&app, &private, Some(&alice)).await;
    let location = redirect.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&app.s3.as_ref().unwrap().endpoint),
        "{location}"
    );
    assert!(location.contains("X-Amz-Signature="));
    app.stop().await;
}

#[tokio::test]
async fn delete_removes_the_object_only_with_its_last_upload() {
    let app = s3_app(None, vec![]).await;
    let (_, alice) = app.new_user().await;
    let (_, bob) = app.new_user().await;
    let bytes = png(3_000);
    // Alice uploads through the API, Bob the same bytes directly.
    let first = upload(&app, &alice, "?filename=a.png", bytes.clone()).await;
    let presigned = presign(&app, &bob, "b.png", &bytes).await;
    let second = presigned["id"].as_str().unwrap().to_string();
    put(
        &presigned,
        presigned["url"].as_str().unwrap(),
        bytes.clone(),
    )
    .await;
    assert_eq!(complete(&app, &bob, &second).await.status(), 201);
    // One content, one object: Bob's copy was dropped at completion.
    assert_eq!(keys(&app), vec![format!("objects/{first}")]);

    let delete = |id: String, token: String| {
        let req = app
            .http
            .delete(app.url(&format!("/api/v1/uploads/{id}")))
            .bearer_auth(token);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(delete(first.clone(), alice.clone()).await, 204);
    assert_eq!(keys(&app).len(), 1, "Bob's upload still refers to it");
    let redirect = content(&app, &second, Some(&bob)).await;
    assert!(follow(&redirect).await.bytes().await.unwrap().as_ref() == bytes.as_slice());
    assert_eq!(delete(second.clone(), bob.clone()).await, 204);
    assert!(keys(&app).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_store_that_is_down_is_503_and_loses_nothing() {
    let mut app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let bytes = png(1_000);
    let presigned = presign(&app, &token, "a.png", &bytes).await;
    put(
        &presigned,
        presigned["url"].as_str().unwrap(),
        bytes.clone(),
    )
    .await;
    let id = presigned["id"].as_str().unwrap();
    // The store goes away (its pid is killed).
    drop(app.s3.take());
    let resp = complete(&app, &token, id).await;
    assert_problem(resp, 503, "unavailable").await;
    assert_eq!(pending_rows(&app, id).await, 1, "kept for a retry");
    let resp = app
        .http
        .post(app.url("/api/v1/uploads?filename=b.png"))
        .bearer_auth(&token)
        .body(png(1_000))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 503, "unavailable").await;
    app.stop().await;
}

#[tokio::test]
async fn a_presigned_put_with_another_content_type_is_refused_by_the_store() {
    let app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let html = b"<html><script>alert(document.domain)</script></html>".to_vec();
    let presigned = presign(&app, &token, "page.txt", &html).await;
    assert_eq!(
        presigned["headers"]["content-type"],
        "application/octet-stream"
    );
    let mut req = reqwest::Client::new()
        .put(presigned["url"].as_str().unwrap())
        .body(html);
    for (name, value) in presigned["headers"].as_object().unwrap() {
        if name != "content-type" {
            req = req.header(name, value.as_str().unwrap());
        }
    }
    let resp = req
        .header("content-type", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "the content type is signed");
    assert!(keys(&app).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_direct_upload_is_stored_with_the_detected_type_whatever_type_the_client_put() {
    let cdn = "https://cdn.example.test/uploads";
    let app = s3_app(Some(cdn), vec![]).await;
    let (_, token) = app.new_user().await;
    let html = format!(
        "<html><script>alert(document.domain)</script>{}</html>",
        unique("")
    );
    let presigned = app
        .http
        .post(app.url("/api/v1/uploads/presign"))
        .bearer_auth(&token)
        .json(&json!({
            "filename": "page.txt",
            "size": html.len(),
            "sha256": sha256_hex(html.as_bytes()),
            "visibility": "public",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(presigned.status(), 200);
    let presigned: Value = presigned.json().await.unwrap();
    let id = presigned["id"].as_str().unwrap();
    // A store that does not hold the client to the signed type (simulated
    // with the component's own credentials): the client's object says HTML.
    let (bucket, credentials) = store_access(&app);
    let incoming = format!("incoming/{id}");
    let mut action = bucket.put_object(Some(&credentials), &incoming);
    rusty_s3::S3Action::headers_mut(&mut action).insert("content-type", "text/html");
    let url = rusty_s3::S3Action::sign(&action, std::time::Duration::from_secs(60));
    let resp = reqwest::Client::new()
        .put(url)
        .header("content-type", "text/html")
        .body(html.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        stored_headers(&app, &format!("incoming/{id}")).await["content-type"],
        "text/html"
    );

    assert_eq!(complete(&app, &token, id).await.status(), 201);
    let redirect = content(&app, id, None).await;
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"].to_str().unwrap();
    let key = location
        .strip_prefix(&format!("{cdn}/"))
        .unwrap_or_else(|| panic!("through the CDN: {location}"));
    assert_eq!(keys(&app), vec![key.to_string()]);
    let served = stored_headers(&app, key).await;
    assert_eq!(served["content-type"], "text/plain; charset=utf-8");
    assert_eq!(served["content-disposition"], "attachment");
    assert_eq!(
        served["cache-control"],
        "public, max-age=31536000, immutable"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_raw_upload_to_the_bucket_is_stored_with_the_headers_decided() {
    let app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let id = upload(&app, &token, "?filename=p.png", png(1_000)).await;
    let served = stored_headers(&app, &format!("objects/{id}")).await;
    assert_eq!(served["content-type"], "image/png");
    assert_eq!(served["content-disposition"], "inline");
    assert_eq!(served["cache-control"], "private, no-cache");
    app.stop().await;
}

#[tokio::test]
async fn a_direct_upload_keeps_a_non_ascii_name_and_the_object_names_no_file() {
    let app = s3_app(None, vec![]).await;
    let (_, token) = app.new_user().await;
    let text = format!("héllo wörld ☃ {}\n", unique(""));
    let presigned = presign(&app, &token, "résumé\u{202E} 李.txt", text.as_bytes()).await;
    let id = presigned["id"].as_str().unwrap();
    let stored = put(
        &presigned,
        presigned["url"].as_str().unwrap(),
        text.clone().into_bytes(),
    )
    .await;
    assert_eq!(stored.status(), 200);
    let resp = complete(&app, &token, id).await;
    assert_eq!(resp.status(), 201);
    let upload: Value = resp.json().await.unwrap();
    assert_eq!(upload["filename"], "résumé 李.txt", "the override is gone");
    let keys = keys(&app);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let served = stored_headers(&app, &keys[0]).await;
    assert_eq!(served["content-type"], "text/plain; charset=utf-8");
    assert_eq!(served["content-disposition"], "attachment");
    let redirect = content(&app, id, Some(&token)).await;
    let got = follow(&redirect).await;
    assert_eq!(
        got.headers()["content-disposition"],
        "attachment; filename=\"r_sum_ _.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E6%9D%8E.txt"
    );
    assert_eq!(got.text().await.unwrap(), text);
    app.stop().await;
}
