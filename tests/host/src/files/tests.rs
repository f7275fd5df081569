use super::*;

/// A fresh app directory with `spin.toml` holding one component `c` whose
/// table ends with `component_keys`, and the given files.
fn app(component_keys: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Manifest) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
         [component.c]\nsource = \"c.wasm\"\n{component_keys}\n"
    );
    let manifest = Manifest::parse(&text, dir).unwrap();
    (temp, manifest)
}

/// The files under `root`, as sorted guest paths with their contents.
fn listing(root: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let guest = format!("/{}", path.strip_prefix(root).unwrap().display());
                out.push((guest, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn copied(component_keys: &str, files: &[(&str, &str)]) -> Vec<(String, String)> {
    let (_dir, manifest) = app(component_keys, files);
    let copied = copy_all(&manifest).unwrap();
    listing(&copied.roots["c"])
}

fn refusal(component_keys: &str, files: &[(&str, &str)]) -> String {
    let (_dir, manifest) = app(component_keys, files);
    format!("{:#}", copy_all(&manifest).unwrap_err())
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn no_files_no_working_directory() {
    let (_dir, manifest) = app("", &[]);
    let copied = copy_all(&manifest).unwrap();
    assert!(copied.working_dir.is_none());
    assert!(copied.roots.is_empty());
}

#[test]
fn a_placed_directory_lands_under_its_destination() {
    let got = copied(
        r#"files = [{ source = "site", destination = "/static" }]"#,
        &[("site/a.txt", "a"), ("site/sub/.hidden", "h")],
    );
    assert_eq!(
        got,
        pairs(&[("/static/a.txt", "a"), ("/static/sub/.hidden", "h")])
    );
}

#[test]
fn a_placed_file_lands_at_its_destination() {
    let got = copied(
        r#"files = [{ source = "data/one.txt", destination = "/x/y.txt" }]"#,
        &[("data/one.txt", "1")],
    );
    assert_eq!(got, pairs(&[("/x/y.txt", "1")]));
}

#[test]
fn a_plain_directory_is_joined_twice_as_spin_does() {
    let got = copied(r#"files = ["static"]"#, &[("static/a.txt", "a")]);
    assert_eq!(got, pairs(&[("/static/static/a.txt", "a")]));
}

#[test]
fn a_plain_file_keeps_its_path() {
    let got = copied(r#"files = ["conf/app.json"]"#, &[("conf/app.json", "{}")]);
    assert_eq!(got, pairs(&[("/conf/app.json", "{}")]));
}

#[test]
fn a_placed_empty_directory_still_appears() {
    let (dir, manifest) = app(r#"files = [{ source = "empty", destination = "/e" }]"#, &[]);
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let copied = copy_all(&manifest).unwrap();
    assert!(copied.roots["c"].join("e").is_dir());
}

#[test]
fn the_working_directory_is_removed_on_drop() {
    let (_dir, manifest) = app(r#"files = ["a.txt"]"#, &[("a.txt", "a")]);
    let copied = copy_all(&manifest).unwrap();
    let working = copied.working_dir.unwrap();
    let path = working.path().to_path_buf();
    assert!(path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("spinup-"));
    assert!(path.join("assets/c/a.txt").is_file());
    drop(working);
    assert!(!path.exists());
}

#[test]
fn a_missing_placed_source_is_spins_error() {
    let err = refusal(r#"files = [{ source = "nope", destination = "/n" }]"#, &[]);
    assert!(err.contains("Failed to load component `c`"), "{err}");
    assert!(
        err.contains("File or directory \"nope\" does not exist"),
        "{err}"
    );
}

#[test]
fn a_missing_plain_path_is_spins_error() {
    let err = refusal(r#"files = ["nope.txt"]"#, &[]);
    assert!(
        err.contains("\"nope.txt\" does not exist and doesn't appear to be a glob pattern"),
        "{err}"
    );
}

#[test]
fn entries_ending_in_dot_or_dot_dot_are_refused() {
    for entry in ["..", "a/..", ".", "a/."] {
        let err = refusal(&format!("files = [{entry:?}]"), &[("a/x", "x")]);
        assert!(
            err.contains("A file pattern can't end in a"),
            "{entry}: {err}"
        );
    }
}

#[test]
fn globs_and_exclude_files_are_refused_as_not_implemented() {
    let err = refusal(r#"files = ["static/*.txt"]"#, &[("static/a.txt", "a")]);
    assert!(err.contains("not implemented by the test host"), "{err}");
    assert!(err.contains("static/*.txt"), "{err}");
    let err = refusal(
        "files = [\"static\"]\nexclude_files = [\"static/secret\"]",
        &[("static/a.txt", "a")],
    );
    assert!(err.contains("not implemented by the test host"), "{err}");
    assert!(err.contains("exclude_files"), "{err}");
}

#[test]
fn an_existing_path_with_glob_characters_is_a_path() {
    let got = copied(r#"files = ["odd[1].txt"]"#, &[("odd[1].txt", "o")]);
    assert_eq!(got, pairs(&[("/odd[1].txt", "o")]));
}

#[test]
fn exclude_files_without_files_is_unused() {
    let (_dir, manifest) = app(r#"exclude_files = ["x/*"]"#, &[]);
    assert!(copy_all(&manifest).unwrap().roots.is_empty());
}

#[test]
fn a_source_outside_the_app_directory_is_refused() {
    let outside =
        std::env::temp_dir().join(format!("spin-test-host-outside-{}", std::process::id()));
    std::fs::write(&outside, "o").unwrap();
    let err = refusal(
        &format!(
            "files = [{{ source = {:?}, destination = \"/o.txt\" }}]",
            outside.display().to_string()
        ),
        &[],
    );
    assert!(err.contains("outside the application directory"), "{err}");
    let _ = std::fs::remove_file(outside);
}

#[test]
fn a_directory_destination_for_a_file_is_spins_error() {
    let err = refusal(
        r#"files = [{ source = "a.txt", destination = "/" }]"#,
        &[("a.txt", "a")],
    );
    assert!(
        err.contains("\"/\" is not a valid destination file name"),
        "{err}"
    );
}

#[test]
fn a_table_with_other_keys_is_refused() {
    let text = "spin_manifest_version = 2\n[application]\nname = \"x\"\n[component.c]\n\
                source = \"c.wasm\"\nfiles = [{ source = \"a\", destination = \"/a\", mode = 1 }]\n";
    assert!(Manifest::parse(text, Path::new(".")).is_err());
}
