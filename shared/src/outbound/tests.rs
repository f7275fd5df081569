use super::*;

#[test]
fn a_header_is_found_whatever_the_case_of_its_name() {
    let reply = Reply {
        status: 200,
        headers: vec![("x-amz-checksum-sha256".into(), "abc=".into())],
        body: Vec::new(),
    };
    assert_eq!(reply.header("X-Amz-Checksum-SHA256"), Some("abc="));
    assert_eq!(reply.header("etag"), None);
}
