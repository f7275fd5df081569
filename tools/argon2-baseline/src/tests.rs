use super::*;

fn parse(args: &[&str]) -> Result<Option<Args>, String> {
    parse_args(args.iter().map(|a| a.to_string()))
}

#[test]
fn defaults_are_one_thread_five_seconds_and_the_current_cost() {
    let args = parse(&[]).unwrap().unwrap();
    assert_eq!((args.seconds, args.threads, args.cost), (5.0, 1, CURRENT));
}

#[test]
fn options_are_read() {
    let args = parse(&["--seconds", "0.5", "--threads", "2", "--cost", "19456,2,1"])
        .unwrap()
        .unwrap();
    assert_eq!(args.seconds, 0.5);
    assert_eq!(args.threads, 2);
    assert_eq!(
        args.cost,
        Cost {
            memory_kib: 19456,
            passes: 2,
            lanes: 1
        }
    );
    assert!(parse(&["--help"]).unwrap().is_none());
}

#[test]
fn bad_options_are_refused() {
    for bad in [
        &["--seconds"][..],
        &["--seconds", "0"],
        &["--seconds", "x"],
        &["--threads", "0"],
        &["--cost", "1,2"],
        &["--cost", "a,b,c"],
        &["--fast"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_short_run_reports_its_line() {
    let args = Args {
        seconds: 0.05,
        threads: 2,
        cost: Cost {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        },
    };
    let line = run(&args).unwrap();
    assert!(
        line.starts_with("NATIVE argon2id m=64 t=1 p=1 threads=2 verifies="),
        "{line}"
    );
    assert!(line.contains(" per_core_per_s="), "{line}");
}
