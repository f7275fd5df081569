use super::*;

#[test]
fn file_and_label_parse_as_spin_parses_them() {
    // Spin's own cases (crates/trigger/src/cli/sqlite_statements.rs).
    assert_eq!(
        parse_file_and_label("file:label").unwrap(),
        ("file", "label")
    );
    assert!(parse_file_and_label("file:").is_err());
    assert_eq!(parse_file_and_label("file").unwrap(), ("file", "default"));
    assert!(parse_file_and_label(":label").is_err());
    assert!(parse_file_and_label("").is_err());
    assert_eq!(
        parse_file_and_label(" a b.sql : x ").unwrap(),
        ("a b.sql", "x")
    );
}

#[test]
fn only_default_is_defined_and_the_refusal_names_every_offender() {
    let dbs = Databases::new(Path::new("/state"));
    assert_eq!(dbs.default_file(), Path::new("/state/sqlite_db.db"));
    let default = vec!["default".to_owned()];
    let other = vec!["default".to_owned(), "analytics".to_owned()];
    check_grants(&dbs, [("a", default.as_slice())]).unwrap();
    let err = check_grants(&dbs, [("a", default.as_slice()), ("b", other.as_slice())])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "One or more components use SQLite databases which are not defined.\n\
         Check the spelling, or pass a runtime configuration file that defines these stores.\n\
         See https://spinframework.dev/dynamic-configuration#sqlite-storage-runtime-configuration\n\
         Details:\n\
         - Component b uses database 'analytics'"
    );
}

#[test]
fn the_state_dir_is_dot_spin_beside_the_manifest_unless_given() {
    assert_eq!(
        state_dir(None, Path::new("/apps/x/spin.toml")).unwrap(),
        Path::new("/apps/x/.spin")
    );
    assert_eq!(
        state_dir(
            Some(Path::new("/var/state")),
            Path::new("/apps/x/spin.toml")
        )
        .unwrap(),
        Path::new("/var/state")
    );
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        state_dir(None, Path::new("spin.toml")).unwrap(),
        cwd.join(".spin")
    );
    assert_eq!(
        state_dir(Some(Path::new("st")), Path::new("spin.toml")).unwrap(),
        cwd.join("st")
    );
}
