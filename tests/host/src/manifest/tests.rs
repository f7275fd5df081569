use super::*;

#[test]
fn variables_need_default_xor_required() {
    let text = r#"
        spin_manifest_version = 2
        [application]
        name = "x"
        [variables]
        both = { default = "a", required = true }
    "#;
    let err = Manifest::parse(text, Path::new(".")).unwrap_err();
    assert!(format!("{err:#}").contains("both"));
}

#[test]
fn sources_are_relative_to_the_manifest() {
    let text = r#"
        spin_manifest_version = 2
        [application]
        name = "x"
        [[trigger.http]]
        route = "/..."
        component = "c"
        [component.c]
        source = "c.wasm"
        [component.c.build]
        command = "make"
    "#;
    let m = Manifest::parse(text, Path::new("/apps/x")).unwrap();
    assert_eq!(m.components["c"].source, Path::new("/apps/x/c.wasm"));
    assert_eq!(m.http_triggers[0].route, "/...");
}

#[test]
fn redis_triggers_take_the_application_default_address_unless_they_name_one() {
    let text = r#"
        spin_manifest_version = 2
        [application]
        name = "x"
        [application.trigger.redis]
        address = "redis://{{ redis_host }}"
        [[trigger.redis]]
        channel = "a"
        component = "c"
        [[trigger.redis]]
        address = "redis://other:6379"
        channel = "{{ chan }}"
        component = "c"
        [component.c]
        source = "c.wasm"
    "#;
    let m = Manifest::parse(text, Path::new(".")).unwrap();
    assert_eq!(m.redis_triggers[0].address, "redis://{{ redis_host }}");
    assert_eq!(m.redis_triggers[1].address, "redis://other:6379");
    assert_eq!(m.redis_triggers[1].channel, "{{ chan }}");
}

#[test]
fn a_redis_trigger_without_any_address_is_refused() {
    let text = r#"
        spin_manifest_version = 2
        [application]
        name = "x"
        [[trigger.redis]]
        channel = "a"
        component = "c"
        [component.c]
        source = "c.wasm"
    "#;
    let err = Manifest::parse(text, Path::new(".")).unwrap_err();
    assert!(format!("{err:#}").contains("no address"), "{err:#}");
}

#[test]
fn grants_are_read_per_component() {
    let text = r#"
        spin_manifest_version = 2
        [application]
        name = "x"
        [component.a]
        source = "a.wasm"
        key_value_stores = ["default"]
        sqlite_databases = ["default"]
        [component.b]
        source = "b.wasm"
    "#;
    let m = Manifest::parse(text, Path::new(".")).unwrap();
    assert_eq!(m.components["a"].sqlite_databases, ["default"]);
    assert_eq!(m.components["a"].key_value_stores, ["default"]);
    assert!(m.components["b"].sqlite_databases.is_empty());
}
