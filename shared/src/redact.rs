//! Keeping secrets out of log lines.
//!
//! The messages of Spin's host interfaces are not written for logs: a MySQL
//! `connection-failed` for an address outside `allowed_outbound_hosts` quotes
//! the whole address (`address mysql://user:password@host/db is not
//! permitted`, Spin 4.0.2), and driver errors can quote URLs too. Every text
//! that reaches a log line from outside the component goes through
//! [`redact`] first, which removes the userinfo (`user:password@`) of every
//! URL in it and masks the value of `password=`-style parameters.

/// The text with the credentials of every URL replaced by `***`
/// (`mysql://root:pw@db:3306/x` → `mysql://***@db:3306/x`) and the value of
/// every `password=`, `pass=`, `pwd=`, `secret=` or `token=` pair masked.
/// Text without a URL or such a pair comes back unchanged.
pub fn redact(text: &str) -> String {
    mask_parameters(&strip_userinfo(text))
}

/// Removes `userinfo@` after every `scheme://`.
fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#', or at anything that
        // cannot be part of a URL in running text (space, quote, bracket).
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | ' ' | '"' | '\'' | '<' | '>' | '`')
                    || c.is_whitespace()
                    || c.is_control()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Parameter names whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &["password", "passwd", "pass", "pwd", "secret", "token"];

/// Masks the value of `key=value` / `key: value` pairs whose key names a secret.
fn mask_parameters(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let matched = SECRET_KEYS.iter().find(|k| {
            lower[i..].starts_with(**k)
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
                && matches!(bytes.get(i + k.len()), Some(b'=') | Some(b':'))
        });
        let Some(key) = matched else {
            i += 1;
            continue;
        };
        let mut start = i + key.len() + 1;
        while bytes.get(start) == Some(&b' ') {
            start += 1;
        }
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | ',' | ';' | ')' | '}' | '"'))
            .map_or(text.len(), |e| start + e);
        if end > start {
            out.push_str(&text[copied..start]);
            out.push_str("***");
            copied = end;
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_userinfo_is_removed() {
        assert_eq!(
            redact("address mysql://root:s3cret@db.example.com:3306/app is not permitted"),
            "address mysql://***@db.example.com:3306/app is not permitted"
        );
        assert_eq!(
            redact("redis://:pw@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
    }

    #[test]
    fn a_password_containing_at_signs_is_removed_whole() {
        assert_eq!(redact("mysql://u:p@ss@h:1/d"), "mysql://***@h:1/d");
    }

    #[test]
    fn several_urls_are_all_redacted() {
        let out = redact("a mysql://a:b@h/x and redis://c:d@i:1 end");
        assert_eq!(out, "a mysql://***@h/x and redis://***@i:1 end");
    }

    #[test]
    fn urls_without_userinfo_are_unchanged() {
        let text = "connect to mysql://db:3306/app failed: Io(refused)";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn password_parameters_are_masked() {
        assert_eq!(
            redact("mysql://h/d?user=a&password=xyz&x=1"),
            "mysql://h/d?user=a&password=***&x=1"
        );
        assert_eq!(redact("Password: hunter2, more"), "Password: ***, more");
        assert_eq!(redact("passwords are fine"), "passwords are fine");
    }
}
