use super::*;
use crate::testing::hostile_text;
use proptest::prelude::*;

proptest! {
    #[test]
    fn role_names_parse_back_to_themselves_and_nothing_else_is_a_role(
        name in prop_oneof![Just("user".to_string()), Just("admin".to_string()), hostile_text()]
    ) {
        match Role::parse(&name) {
            Some(role) => prop_assert_eq!(role.as_str(), name.as_str()),
            None => prop_assert!(name != "user" && name != "admin"),
        }
    }
}
