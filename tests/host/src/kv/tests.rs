use super::*;

#[test]
fn logged_urls_lose_their_credentials() {
    assert_eq!(
        without_credentials("redis://:s3cret@127.0.0.1:6379/0"),
        "redis://***@127.0.0.1:6379/0"
    );
    assert_eq!(
        without_credentials("redis://user:s3cret@h:1"),
        "redis://***@h:1"
    );
    assert_eq!(
        without_credentials("redis://127.0.0.1:6379/"),
        "redis://127.0.0.1:6379/"
    );
}

#[tokio::test]
async fn the_summary_of_a_redis_store_has_no_password() {
    let kv = KvBackend::redis("redis://:s3cret@127.0.0.1:6379/", "p:").unwrap();
    assert!(!kv.summary().contains("s3cret"));
}
