use super::*;

fn hosts(entries: &[&str]) -> AllowedHosts {
    AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn mysql_default_port_and_literal_host() {
    let h = hosts(&["mysql://127.0.0.1"]);
    assert!(h.allows_url("mysql://root@127.0.0.1/db", "mysql"));
    assert!(h.allows_url("mysql://root:p%40ss@127.0.0.1:3306/db", "mysql"));
    assert!(!h.allows_url("mysql://root@127.0.0.1:3307/db", "mysql"));
    assert!(!h.allows_url("mysql://root@10.0.0.1/db", "mysql"));
    assert!(!h.allows_url("postgres://root@127.0.0.1:3306/db", "mysql"));
}

#[test]
fn wildcards() {
    let h = hosts(&["mysql://*.db.internal:*", "*://10.0.0.0/8:3306"]);
    assert!(h.allows_url("mysql://u@a.db.internal:9999/x", "mysql"));
    assert!(!h.allows_url("mysql://u@db.internal/x", "mysql"));
    assert!(h.allows_url("mysql://u@10.1.2.3/x", "mysql"));
    assert!(!h.allows_url("mysql://u@11.1.2.3/x", "mysql"));
    let any = hosts(&["*://*:*"]);
    assert!(any.allows_url("mysql://u@anything:1/x", "mysql"));
}

#[test]
fn entries_with_paths_are_refused() {
    assert!(AllowedHost::parse("mysql://root@127.0.0.1:3306/db").is_err());
    assert!(AllowedHost::parse("127.0.0.1").is_err());
    assert!(AllowedHost::parse("foo://host").is_err());
}
