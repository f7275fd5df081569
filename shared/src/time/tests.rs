use super::*;

#[test]
fn formats_epoch_millis_as_rfc3339_utc() {
    assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
}

#[test]
fn times_past_the_formatters_range_show_as_its_last_millisecond() {
    // Found by `any_millisecond_count_formats_as_rfc3339_utc`: from
    // 253402300800000 ms on, the formatter once failed and panicked.
    assert_eq!(rfc3339(253_402_300_800_000), "9999-12-30T22:00:00.000Z");
    assert_eq!(rfc3339(i64::MAX), "9999-12-30T22:00:00.000Z");
    assert_eq!(rfc3339(-1), "1970-01-01T00:00:00.000Z");
}

use proptest::prelude::*;

/// The last millisecond `rfc3339` shows as itself.
const LAST_MS: i64 = 253_402_207_200_000;

fn any_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        0..=LAST_MS,
        LAST_MS - 1000..=LAST_MS + 1000,
        Just(i64::MAX),
        Just(i64::MIN),
    ]
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn is_rfc3339_millis(s: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == shape.len()
        && s.bytes().zip(shape.bytes()).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            _ => c == p,
        })
}

proptest! {
    #[test]
    fn any_millisecond_count_formats_as_rfc3339_utc(ms in any_ms()) {
        let text = rfc3339(ms);
        prop_assert!(is_rfc3339_millis(&text), "{ms} -> {text:?}");
    }

    #[test]
    fn formatting_keeps_the_order_of_times(a in any_ms(), b in any_ms()) {
        let (early, late) = (a.min(b), a.max(b));
        prop_assert!(rfc3339(early) <= rfc3339(late));
    }

    #[test]
    fn times_in_range_parse_back_to_themselves(ms in 0..=LAST_MS) {
        let parsed: jiff::Timestamp = rfc3339(ms).parse().unwrap();
        prop_assert_eq!(parsed.as_millisecond(), ms);
    }
}
