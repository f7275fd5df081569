//! Keeping secrets out of log lines.
//!
//! The messages of Spin's host interfaces are not written for logs: a MySQL
//! `connection-failed` for an address outside `allowed_outbound_hosts` quotes
//! the whole address (`address mysql://user:password@host/db is not
//! permitted`, Spin 4.0.2), and driver errors can quote URLs too. Every text
//! that reaches a log line from outside the component goes through
//! [`redact`] first, which removes the userinfo (`user:password@`) of every
//! URL in it and masks the value of `password=`-style parameters.
//!
//! The text is whatever a server wrote, often quoting what a client sent (a
//! duplicate `zoë@example.com` comes back inside MySQL's message), so it is
//! walked char by char and split only where a search found a boundary:
//! nothing here indexes a `str` by a byte count.

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
    while let Some((before, after)) = rest.split_once("://") {
        out.push_str(before);
        out.push_str("://");
        // The authority ends at the first '/', '?', '#', or at anything that
        // cannot be part of a URL in running text (space, double quote,
        // bracket). Not at `'`: a password may hold one.
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | ' ' | '"' | '<' | '>' | '`')
                    || c.is_whitespace()
                    || c.is_control()
            })
            .unwrap_or(after.len());
        let (authority, tail) = after.split_at(end);
        rest = match authority.rsplit_once('@') {
            Some((_, host)) => {
                out.push_str("***@");
                out.push_str(host);
                tail
            }
            // No userinfo here, but a URL may start right after (`x://mysql://u:p@h`):
            // search again from the authority on.
            None => after,
        };
    }
    out.push_str(rest);
    out
}

/// Parameter names whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &["password", "passwd", "pass", "pwd", "secret", "token"];

/// Masks the value of `key=value` / `key: value` pairs whose key names a secret.
fn mask_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut after_word = false;
    while !rest.is_empty() {
        if !after_word {
            if let Some((key, value, tail)) = secret_pair(rest) {
                out.push_str(key);
                out.push_str("***");
                // The value's last char ends a word: the next key must not
                // be glued to it.
                after_word = value.chars().next_back().is_some_and(is_word_char);
                rest = tail;
                continue;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
            after_word = is_word_char(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Whether `c` continues a parameter name (so `mypassword=` is no key).
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// When `text` starts with a secret key, its separator and a non-empty
/// value: the key with separator and spaces, the value, and what follows.
fn secret_pair(text: &str) -> Option<(&str, &str, &str)> {
    SECRET_KEYS.iter().find_map(|key| {
        let (name, after_name) = text.split_at_checked(key.len())?;
        if !name.eq_ignore_ascii_case(key) {
            return None;
        }
        let after_separator = after_name
            .strip_prefix('=')
            .or_else(|| after_name.strip_prefix(':'))?;
        let value_start = after_separator.trim_start_matches(' ');
        let end = value_start
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | ',' | ';' | ')' | '}' | '"'))
            .unwrap_or(value_start.len());
        let (value, tail) = value_start.split_at(end);
        if value.is_empty() {
            return None;
        }
        let key_len = text.len() - value_start.len();
        let (key_and_separator, _) = text.split_at(key_len);
        Some((key_and_separator, value, tail))
    })
}

#[cfg(test)]
mod tests;
