//! Prepares everything the docs component serves, so it parses and fetches
//! nothing at run time:
//!
//! * `openapi.yaml` (repository root) → compact JSON in `OUT_DIR`, with an
//!   entity tag derived from that JSON, embedded in the wasm;
//! * the API reference page: Swagger UI, installed from the npm registry with
//!   `npm ci` on `web/package-lock.json` (exact versions, integrity-checked,
//!   install scripts off) into `OUT_DIR`, plus the page and its start-up script
//!   from `web/`. Each file is gzipped here and described (name, type, entity
//!   tag, length) in a generated `assets.rs`; the gzipped bytes are not
//!   embedded. They are written to `OUT_DIR/assets/` (the unit tests read them
//!   there) and published to `<target dir>/docs-assets/`, which spin.toml
//!   mounts into the component as Spin `files`. Swagger UI alone gzips to
//!   ~450 KB: embedded, it made docs.wasm 852 KB, past the 600 KiB every
//!   component but uploads keeps to.
//!
//! Each published file is named for its content (`<name>.<tag>.gz`), so a
//! component only ever opens the bytes its own tags describe, and a native
//! and a wasm build of the same sources write the same files.
//!
//! Needs `npm` on PATH (scripts/setup.sh makes sure of it). npm's cache makes a
//! rebuild work offline once the packages were fetched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    openapi(&manifest_dir, &out_dir);
    page_assets(&manifest_dir, &out_dir);
}

/// A strong validator: the first 128 bits of the bytes' SHA-256, quoted.
fn etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

fn openapi(manifest_dir: &Path, out_dir: &Path) {
    let source = manifest_dir.join("../../openapi.yaml");
    println!("cargo::rerun-if-changed={}", source.display());

    let yaml = std::fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    let document: serde_json::Value = serde_norway::from_str(&yaml)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", source.display()));
    if document
        .get("openapi")
        .and_then(|v| v.as_str())
        .is_none_or(|v| !v.starts_with("3.1"))
    {
        panic!("{} must be an OpenAPI 3.1 document", source.display());
    }
    let json = serde_json::to_string(&document).expect("a JSON value serialises");
    std::fs::write(out_dir.join("openapi.json"), &json).expect("write openapi.json");
    std::fs::write(out_dir.join("openapi.etag"), etag(json.as_bytes()))
        .expect("write openapi.etag");
}

/// Runs `npm ci` in `OUT_DIR/npm` on a copy of `web/package.json` and its lockfile.
fn npm_install(web: &Path, out_dir: &Path) -> PathBuf {
    let dir = out_dir.join("npm");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/npm");
    for file in ["package.json", "package-lock.json"] {
        let source = web.join(file);
        println!("cargo::rerun-if-changed={}", source.display());
        std::fs::copy(&source, dir.join(file))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", source.display()));
    }
    let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".into());
    println!("cargo::rerun-if-env-changed=NPM");
    let status = Command::new(&npm)
        .args([
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--loglevel=error",
        ])
        .current_dir(&dir)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "functions/docs installs Swagger UI from npm at build time, but `{npm}` \
                 could not run ({e}). Install Node.js and npm (scripts/setup.sh does)."
            )
        });
    assert!(
        status.success(),
        "`npm ci` in {} failed ({status}): Swagger UI for /api/v1/docs could not be installed",
        dir.display()
    );
    dir.join("node_modules")
}

/// One file the page needs: the name it is served under, where it comes from,
/// and its media type.
struct Source {
    name: &'static str,
    path: PathBuf,
    content_type: &'static str,
}

fn page_assets(manifest_dir: &Path, out_dir: &Path) {
    let web = manifest_dir.join("web");
    let modules = npm_install(&web, out_dir);
    let swagger = modules.join("swagger-ui-dist");
    let sources = [
        Source {
            name: "index.html",
            path: web.join("index.html"),
            content_type: "text/html; charset=utf-8",
        },
        Source {
            name: "docs.js",
            path: web.join("docs.js"),
            content_type: "text/javascript; charset=utf-8",
        },
        Source {
            name: "swagger-ui-bundle.js",
            path: swagger.join("swagger-ui-bundle.js"),
            content_type: "text/javascript; charset=utf-8",
        },
        Source {
            name: "swagger-ui.css",
            path: swagger.join("swagger-ui.css"),
            content_type: "text/css; charset=utf-8",
        },
        Source {
            name: "LICENSE.txt",
            path: swagger.join("LICENSE"),
            content_type: "text/plain; charset=utf-8",
        },
    ];

    let assets_dir = out_dir.join("assets");
    std::fs::create_dir_all(&assets_dir).expect("create OUT_DIR/assets");
    let published = target_dir(out_dir).map(|target| target.join("docs-assets"));
    let mut table =
        String::from("/// Generated by build.rs: every file the docs page is made of.\n");
    table.push_str("pub const ASSETS: &[Asset] = &[\n");
    let mut written = Vec::new();
    for source in &sources {
        println!("cargo::rerun-if-changed={}", source.path.display());
        let raw = std::fs::read(&source.path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.path.display()));
        // Source maps are not shipped: drop the comment that would make
        // developer tools ask for one.
        let raw = strip_source_map_comment(raw);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&raw).expect("gzip in memory");
        let gzip = encoder.finish().expect("gzip in memory");
        let tag = etag(&raw);
        let file = format!("{}.{}.gz", source.name, tag.trim_matches('"'));
        write_atomically(&assets_dir.join(&file), &gzip);
        if let Some(dir) = &published {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            write_atomically(&dir.join(&file), &gzip);
        }
        written.push(file.clone());
        table.push_str(&format!(
            "    Asset {{ name: {:?}, content_type: {:?}, etag: {:?}, len: {}, file: {:?} }},\n",
            source.name,
            source.content_type,
            tag,
            raw.len(),
            file,
        ));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("assets.rs"), table).expect("write assets.rs");
    if let Some(dir) = &published {
        remove_other_versions(dir, &written);
    }
}

/// Removes the gzipped files of earlier builds from `dir`, so Spin does not
/// copy every Swagger UI the checkout has ever had at each start. Only `.gz`
/// files go: another build's half-written temporary file is left alone.
fn remove_other_versions(dir: &Path, keep: &[String]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".gz") && !keep.contains(&name) {
            // Already gone (a concurrent build) is as good as removed.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Cargo's target directory, the one spin.toml's `target/...` paths name.
/// `OUT_DIR` is `<target>/[<triple>/]<profile>/build/<package>-<hash>/out`,
/// with `<triple>` when the build named one (`--target wasm32-wasip2`). An
/// unexpected layout publishes nothing, and the build says so.
fn target_dir(out_dir: &Path) -> Option<PathBuf> {
    let found = cargo_layout_target(out_dir);
    if found.is_none() {
        println!(
            "cargo::warning=unexpected OUT_DIR layout {}: the reference page's files \
             were not published to target/docs-assets",
            out_dir.display()
        );
    }
    found
}

fn cargo_layout_target(out_dir: &Path) -> Option<PathBuf> {
    let build = out_dir.parent()?.parent()?;
    if !out_dir.ends_with("out") || !build.ends_with("build") {
        return None;
    }
    let above_profile = build.parent()?.parent()?;
    let triple = std::env::var("TARGET").ok()?;
    if above_profile.ends_with(&triple) {
        above_profile.parent().map(Path::to_path_buf)
    } else {
        Some(above_profile.to_path_buf())
    }
}

/// Writes `bytes` to `path` unless it already holds them: through a temporary
/// file and a rename, as a native and a wasm build may publish the same file
/// at once (each name is content-addressed, so both write the same bytes).
fn write_atomically(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", temporary.display()));
    std::fs::rename(&temporary, path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn strip_source_map_comment(mut bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&bytes);
    if let Some(at) = text.rfind("sourceMappingURL=") {
        if let Some(start) = text[..at].rfind(['\n']) {
            let tail = &text[start..];
            if tail.lines().filter(|l| !l.trim().is_empty()).count() == 1 {
                bytes.truncate(start + 1);
            }
        }
    }
    bytes
}
