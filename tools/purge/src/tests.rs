use super::*;

#[test]
fn report_reads_as_a_sentence() {
    let r = Report {
        sessions: 1,
        ..Report::default()
    };
    assert!(r.to_string().starts_with("deleted 1 sessions"));
}
