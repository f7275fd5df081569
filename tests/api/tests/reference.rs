//! The API reference (`docs/API.md`) against the OpenAPI document
//! (`openapi.yaml`): the same routes and the same error codes, so the page a
//! person reads cannot drift from the document tools read. And the
//! repository's own documents link only into the repository: a clone holds
//! everything its README and comments point at.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use api_tests::workspace_root;
use serde_json::Value;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

fn reference() -> String {
    std::fs::read_to_string(workspace_root().join("docs/API.md")).expect("read docs/API.md")
}

fn document() -> Value {
    let text =
        std::fs::read_to_string(workspace_root().join("openapi.yaml")).expect("read openapi.yaml");
    serde_norway::from_str(&text).expect("openapi.yaml parses as YAML")
}

/// The cells of a Markdown table row (`| a | b |`), trimmed; a `\|` inside a
/// cell is part of the cell.
fn cells(line: &str) -> Option<Vec<String>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => cells.push(String::new()),
            _ => {
                if escaped && c != '|' {
                    cells.last_mut()?.push('\\');
                }
                escaped = false;
                cells.last_mut()?.push(c);
            }
        }
    }
    Some(cells.into_iter().map(|c| c.trim().to_owned()).collect())
}

/// The text between the first pair of backticks in `cell`.
fn first_code_span(cell: &str) -> Option<&str> {
    let rest = cell.split_once('`')?.1;
    Some(rest.split_once('`')?.0)
}

/// `(METHOD, path)` of every route row of the reference: a first cell that
/// opens with `` `METHOD /api/v1/…` ``, the query string left off.
fn referenced_routes(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(cells)
        .filter_map(|row| {
            let span = first_code_span(row.first()?)?.to_owned();
            let (method, target) = span.split_once(' ')?;
            let path = target.split('?').next()?;
            (METHODS.contains(&method.to_ascii_lowercase().as_str())
                && path.starts_with("/api/v1/"))
            .then(|| (method.to_owned(), path.to_owned()))
        })
        .collect()
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// `(status, code)` of every row of the reference's error-code table.
fn referenced_codes(text: &str) -> BTreeSet<(u16, String)> {
    text.lines()
        .filter_map(cells)
        .filter_map(|row| {
            let status = row.first()?.parse().ok()?;
            let code = first_code_span(row.get(1)?)?.to_owned();
            Some((status, code))
        })
        .collect()
}

/// Every problem `code` the document names, with its status: each problem
/// schema pins `code` (`const` or `enum`) beside its `status` `const`.
fn documented_codes(doc: &Value) -> BTreeSet<(u16, String)> {
    fn walk(value: &Value, out: &mut BTreeSet<(u16, String)>) {
        match value {
            Value::Object(map) => {
                let status = map
                    .get("status")
                    .and_then(|s| s.get("const"))
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok());
                if let (Some(status), Some(code)) = (status, map.get("code")) {
                    let enumerated = code.get("enum").and_then(Value::as_array);
                    let named = code
                        .get("const")
                        .into_iter()
                        .chain(enumerated.into_iter().flatten());
                    for name in named.filter_map(Value::as_str) {
                        out.insert((status, name.to_owned()));
                    }
                }
                map.values().for_each(|child| walk(child, out));
            }
            Value::Array(items) => items.iter().for_each(|child| walk(child, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(doc, &mut out);
    out
}

#[test]
fn every_route_of_the_reference_is_an_operation_of_the_document_and_back() {
    let referenced = referenced_routes(&reference());
    let documented = documented_routes(&document());
    assert!(referenced.len() > 20, "too few routes read: {referenced:?}");
    let missing: Vec<_> = documented.difference(&referenced).collect();
    let extra: Vec<_> = referenced.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/API.md lacks {missing:?}; openapi.yaml lacks {extra:?}"
    );
}

#[test]
fn every_error_code_of_the_reference_is_in_the_document_with_its_status_and_back() {
    let referenced = referenced_codes(&reference());
    let documented = documented_codes(&document());
    let missing: Vec<_> = documented.difference(&referenced).collect();
    let extra: Vec<_> = referenced.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/API.md lacks {missing:?}; openapi.yaml lacks {extra:?}"
    );
}

#[test]
fn a_route_row_is_read_with_its_query_left_off() {
    let text = "| route | who |\n|---|---|\n| `POST /api/v1/uploads?filename=&visibility=private\\|public` body | bearer |\n";
    assert_eq!(
        referenced_routes(text),
        BTreeSet::from([("POST".to_owned(), "/api/v1/uploads".to_owned())])
    );
}

/// The repository's text files that people read or that cite documents:
/// Markdown, Rust, TOML, YAML and shell, outside build output.
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "node_modules" | ".git" | ".spin") {
                text_files(&path, out);
            }
        } else if ["md", "rs", "toml", "yaml", "yml", "sh"]
            .iter()
            .any(|ext| name.ends_with(&format!(".{ext}")))
        {
            out.push(path);
        }
    }
}

/// `path` with `.` and `..` resolved without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The targets of Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<&str> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target))
        .collect()
}

#[test]
fn every_relative_link_of_the_documents_points_inside_the_repository_at_a_file_there() {
    let root = lexical(&workspace_root().canonicalize().expect("workspace root"));
    let mut files = Vec::new();
    text_files(&root, &mut files);
    let mut broken = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(file).expect("read a document");
        for target in link_targets(&text) {
            let target = target.split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let resolved = lexical(&file.parent().expect("a parent").join(target));
            if !resolved.starts_with(&root) || !resolved.exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that leave the repository or lead nowhere: {broken:#?}"
    );
}

#[test]
fn no_file_cites_a_document_beside_the_repository() {
    let root = workspace_root().canonicalize().expect("workspace root");
    // Spelled in pieces so that this file does not find itself.
    let beside = format!("../{}/", "shared");
    let mut files = Vec::new();
    text_files(&root, &mut files);
    let citing: Vec<_> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f).is_ok_and(|text| {
                text.contains(&beside)
                    || ["DESIGN", "SPIN-FACTS"]
                        .iter()
                        .any(|name| text.contains(&format!("{name}.md")))
            })
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        citing.is_empty(),
        "files citing documents outside the repository: {citing:#?}"
    );
}
