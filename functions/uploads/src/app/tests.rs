//! Unit tests of the handlers, over the in-memory key-value store and repository.

use sha2::{Digest, Sha256};

use super::*;
use crate::config::{S3Settings, Storage};
use crate::model::{Content, MAX_PENDING_PER_USER};
use crate::repo::MemoryUploads;
use crate::store::MemoryStore;
use shared::auth::Role;
use shared::kv::MemoryKv;
use shared::testing::{token_config, NOW};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
const ALICE: &str = "a0000000000000000000000000000001";
const BOB: &str = "b0000000000000000000000000000002";
const ADMIN: &str = "c0000000000000000000000000000003";

struct World {
    config: Config,
    kv: MemoryKv,
    repo: MemoryUploads,
    /// The bucket, in an S3 world.
    store: Option<MemoryStore>,
}

fn world() -> World {
    World {
        config: Config {
            tokens: token_config(),
            max_upload_bytes: 1000,
            cache_ttl_secs: 300,
            quota_bytes: 10_000,
            storage: crate::config::Storage::Database,
        },
        kv: MemoryKv::new(),
        repo: MemoryUploads::default(),
        store: None,
    }
}

/// A world with `upload_storage = s3` and, if given, a CDN for public content.
fn s3_world(cdn: Option<&str>) -> World {
    let mut w = world();
    w.config.storage = Storage::S3(S3Settings {
        endpoint: "http://127.0.0.1:9000".into(),
        region: "us-east-1".into(),
        bucket: "uploads".into(),
        access_key: "access".into(),
        secret_key: "secret".into(),
        cdn_base_url: cdn.map(str::to_string),
        url_ttl_secs: 300,
    });
    w.store = Some(MemoryStore::default());
    w
}

impl World {
    fn token(&self, user: &str) -> String {
        let role = if user == ADMIN {
            Role::Admin
        } else {
            Role::User
        };
        shared::testing::token(user, role, "s", NOW)
    }

    fn send(&self, req: Request) -> Response {
        let ctx = RequestContext::new(&req, NOW);
        let ports = Ports {
            kv: &self.kv,
            repo: &self.repo,
            store: self.store.as_ref().map(|s| s as &dyn ObjectStore),
        };
        ctx.finish(handle(&ctx, &req, &self.config, &ports))
    }

    fn upload_raw(
        &self,
        user: &str,
        query: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response {
        let mut req = Request::new(Method::Post, &format!("/api/v1/uploads{query}"))
            .with_header("authorization", &format!("Bearer {}", self.token(user)));
        if let Some(ct) = content_type {
            req = req.with_header("content-type", ct);
        }
        req.body = body.to_vec();
        self.send(req)
    }

    fn upload_form(&self, user: &str, query: &str, part_headers: &str, data: &[u8]) -> Response {
        let mut body = b"--BOUND\r\n".to_vec();
        body.extend_from_slice(part_headers.as_bytes());
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n--BOUND--\r\n");
        let mut req = Request::new(Method::Post, &format!("/api/v1/uploads{query}"))
            .with_header("authorization", &format!("Bearer {}", self.token(user)))
            .with_header("content-type", "multipart/form-data; boundary=BOUND");
        req.body = body;
        self.send(req)
    }

    /// Uploads `body` for `user` and returns the new id.
    fn stored(&self, user: &str, query: &str, body: &[u8]) -> String {
        let resp = self.upload_raw(user, query, None, body);
        assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
        resp.json_body()["id"].as_str().unwrap().to_string()
    }

    fn get(&self, path: &str, user: Option<&str>) -> Response {
        self.send(self.request(Method::Get, path, user))
    }

    fn request(&self, method: Method, path: &str, user: Option<&str>) -> Request {
        let req = Request::new(method, path);
        match user {
            Some(u) => req.with_header("authorization", &format!("Bearer {}", self.token(u))),
            None => req,
        }
    }
}

fn content_path(id: &str) -> String {
    format!("/api/v1/uploads/{id}/content")
}

// ------------------------------------------------------------------ create

#[test]
fn raw_upload_is_201_with_detected_type_and_stored() {
    let w = world();
    let resp = w.upload_raw(
        ALICE,
        "?filename=pic.png&visibility=public",
        Some("image/png"),
        PNG,
    );
    assert_eq!(resp.status, 201);
    let body = resp.json_body();
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/v1/uploads/{id}").as_str())
    );
    assert_eq!(body["filename"], "pic.png");
    assert_eq!(body["content_type"], "image/png");
    assert_eq!(body["size"], PNG.len());
    assert_eq!(body["sha256"], hex::encode(Sha256::digest(PNG)));
    assert_eq!(body["visibility"], "public");
    assert_eq!(body["created_at"], rfc3339(NOW));
    assert_eq!(body["url"], content_path(id));
    let rows = w.repo.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_id, ALICE);
    assert_eq!(w.repo.blob_count(), 1);
}

#[test]
fn visibility_defaults_to_private() {
    let w = world();
    let resp = w.upload_raw(ALICE, "", None, b"hello");
    assert_eq!(resp.json_body()["visibility"], "private");
    assert_eq!(resp.json_body()["filename"], "upload.txt");
    assert_eq!(
        resp.json_body()["content_type"],
        "text/plain; charset=utf-8"
    );
}

#[test]
fn unknown_visibility_is_400_validation_failed() {
    let w = world();
    let resp = w.upload_raw(ALICE, "?visibility=world", None, b"hello");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json_body()["code"], "validation_failed");
    assert_eq!(resp.json_body()["errors"][0]["field"], "visibility");
    assert!(w.repo.rows().is_empty());
}

#[test]
fn upload_without_token_is_401() {
    let w = world();
    let mut req = Request::new(Method::Post, "/api/v1/uploads");
    req.body = PNG.to_vec();
    let resp = w.send(req);
    assert_eq!(resp.status, 401);
    assert!(w.repo.rows().is_empty());
}

#[test]
fn empty_body_is_400() {
    let w = world();
    let resp = w.upload_raw(ALICE, "", Some("image/png"), b"");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json_body()["code"], "bad_request");
}

#[test]
fn executable_is_415() {
    let w = world();
    for exe in [
        &b"\x7fELF\x02\x01\x01\0\0\0\0\0"[..],
        b"MZ\x90\0\x03\0\0\0\x04\0",
    ] {
        let resp = w.upload_raw(ALICE, "", Some("application/octet-stream"), exe);
        assert_eq!(resp.status, 415);
        assert_eq!(resp.json_body()["code"], "unsupported_media_type");
    }
    assert!(w.repo.rows().is_empty());
}

#[test]
fn png_declared_as_pdf_is_415() {
    let w = world();
    let resp = w.upload_raw(ALICE, "", Some("application/pdf"), PNG);
    assert_eq!(resp.status, 415);
    assert_eq!(w.repo.blob_count(), 0);
}

#[test]
fn filename_extension_contradicting_the_bytes_is_415() {
    let w = world();
    assert_eq!(
        w.upload_raw(ALICE, "?filename=doc.pdf", None, PNG).status,
        415
    );
    assert_eq!(
        w.upload_raw(ALICE, "?filename=page.html", None, b"<b>hi</b>")
            .status,
        415
    );
}

#[test]
fn path_in_filename_is_stripped() {
    let w = world();
    let resp = w.upload_raw(
        ALICE,
        "?filename=..%2F..%2Fetc%2Fpasswd",
        None,
        b"root:x:0:0",
    );
    assert_eq!(resp.status, 201);
    assert_eq!(resp.json_body()["filename"], "passwd");
    assert_eq!(w.repo.rows()[0].filename, "passwd");
}

#[test]
fn raw_body_at_the_limit_is_accepted_and_one_byte_more_is_413() {
    let w = world();
    let at_limit = vec![b'a'; 1000];
    assert_eq!(w.upload_raw(ALICE, "", None, &at_limit).status, 201);
    let over = vec![b'a'; 1001];
    let resp = w.upload_raw(ALICE, "", None, &over);
    assert_eq!(resp.status, 413);
    assert_eq!(resp.json_body()["code"], "payload_too_large");
}

#[test]
fn body_limit_leaves_room_for_multipart_framing() {
    assert_eq!(Config::body_limit(1000), 1000 + MULTIPART_ALLOWANCE);
    assert_eq!(Config::body_limit(usize::MAX), usize::MAX);
}

#[test]
fn multipart_upload_takes_filename_and_type_from_the_part() {
    let w = world();
    let resp = w.upload_form(
        ALICE,
        "",
        "Content-Disposition: form-data; name=\"file\"; filename=\"C:\\\\tmp\\\\scan.pdf\"\r\nContent-Type: application/pdf",
        PDF,
    );
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.json_body()["filename"], "scan.pdf");
    assert_eq!(resp.json_body()["content_type"], "application/pdf");
    assert_eq!(resp.json_body()["size"], PDF.len());
}

#[test]
fn query_filename_wins_over_the_part_filename() {
    let w = world();
    let resp = w.upload_form(
        ALICE,
        "?filename=mine.png",
        "Content-Disposition: form-data; name=\"file\"; filename=\"theirs.png\"",
        PNG,
    );
    assert_eq!(resp.json_body()["filename"], "mine.png");
}

#[test]
fn multipart_part_type_contradicting_the_bytes_is_415() {
    let w = world();
    let resp = w.upload_form(
        ALICE,
        "",
        "Content-Disposition: form-data; name=\"file\"\r\nContent-Type: application/pdf",
        PNG,
    );
    assert_eq!(resp.status, 415);
}

#[test]
fn multipart_file_over_the_limit_is_413() {
    let w = world();
    let resp = w.upload_form(
        ALICE,
        "",
        "Content-Disposition: form-data; name=\"file\"",
        &[b'a'; 1001],
    );
    assert_eq!(resp.status, 413);
}

#[test]
fn multipart_without_file_part_is_400() {
    let w = world();
    let resp = w.upload_form(
        ALICE,
        "",
        "Content-Disposition: form-data; name=\"other\"",
        b"x",
    );
    assert_eq!(resp.status, 400);
}

// That the same content from two users is stored once is the repository's
// doing, not the handlers': see crate::sql::tests's
// `same_content_from_two_users_is_stored_once` (the statements) and
// tests/api/tests/upload_suite's
// `same_file_from_two_users_is_stored_once_and_outlives_one_delete` (MariaDB).

#[test]
fn unavailable_database_is_503() {
    let mut w = world();
    w.repo.fail_with = Some(ApiError::Unavailable("db down".into()));
    let resp = w.upload_raw(ALICE, "", None, b"hello");
    assert_eq!(resp.status, 503);
    assert!(resp.header("retry-after").is_some());
}

// ------------------------------------------------------------------ list and get

#[test]
fn list_shows_own_uploads_newest_first_with_paging() {
    let w = world();
    let first = w.stored(ALICE, "", b"one");
    let second = w.stored(ALICE, "", b"two");
    w.stored(BOB, "", b"three");
    let resp = w.get("/api/v1/uploads?limit=1", Some(ALICE));
    assert_eq!(resp.status, 200);
    let body = resp.json_body();
    assert_eq!(body["total"], 2);
    assert_eq!(body["limit"], 1);
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    // Same millisecond: the id breaks the tie, and ids are random, so check membership.
    let page2 = w
        .get("/api/v1/uploads?limit=1&page=2", Some(ALICE))
        .json_body();
    let mut seen = vec![
        body["items"][0]["id"].clone(),
        page2["items"][0]["id"].clone(),
    ];
    seen.sort_by_key(|v| v.to_string());
    let mut want = vec![serde_json::json!(first), serde_json::json!(second)];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(seen, want);
}

#[test]
fn list_with_bad_paging_is_400() {
    let w = world();
    assert_eq!(w.get("/api/v1/uploads?limit=0", Some(ALICE)).status, 400);
}

#[test]
fn metadata_is_for_owner_and_admin_only() {
    let w = world();
    let id = w.stored(ALICE, "?visibility=public", PNG);
    let path = format!("/api/v1/uploads/{id}");
    assert_eq!(w.get(&path, Some(ALICE)).status, 200);
    assert_eq!(w.get(&path, Some(ADMIN)).status, 200);
    assert_eq!(w.get(&path, Some(BOB)).status, 404);
    assert_eq!(w.get(&path, None).status, 401);
}

#[test]
fn malformed_id_is_404() {
    let w = world();
    assert_eq!(w.get("/api/v1/uploads/..%2Fetc", Some(ALICE)).status, 404);
    assert_eq!(w.get(&content_path("nope"), None).status, 404);
}

#[test]
fn metadata_is_cached_and_served_from_the_cache() {
    let mut w = world();
    let id = w.stored(ALICE, "", PNG);
    let path = format!("/api/v1/uploads/{id}");
    assert_eq!(w.get(&path, Some(ALICE)).status, 200);
    assert!(w.kv.contains(&format!("up:{id}")));
    w.repo.fail_with = Some(ApiError::Unavailable("db down".into()));
    assert_eq!(w.get(&path, Some(ALICE)).status, 200);
}

#[test]
fn unknown_route_is_404_and_wrong_method_405() {
    let w = world();
    assert_eq!(w.get("/api/v1/uploads/x/y/z", Some(ALICE)).status, 404);
    let resp = w.send(w.request(Method::Put, "/api/v1/uploads", Some(ALICE)));
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST, GET"));
}

// ------------------------------------------------------------------ content

#[test]
fn public_content_is_served_to_anyone_with_cdn_headers() {
    let w = world();
    let id = w.stored(ALICE, "?visibility=public&filename=pic.png", PNG);
    let resp = w.get(&content_path(&id), None);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, PNG);
    let sha = hex::encode(Sha256::digest(PNG));
    assert_eq!(resp.header("content-type"), Some("image/png"));
    assert_eq!(
        resp.header("content-length"),
        Some(PNG.len().to_string().as_str())
    );
    assert_eq!(resp.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(resp.header("cache-control"), Some(PUBLIC_CACHE_CONTROL));
    assert_eq!(
        resp.header("content-disposition"),
        Some("inline; filename=\"pic.png\"")
    );
}

#[test]
fn public_content_with_an_invalid_token_is_401() {
    let w = world();
    let id = w.stored(ALICE, "?visibility=public", PNG);
    let req =
        Request::new(Method::Get, &content_path(&id)).with_header("authorization", "Bearer junk");
    assert_eq!(w.send(req).status, 401);
}

#[test]
fn a_bad_token_is_401_on_every_route_before_any_lookup() {
    // A repository that fails every call: reaching it would answer 503.
    let mut w = world();
    w.repo.fail_with = Some(ApiError::Unavailable("db".into()));
    let id = "d".repeat(32);
    for (method, path) in [
        (Method::Post, "/api/v1/uploads".to_string()),
        (Method::Get, "/api/v1/uploads".to_string()),
        (Method::Get, format!("/api/v1/uploads/{id}")),
        (Method::Get, content_path(&id)),
        (Method::Delete, format!("/api/v1/uploads/{id}")),
    ] {
        let req = Request::new(method.clone(), &path).with_header("authorization", "Bearer junk");
        let resp = w.send(req);
        assert_eq!(resp.status, 401, "{method:?} {path}");
        assert_eq!(resp.json_body()["code"], "invalid_token");
    }
    assert!(w.kv.keys().is_empty());
}

#[test]
fn admission_needs_only_the_head() {
    let w = world();
    let head = Request::new(Method::Post, "/api/v1/uploads");
    let ctx = RequestContext::new(&head, NOW);
    assert_eq!(
        admit(&ctx, &head, &w.config, &w.kv).unwrap_err(),
        ApiError::InvalidToken
    );
    let head = head.with_header("authorization", &format!("Bearer {}", w.token(ALICE)));
    assert!(admit(&ctx, &head, &w.config, &w.kv).is_ok());
}

#[test]
fn unknown_ids_leave_no_key_in_the_store() {
    let w = world();
    for i in 0..50 {
        let id = format!("{i:032x}");
        assert_eq!(w.get(&content_path(&id), None).status, 404);
        assert_eq!(
            w.get(&format!("/api/v1/uploads/{id}"), Some(ALICE)).status,
            404
        );
    }
    assert!(w.kv.keys().is_empty());
}

#[test]
fn an_upload_past_the_quota_is_409_and_stores_nothing() {
    let mut w = world();
    w.config.quota_bytes = 30;
    w.stored(ALICE, "", &[b'a'; 20]);
    let resp = w.upload_raw(ALICE, "", None, &[b'b'; 11]);
    assert_eq!(resp.status, 409);
    assert_eq!(resp.json_body()["code"], "quota_exceeded");
    assert_eq!(w.repo.rows().len(), 1);
    assert_eq!(w.repo.blob_count(), 1);
    // Exactly up to the quota is fine, and the quota is per user.
    w.stored(ALICE, "", &[b'c'; 10]);
    w.stored(BOB, "", &[b'b'; 30]);
}

#[test]
fn a_file_larger_than_the_whole_quota_is_409() {
    let mut w = world();
    w.config.quota_bytes = 5;
    let resp = w.upload_raw(ALICE, "", None, b"123456");
    assert_eq!(resp.status, 409);
    assert!(w.repo.rows().is_empty());
}

#[test]
fn without_a_filename_the_name_is_upload_with_the_type_s_extension() {
    let w = world();
    let resp = w.upload_raw(ALICE, "", None, PNG);
    assert_eq!(resp.status, 201);
    assert_eq!(resp.json_body()["filename"], "upload.png");
    let resp = w.upload_raw(ALICE, "?filename=..%2F", None, PDF);
    assert_eq!(resp.json_body()["filename"], "upload.pdf");
}

#[test]
fn text_named_as_a_shortcut_page_or_svg_is_415() {
    let w = world();
    for name in ["a.url", "page.html", "x.svg", "x.exe"] {
        let resp = w.upload_raw(
            ALICE,
            &format!("?filename={name}"),
            None,
            b"[InternetShortcut]\r\nURL=file:///etc/passwd\r\n",
        );
        assert_eq!(resp.status, 415, "{name}");
    }
    assert!(w.repo.rows().is_empty());
}

#[test]
fn private_content_is_404_for_others_and_anonymous() {
    let w = world();
    let id = w.stored(ALICE, "", b"secret");
    assert_eq!(w.get(&content_path(&id), Some(BOB)).status, 404);
    assert_eq!(w.get(&content_path(&id), None).status, 404);
}

#[test]
fn private_content_with_a_bad_token_is_401() {
    let w = world();
    let id = w.stored(ALICE, "", b"secret");
    let req =
        Request::new(Method::Get, &content_path(&id)).with_header("authorization", "Bearer junk");
    assert_eq!(w.send(req).status, 401);
}

#[test]
fn private_content_is_served_to_owner_and_admin_as_private_attachment() {
    let w = world();
    let id = w.stored(ALICE, "?filename=n%C3%B6tes.txt", b"secret");
    for who in [ALICE, ADMIN] {
        let resp = w.get(&content_path(&id), Some(who));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"secret");
        assert_eq!(resp.header("cache-control"), Some(PRIVATE_CACHE_CONTROL));
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            resp.header("content-disposition"),
            Some("attachment; filename=\"n_tes.txt\"; filename*=UTF-8''n%C3%B6tes.txt")
        );
    }
}

#[test]
fn matching_if_none_match_is_304_without_body() {
    let w = world();
    let id = w.stored(ALICE, "?visibility=public", PNG);
    let sha = hex::encode(Sha256::digest(PNG));
    let req = Request::new(Method::Get, &content_path(&id))
        .with_header("if-none-match", &format!("W/\"other\", \"{sha}\""));
    let resp = w.send(req);
    assert_eq!(resp.status, 304);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(resp.header("cache-control"), Some(PUBLIC_CACHE_CONTROL));
    let stale =
        Request::new(Method::Get, &content_path(&id)).with_header("if-none-match", "\"other\"");
    assert_eq!(w.send(stale).status, 200);
}

#[test]
fn revalidation_needs_no_database_once_metadata_is_cached() {
    let mut w = world();
    let id = w.stored(ALICE, "?visibility=public", PNG);
    assert_eq!(w.get(&content_path(&id), None).status, 200);
    w.repo.fail_with = Some(ApiError::Unavailable("db down".into()));
    let sha = hex::encode(Sha256::digest(PNG));
    let req = Request::new(Method::Get, &content_path(&id))
        .with_header("if-none-match", &format!("\"{sha}\""));
    assert_eq!(w.send(req).status, 304);
}

#[test]
fn private_304_still_requires_the_owner() {
    let w = world();
    let id = w.stored(ALICE, "", b"secret");
    let sha = hex::encode(Sha256::digest(b"secret"));
    let req = w
        .request(Method::Get, &content_path(&id), Some(BOB))
        .with_header("if-none-match", &format!("\"{sha}\""));
    assert_eq!(w.send(req).status, 404);
}

#[test]
fn head_of_content_has_headers_but_no_body() {
    let w = world();
    let id = w.stored(ALICE, "?visibility=public", PNG);
    let resp = w.send(Request::new(Method::Head, &content_path(&id)));
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    assert!(resp.header("etag").is_some());
}

// ------------------------------------------------------------------ delete

#[test]
fn owner_deletes_with_204_and_the_cache_entry_goes() {
    let w = world();
    let id = w.stored(ALICE, "", PNG);
    assert_eq!(
        w.get(&format!("/api/v1/uploads/{id}"), Some(ALICE)).status,
        200
    );
    let resp = w.send(w.request(
        Method::Delete,
        &format!("/api/v1/uploads/{id}"),
        Some(ALICE),
    ));
    assert_eq!(resp.status, 204);
    assert!(w.repo.rows().is_empty());
    assert_eq!(w.repo.blob_count(), 0);
    assert!(!w.kv.contains(&format!("up:{id}")));
    assert_eq!(w.get(&content_path(&id), Some(ALICE)).status, 404);
}

#[test]
fn others_cannot_delete_but_admin_can() {
    let w = world();
    let id = w.stored(ALICE, "?visibility=public", PNG);
    let path = format!("/api/v1/uploads/{id}");
    assert_eq!(
        w.send(w.request(Method::Delete, &path, Some(BOB))).status,
        404
    );
    assert_eq!(w.repo.rows().len(), 1);
    assert_eq!(
        w.send(w.request(Method::Delete, &path, Some(ADMIN))).status,
        204
    );
    assert_eq!(
        w.send(w.request(Method::Delete, &path, Some(ADMIN))).status,
        404
    );
}

#[test]
fn deleting_one_of_two_identical_uploads_keeps_the_other_content() {
    let w = world();
    let a = w.stored(ALICE, "?visibility=public", PNG);
    let b = w.stored(BOB, "?visibility=public", PNG);
    assert_eq!(
        w.send(w.request(Method::Delete, &format!("/api/v1/uploads/{a}"), Some(ALICE)))
            .status,
        204
    );
    assert_eq!(w.repo.blob_count(), 1);
    let resp = w.get(&content_path(&b), None);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, PNG);
    assert_eq!(w.get(&content_path(&a), None).status, 404);
}

// ------------------------------------------------------------------ S3 storage

impl World {
    fn bucket(&self) -> &MemoryStore {
        self.store.as_ref().expect("an S3 world")
    }

    fn post_json(&self, path: &str, user: &str, body: serde_json::Value) -> Response {
        self.send(
            self.request(Method::Post, path, Some(user))
                .with_json(&body),
        )
    }

    /// Announces `bytes` as `filename` and returns the presign answer.
    fn presign(&self, user: &str, filename: &str, bytes: &[u8]) -> Response {
        self.post_json(
            "/api/v1/uploads/presign",
            user,
            serde_json::json!({
                "filename": filename,
                "size": bytes.len(),
                "sha256": hex::encode(Sha256::digest(bytes)),
            }),
        )
    }

    fn complete(&self, user: &str, id: &str) -> Response {
        self.send(self.request(
            Method::Post,
            &format!("/api/v1/uploads/{id}/complete"),
            Some(user),
        ))
    }

    /// Presigns `announced`, puts `sent` as the client would, and completes.
    fn direct(
        &self,
        user: &str,
        filename: &str,
        announced: &[u8],
        sent: &[u8],
    ) -> (String, Response) {
        let presigned = self.presign(user, filename, announced);
        assert_eq!(
            presigned.status,
            200,
            "{}",
            String::from_utf8_lossy(&presigned.body)
        );
        let id = presigned.json_body()["id"].as_str().unwrap().to_string();
        self.bucket().client_put(&format!("incoming/{id}"), sent);
        let completed = self.complete(user, &id);
        (id, completed)
    }
}

#[test]
fn presign_answers_a_put_bound_to_size_and_checksum_and_reserves_the_quota() {
    let w = s3_world(None);
    let resp = w.presign(ALICE, "pic.png", PNG);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.json_body();
    let id = body["id"].as_str().unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["url"], format!("memory://put/incoming/{id}"));
    assert_eq!(body["headers"]["content-length"], PNG.len().to_string());
    assert!(body["headers"]["x-amz-checksum-sha256"].is_string());
    assert_eq!(
        body["complete_url"],
        format!("/api/v1/uploads/{id}/complete")
    );
    let pending = w.repo.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].size, PNG.len() as u64);
    assert!(w.repo.rows().is_empty(), "nothing is live before complete");
}

#[test]
fn presign_checks_every_field_at_once() {
    let w = s3_world(None);
    let resp = w.post_json(
        "/api/v1/uploads/presign",
        ALICE,
        serde_json::json!({"size": 0, "sha256": "abc", "visibility": "world"}),
    );
    assert_eq!(resp.status, 400);
    let fields: Vec<String> = resp.json_body()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, ["size", "sha256", "visibility"]);
    assert!(w.repo.pending().is_empty());
}

#[test]
fn presign_of_a_name_no_accepted_type_has_is_415() {
    let w = s3_world(None);
    let resp = w.presign(ALICE, "setup.exe", PNG);
    assert_eq!(resp.status, 415);
    assert!(w.repo.pending().is_empty());
}

#[test]
fn presign_past_the_quota_is_409_and_pending_uploads_count() {
    let w = s3_world(None);
    let big = vec![b'a'; 6_000];
    assert_eq!(w.presign(ALICE, "a.txt", &big).status, 200);
    let resp = w.presign(ALICE, "b.txt", &big);
    assert_eq!(resp.status, 409);
    assert_eq!(resp.json_body()["code"], "quota_exceeded");
}

#[test]
fn announcements_past_the_per_user_cap_are_429_until_one_expires() {
    let w = s3_world(None);
    for i in 0..MAX_PENDING_PER_USER {
        let resp = w.presign(ALICE, "a.txt", format!("file {i}").as_bytes());
        assert_eq!(resp.status, 200);
    }
    let resp = w.presign(ALICE, "a.txt", b"one more");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.json_body()["code"], "too_many_attempts");
    let retry: i64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(retry, (300_000 + COMPLETE_GRACE_MS) / 1000);
    // Another user is not held back.
    assert_eq!(w.presign(BOB, "a.txt", b"bob's").status, 200);
}

#[test]
fn direct_routes_without_s3_storage_are_409() {
    let w = world();
    let resp = w.presign(ALICE, "pic.png", PNG);
    assert_eq!(resp.status, 409);
    assert_eq!(resp.json_body()["code"], "invalid_state");
    assert_eq!(w.complete(ALICE, &"a".repeat(32)).status, 409);
}

#[test]
fn complete_checks_the_object_and_makes_the_upload_live() {
    let w = s3_world(None);
    let (id, resp) = w.direct(ALICE, "pic.png", PNG, PNG);
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let body = resp.json_body();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["content_type"], "image/png");
    assert_eq!(body["size"], PNG.len());
    assert!(w.repo.pending().is_empty());
    assert_eq!(w.repo.rows()[0].id, id);
    let sha = hex::encode(Sha256::digest(PNG));
    // Served from a copy under a key of its own; the client's object is gone.
    let Some(Content::Object(key)) = w.repo.blob(&sha) else {
        panic!("a blob in the bucket")
    };
    assert!(key.starts_with("objects/") && !key.ends_with(&id), "{key}");
    assert_eq!(w.bucket().keys(), vec![key.clone()]);
    assert_eq!(w.bucket().get(&key).unwrap(), PNG);
    // A retry after a lost answer gets the same answer.
    assert_eq!(w.complete(ALICE, &id).json_body()["id"], id.as_str());
}

#[test]
fn complete_before_the_put_is_409_and_keeps_the_announcement() {
    let w = s3_world(None);
    let id = w.presign(ALICE, "pic.png", PNG).json_body()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = w.complete(ALICE, &id);
    assert_eq!(resp.status, 409);
    assert_eq!(resp.json_body()["code"], "invalid_state");
    assert_eq!(w.repo.pending().len(), 1);
}

#[test]
fn other_bytes_than_announced_are_refused_and_deleted() {
    let w = s3_world(None);
    let mut other = PNG.to_vec();
    other[10] ^= 1;
    let (id, resp) = w.direct(ALICE, "pic.png", PNG, &other);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json_body()["code"], "bad_request");
    assert!(
        w.bucket().keys().is_empty(),
        "{id}: {:?}",
        w.bucket().keys()
    );
    assert!(w.repo.pending().is_empty());
    assert!(w.repo.rows().is_empty());

    let (id, resp) = w.direct(ALICE, "pic.png", PNG, &PNG[..10]);
    assert_eq!(resp.status, 400, "a shorter file");
    assert!(w.bucket().keys().is_empty(), "{id}");
}

#[test]
fn bytes_put_after_complete_are_never_served() {
    let w = s3_world(None);
    let (id, resp) = w.direct(ALICE, "pic.png", PNG, PNG);
    assert_eq!(resp.status, 201);
    // The presigned URL is still valid: the client puts an executable.
    w.bucket()
        .client_put(&format!("incoming/{id}"), b"MZ\x90\0\x03\0\0\0");
    let sha = hex::encode(Sha256::digest(PNG));
    let Some(Content::Object(key)) = w.repo.blob(&sha) else {
        panic!("a blob in the bucket")
    };
    assert_eq!(w.bucket().get(&key).unwrap(), PNG);
    let resp = w.get(&content_path(&id), Some(ALICE));
    assert_eq!(
        resp.header("location"),
        Some(format!("memory://get/{key}").as_str())
    );
}

#[test]
fn a_store_without_checksums_is_checked_by_reading_the_object() {
    let mut w = s3_world(None);
    w.store = Some(MemoryStore::without_checksums());
    let mut other = PNG.to_vec();
    other[12] ^= 1;
    assert_eq!(w.direct(ALICE, "pic.png", PNG, &other).1.status, 400);
    assert_eq!(w.direct(ALICE, "pic.png", PNG, PNG).1.status, 201);
}

#[test]
fn a_disguised_executable_is_415_and_deleted() {
    let w = s3_world(None);
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff";
    let (_, resp) = w.direct(ALICE, "holiday.png", exe, exe);
    assert_eq!(resp.status, 415);
    assert!(w.bucket().keys().is_empty());
    let (_, resp) = w.direct(ALICE, "notes.txt", PNG, PNG);
    assert_eq!(resp.status, 415, "a PNG named .txt");
    assert!(w.bucket().keys().is_empty());
}

#[test]
fn long_text_is_read_whole_and_bounded_by_the_upload_limit() {
    let mut w = s3_world(None);
    w.config.max_upload_bytes = 200_000;
    w.config.quota_bytes = 1_000_000;
    let mut text = "line of text\n".repeat(6_000).into_bytes();
    assert_eq!(w.direct(ALICE, "a.txt", &text, &text).1.status, 201);
    text.extend_from_slice(b"\0binary tail");
    assert_eq!(w.direct(ALICE, "b.txt", &text, &text).1.status, 415);
    w.config.max_upload_bytes = 70_000;
    let text = "x".repeat(80_000).into_bytes();
    assert_eq!(w.direct(ALICE, "c.txt", &text, &text).1.status, 413);
}

#[test]
fn only_the_owner_completes() {
    let w = s3_world(None);
    let id = w.presign(ALICE, "pic.png", PNG).json_body()["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.bucket().client_put(&format!("incoming/{id}"), PNG);
    assert_eq!(w.complete(BOB, &id).status, 404);
    assert_eq!(w.complete(ALICE, &id).status, 201);
}

#[test]
fn the_same_content_twice_shares_one_object() {
    let w = s3_world(None);
    let (first, resp) = w.direct(ALICE, "a.png", PNG, PNG);
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let only = w.bucket().keys();
    let (second, resp) = w.direct(BOB, "b.png", PNG, PNG);
    assert_eq!(resp.status, 201);
    assert_eq!(only.len(), 1);
    assert_eq!(w.bucket().keys(), only);
    // Deleting one keeps the object; deleting the other removes it.
    let del = |user: &str, id: &str| {
        w.send(w.request(Method::Delete, &format!("/api/v1/uploads/{id}"), Some(user)))
    };
    assert_eq!(del(ALICE, &first).status, 204);
    assert_eq!(w.bucket().keys().len(), 1);
    assert_eq!(del(BOB, &second).status, 204);
    assert!(w.bucket().keys().is_empty());
}

#[test]
fn raw_uploads_go_to_the_bucket_once_per_content() {
    let w = s3_world(None);
    let a = w.stored(ALICE, "?filename=a.png", PNG);
    let b = w.stored(BOB, "?filename=b.png", PNG);
    assert_eq!(w.bucket().keys(), vec![format!("objects/{a}")]);
    assert_eq!(w.bucket().get(&format!("objects/{a}")).unwrap(), PNG);
    assert_ne!(a, b);
}

#[test]
fn content_in_the_bucket_redirects_to_a_presigned_get_for_the_owner_only() {
    let w = s3_world(None);
    let id = w.stored(ALICE, "?filename=a.png", PNG);
    let resp = w.get(&content_path(&id), Some(ALICE));
    assert_eq!(resp.status, 302);
    assert_eq!(
        resp.header("location"),
        Some(format!("memory://get/objects/{id}").as_str())
    );
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(
        resp.header("etag"),
        Some(format!("\"{}\"", hex::encode(Sha256::digest(PNG))).as_str())
    );
    assert_eq!(w.get(&content_path(&id), Some(ADMIN)).status, 302);
    assert_eq!(w.get(&content_path(&id), Some(BOB)).status, 404);
    assert_eq!(w.get(&content_path(&id), None).status, 404);
}

#[test]
fn public_content_redirects_to_the_cdn_when_one_is_set() {
    let w = s3_world(Some("https://cdn.example.com"));
    let public = w.stored(ALICE, "?filename=a.png&visibility=public", PNG);
    let resp = w.get(&content_path(&public), None);
    assert_eq!(resp.status, 302);
    assert_eq!(
        resp.header("location"),
        Some(format!("https://cdn.example.com/objects/{public}").as_str())
    );
    let private = w.stored(ALICE, "?filename=b.pdf", PDF);
    let resp = w.get(&content_path(&private), Some(ALICE));
    assert!(resp
        .header("location")
        .unwrap()
        .starts_with("memory://get/"));
}

#[test]
fn a_store_that_is_down_is_503_and_stores_nothing() {
    let w = s3_world(None);
    w.bucket()
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let resp = w.upload_raw(ALICE, "?filename=a.png", None, PNG);
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json_body()["code"], "unavailable");
    assert!(w.repo.rows().is_empty());
}

#[test]
fn a_raw_upload_object_is_stored_with_the_headers_decided_naming_no_file() {
    let w = s3_world(None);
    let id = w.stored(ALICE, "?filename=secret-plan.pdf&visibility=public", PDF);
    assert_eq!(
        w.bucket().served(&format!("objects/{id}")),
        Some([
            "application/pdf".to_string(),
            "attachment".to_string(),
            PUBLIC_CACHE_CONTROL.to_string(),
        ])
    );
}

#[test]
fn a_direct_upload_is_served_from_a_copy_with_the_detected_type_not_the_clients() {
    let w = s3_world(None);
    // The client's object carries no headers the component chose (the
    // fake's `client_put`), whatever the client sent with its PUT.
    let (_, resp) = w.direct(
        ALICE,
        "page.txt",
        b"<script>alert(1)</script>",
        b"<script>alert(1)</script>",
    );
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let keys = w.bucket().keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(
        w.bucket().served(&keys[0]),
        Some([
            "text/plain; charset=utf-8".to_string(),
            "attachment".to_string(),
            PRIVATE_CACHE_CONTROL.to_string(),
        ])
    );
}

#[test]
fn presign_signs_a_neutral_content_type_into_the_put() {
    let w = s3_world(None);
    let resp = w.presign(ALICE, "page.txt", b"hello");
    assert_eq!(
        resp.json_body()["headers"]["content-type"],
        "application/octet-stream"
    );
}

#[test]
fn a_small_direct_upload_ending_inside_a_utf8_character_is_not_text() {
    let w = s3_world(None);
    // "é" is C3 A9: the file ends after C3.
    let cut = b"caf\xc3";
    let (_, resp) = w.direct(ALICE, "menu.txt", cut, cut);
    assert_eq!(resp.status, 415, "{}", String::from_utf8_lossy(&resp.body));
    assert!(w.bucket().keys().is_empty());
    assert!(w.repo.rows().is_empty());
}

#[test]
fn a_store_lost_before_the_checked_copy_is_retyped_is_503_and_keeps_the_announcement() {
    let w = s3_world(None);
    w.bucket()
        .refuse_copy_in_place
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (id, resp) = w.direct(ALICE, "pic.png", PNG, PNG);
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json_body()["code"], "unavailable");
    // Nothing live, the checked copy gone, the client's object kept for a retry.
    assert!(w.repo.rows().is_empty());
    assert_eq!(w.repo.pending().len(), 1);
    assert_eq!(w.bucket().keys(), vec![format!("incoming/{id}")]);
    w.bucket()
        .refuse_copy_in_place
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let resp = w.complete(ALICE, &id);
    assert_eq!(resp.status, 201);
    let keys = w.bucket().keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(w.bucket().served(&keys[0]).unwrap()[0], "image/png");
}
