use super::*;

#[test]
fn view_has_exactly_the_api_fields_and_no_hash() {
    let user = User {
        id: "a".into(),
        email: "a@b.cd".into(),
        name: "N".into(),
        role: Role::User,
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_000,
    };
    let v = serde_json::to_value(user.view()).unwrap();
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["created_at", "email", "id", "name", "role", "updated_at"]
    );
    assert_eq!(v["created_at"], "2023-11-14T22:13:20.000Z");
}

use proptest::prelude::*;
use shared::testing::hostile_text;

proptest! {
    #[test]
    fn any_stored_user_has_a_json_view_with_its_text_unchanged(
        id in hostile_text(),
        email in hostile_text(),
        name in hostile_text(),
        created_at_ms in any::<i64>(),
        updated_at_ms in any::<i64>(),
    ) {
        let user = User {
            id,
            email,
            name,
            role: Role::Admin,
            created_at_ms,
            updated_at_ms,
        };
        let json = serde_json::to_string(&user.view()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&v["id"], user.id.as_str());
        prop_assert_eq!(&v["email"], user.email.as_str());
        prop_assert_eq!(&v["name"], user.name.as_str());
        prop_assert_eq!(&v["role"], "admin");
        prop_assert!(v["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
