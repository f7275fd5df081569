use super::*;
use crate::testing::hostile_text;
use proptest::prelude::*;

/// Every error, with hostile text wherever an error carries text (the
/// `Allow` list is the router's: standard method names).
pub(crate) fn any_error() -> impl Strategy<Value = ApiError> {
    let text = || prop_oneof![hostile_text(), any::<String>()];
    let field_error = (text(), text()).prop_map(|(f, m)| FieldError::new(f, m));
    let allow = prop::sample::subsequence(
        vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        0..=7,
    )
    .prop_map(|methods| methods.join(", "));
    prop_oneof![
        prop::collection::vec(field_error, 0..4).prop_map(ApiError::Validation),
        text().prop_map(ApiError::InvalidBody),
        text().prop_map(ApiError::BadRequest),
        Just(ApiError::InvalidCredentials),
        Just(ApiError::InvalidToken),
        Just(ApiError::RefreshTokenReused),
        Just(ApiError::Forbidden),
        Just(ApiError::NotFound),
        text().prop_map(|product_id| ApiError::ProductNotFound { product_id }),
        allow.prop_map(|allow| ApiError::MethodNotAllowed { allow }),
        Just(ApiError::EmailTaken),
        Just(ApiError::SkuTaken),
        text().prop_map(|product_id| ApiError::InsufficientStock { product_id }),
        text().prop_map(ApiError::InvalidState),
        any::<u64>().prop_map(|quota| ApiError::QuotaExceeded { quota }),
        any::<u64>().prop_map(|limit| ApiError::PayloadTooLarge { limit }),
        text().prop_map(ApiError::UnsupportedMediaType),
        Just(ApiError::IdempotencyKeyReused),
        any::<u64>().prop_map(|retry_after_secs| ApiError::TooManyAttempts { retry_after_secs }),
        text().prop_map(ApiError::Internal),
        text().prop_map(ApiError::Unavailable),
    ]
}

proptest! {
    #[test]
    fn every_error_has_an_error_status_a_stable_code_and_a_title(
        a in any_error(),
        b in any_error(),
    ) {
        prop_assert!((400..=599).contains(&a.status()), "{a:?}");
        prop_assert!(
            !a.code().is_empty() && a.code().bytes().all(|c| c.is_ascii_lowercase() || c == b'_'),
            "{}",
            a.code()
        );
        prop_assert!(!a.title().is_empty());
        // One code, one status: clients branch on the code.
        if a.code() == b.code() {
            prop_assert_eq!(a.status(), b.status());
            prop_assert_eq!(a.title(), b.title());
        }
    }

    #[test]
    fn server_error_details_never_depend_on_their_cause(
        cause in hostile_text(),
        other in hostile_text(),
    ) {
        for make in [ApiError::Internal, ApiError::Unavailable] {
            prop_assert_eq!(make(cause.clone()).detail(), make(other.clone()).detail());
        }
    }

    #[test]
    fn any_error_displays_as_its_code_and_log_detail(error in any_error()) {
        prop_assert_eq!(
            error.to_string(),
            format!("{}: {}", error.code(), error.log_detail())
        );
    }
}
