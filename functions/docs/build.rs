//! Converts the repository's `openapi.yaml` to compact JSON in `OUT_DIR`, with
//! an entity tag derived from that JSON, so the component `include_str!`s both
//! and never parses YAML at run time.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
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
    // A strong validator: the first 128 bits of the body's SHA-256 change
    // whenever the document does, and only then.
    let digest = Sha256::digest(json.as_bytes());
    let etag = format!("\"{}\"", hex::encode(&digest[..16]));

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out_dir.join("openapi.json"), json).expect("write openapi.json");
    std::fs::write(out_dir.join("openapi.etag"), etag).expect("write openapi.etag");
}
