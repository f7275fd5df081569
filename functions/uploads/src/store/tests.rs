//! The S3 adapter's requests, on a scripted [`OutboundHttp`] fake: what is signed,
//! sent and read back.

use super::*;
use std::cell::RefCell;

/// A request as sent: method, URL and headers.
type Sent = (String, String, Vec<(String, String)>);

/// Records requests and answers each with a scripted reply.
#[derive(Default)]
struct ScriptedHttp {
    sent: RefCell<Vec<Sent>>,
    replies: RefCell<Vec<Reply>>,
}

impl OutboundHttp for &ScriptedHttp {
    fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        _: &[u8],
    ) -> Result<Reply, String> {
        self.sent.borrow_mut().push((
            method.as_str().to_string(),
            url.to_string(),
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        ));
        let mut replies = self.replies.borrow_mut();
        if replies.is_empty() {
            Err("connection refused".into())
        } else {
            Ok(replies.remove(0))
        }
    }
    fn get_streamed(&self, _: &str, _: &mut dyn FnMut(&[u8])) -> Result<Result<(), u16>, String> {
        Err("not scripted".into())
    }
}

fn settings() -> S3Settings {
    S3Settings {
        endpoint: "http://127.0.0.1:9000".into(),
        region: "us-east-1".into(),
        bucket: "uploads".into(),
        access_key: "AKIDEXAMPLE".into(),
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        cdn_base_url: None,
        url_ttl_secs: 900,
    }
}

const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

const TEXT: ServedAs<'static> = ServedAs {
    content_type: "text/plain; charset=utf-8",
    content_disposition: "attachment",
    cache_control: "public, max-age=31536000, immutable",
};

/// The value of `name` among the headers sent, and whether the URL signs it.
fn sent_header(sent: &Sent, name: &str) -> (Option<String>, bool) {
    let value = sent
        .2
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone());
    let signed_headers = sent
        .1
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
        .unwrap_or_default()
        .replace("%3B", ";");
    (value, signed_headers.split(';').any(|h| h == name))
}

#[test]
fn a_copy_replaces_the_metadata_with_the_headers_decided_and_signs_them() {
    let http = ScriptedHttp::default();
    http.replies.borrow_mut().push(Reply {
        status: 200,
        body: b"<CopyObjectResult/>".to_vec(),
        ..Reply::default()
    });
    let store = S3Store::new(&settings(), &http).unwrap();
    store.copy("incoming/a", "objects/b", &TEXT).unwrap();
    let sent = http.sent.borrow()[0].clone();
    for (name, value) in [
        ("x-amz-metadata-directive", "REPLACE"),
        ("content-type", TEXT.content_type),
        ("content-disposition", TEXT.content_disposition),
        ("cache-control", TEXT.cache_control),
    ] {
        assert_eq!(
            sent_header(&sent, name),
            (Some(value.to_string()), true),
            "{name}"
        );
    }
}

#[test]
fn the_components_own_put_stores_the_headers_decided_and_signs_them() {
    let http = ScriptedHttp::default();
    http.replies.borrow_mut().push(Reply {
        status: 200,
        ..Reply::default()
    });
    let store = S3Store::new(&settings(), &http).unwrap();
    store.put("objects/b", b"abc", &TEXT).unwrap();
    let sent = http.sent.borrow()[0].clone();
    for (name, value) in [
        ("content-type", TEXT.content_type),
        ("content-disposition", TEXT.content_disposition),
        ("cache-control", TEXT.cache_control),
        ("content-length", "3"),
    ] {
        assert_eq!(
            sent_header(&sent, name),
            (Some(value.to_string()), true),
            "{name}"
        );
    }
}

#[test]
fn a_presigned_put_signs_the_size_and_checksum_it_hands_out() {
    let http = ScriptedHttp::default();
    let store = S3Store::new(&settings(), &http).unwrap();
    let put = store.presign_put("objects/k", 3, SHA, 1_700_000_000_000);
    assert!(put
        .url
        .starts_with("http://127.0.0.1:9000/uploads/objects/k?"));
    assert!(put.url.contains("X-Amz-Expires=900"));
    assert!(put.url.contains(
        "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256"
    ));
    assert!(
        !put.url.contains("wJalrXUtnFEMI"),
        "the secret never leaves"
    );
    assert_eq!(
        put.headers,
        vec![
            ("content-length", "3".to_string()),
            ("content-type", UNCHECKED_TYPE.to_string()),
            (
                "x-amz-checksum-sha256",
                "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=".to_string()
            )
        ]
    );
    assert_eq!(put.expires_at_ms, 1_700_000_000_000 + 900_000);
}

#[test]
fn a_presigned_get_carries_the_headers_the_file_is_served_with() {
    let http = ScriptedHttp::default();
    let store = S3Store::new(&settings(), &http).unwrap();
    let url = store.presign_get(
        "objects/k",
        &ServedAs {
            content_type: "image/png",
            content_disposition: "inline; filename=\"a.png\"",
            cache_control: "private, no-cache",
        },
        1_700_000_000_000,
    );
    assert!(url.contains("X-Amz-Expires=900"));
    assert!(url.contains("response-content-type=image%2Fpng"));
    assert!(url.contains("response-cache-control=private%2C%20no-cache"));
    assert!(url.contains("response-content-disposition=inline"));
}

#[test]
fn head_reads_size_and_the_stores_checksum() {
    let http = ScriptedHttp::default();
    http.replies.borrow_mut().push(Reply {
        status: 200,
        headers: vec![
            ("content-length".into(), "3".into()),
            (
                "x-amz-checksum-sha256".into(),
                "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=".into(),
            ),
        ],
        body: vec![],
    });
    let store = S3Store::new(&settings(), &http).unwrap();
    assert_eq!(
        store.head("k").unwrap(),
        Some(ObjectHead {
            size: 3,
            sha256: Some(SHA.to_string())
        })
    );
}

#[test]
fn a_missing_object_is_none_and_deleting_it_succeeds() {
    let http = ScriptedHttp::default();
    for _ in 0..2 {
        http.replies.borrow_mut().push(Reply {
            status: 404,
            ..Reply::default()
        });
    }
    let store = S3Store::new(&settings(), &http).unwrap();
    assert_eq!(store.head("k").unwrap(), None);
    store.delete("k").unwrap();
    assert_eq!(http.sent.borrow()[1].0, "DELETE");
}

#[test]
fn an_unreachable_or_refusing_store_is_503() {
    let http = ScriptedHttp::default();
    http.replies.borrow_mut().push(Reply {
        status: 403,
        ..Reply::default()
    });
    let store = S3Store::new(&settings(), &http).unwrap();
    assert_eq!(store.put("k", b"abc", &TEXT).unwrap_err().status(), 503);
    let err = store.head("k").unwrap_err();
    assert_eq!(err.status(), 503);
}

#[test]
fn a_copy_is_a_signed_put_naming_its_source() {
    let http = ScriptedHttp::default();
    for body in [
        &b"<CopyObjectResult/>"[..],
        b"<Error><Code>InternalError</Code></Error>",
    ] {
        http.replies.borrow_mut().push(Reply {
            status: 200,
            body: body.to_vec(),
            ..Reply::default()
        });
    }
    let store = S3Store::new(&settings(), &http).unwrap();
    store.copy("incoming/a b", "objects/c", &TEXT).unwrap();
    let sent = http.sent.borrow()[0].clone();
    assert_eq!(sent.0, "PUT");
    assert!(sent.1.contains("/uploads/objects/c?"), "{}", sent.1);
    assert!(sent.1.contains("x-amz-copy-source"), "signed: {}", sent.1);
    assert!(sent
        .2
        .contains(&("x-amz-copy-source".into(), "/uploads/incoming/a%20b".into())));
    // S3 can fail a copy in a 200's body.
    assert_eq!(store.copy("a", "b", &TEXT).unwrap_err().status(), 503);
}

#[test]
fn a_ranged_read_asks_for_exactly_the_prefix() {
    let http = ScriptedHttp::default();
    http.replies.borrow_mut().push(Reply {
        status: 206,
        body: b"abcd".to_vec(),
        ..Reply::default()
    });
    let store = S3Store::new(&settings(), &http).unwrap();
    assert_eq!(store.read_prefix("k", 4).unwrap(), b"abcd");
    let sent = http.sent.borrow();
    assert_eq!(
        sent[0].2,
        vec![("range".to_string(), "bytes=0-3".to_string())]
    );
    assert!(
        sent[0].1.contains("range"),
        "the range is signed: {}",
        sent[0].1
    );
}
