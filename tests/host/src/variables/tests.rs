use super::*;

#[test]
fn templates_mix_literals_and_expressions() {
    let t = Template::parse("mysql://{{ host }}:{{port}}/db").unwrap();
    let values = HashMap::from([
        ("host".to_owned(), "h".to_owned()),
        ("port".to_owned(), "1".to_owned()),
    ]);
    assert_eq!(t.render(&values).unwrap(), "mysql://h:1/db");
    assert!(Template::parse("{{ open").is_err());
    assert_eq!(Template::parse("plain").unwrap().expressions().count(), 0);
}

#[test]
fn keys_follow_spin_rules() {
    assert!(validate_key("jwt_secret").is_ok());
    assert!(validate_key("Jwt").is_err());
    assert!(validate_key("a__b").is_err());
    assert!(validate_key("a_").is_err());
    assert!(validate_key("1a").is_err());
}

#[test]
fn cli_beats_env_beats_dotenv_beats_default() {
    let defs = BTreeMap::from([(
        "x".to_owned(),
        VariableDef {
            description: None,
            required: false,
            default: Some("default".into()),
            secret: false,
        },
    )]);
    let env_some = |k: &str| (k == "SPIN_VARIABLE_X").then(|| "env".to_owned());
    let env_none = |_: &str| None;
    let dotenv = HashMap::from([("SPIN_VARIABLE_X".to_owned(), "dotenv".to_owned())]);
    let empty = HashMap::new();
    let cli = vec![
        ("x".to_owned(), "a".to_owned()),
        ("x".to_owned(), "b".to_owned()),
    ];
    let get = |cli: &[(String, String)], env: &dyn Fn(&str) -> Option<String>, d| {
        resolve_app_variables(
            &defs,
            &Providers {
                cli,
                env,
                dotenv: d,
            },
        )
        .unwrap()["x"]
            .clone()
    };
    assert_eq!(get(&cli, &env_some, &dotenv), "b");
    assert_eq!(get(&[], &env_some, &dotenv), "env");
    assert_eq!(get(&[], &env_none, &dotenv), "dotenv");
    assert_eq!(get(&[], &env_none, &empty), "default");
}
