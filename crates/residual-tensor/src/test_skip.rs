//! Tests that cannot run on this machine say so, instead of passing in
//! silence.
//!
//! A test that needs what this machine lacks (a CPU feature, a GPU adapter)
//! calls [`skipped`], or [`run_or_skip`], and returns: it prints one line,
//! `SKIPPED: <test>: <reason>`, to the process's standard output. `cargo xtask
//! test` counts these lines, lists them, and counts those tests as skipped,
//! not passed.
//!
//! In CI (the `CI` environment variable set, as `.ci/run` does), a test may
//! not skip for want of something the machine has: [`run_or_skip`] then
//! fails the test.

use std::io::Write;

/// What starts the line of a skipped test: `SKIPPED: <test>: <reason>`.
pub const MARKER: &str = "SKIPPED: ";

/// The running test's full name (`module::test`): the test harness runs each
/// test on a thread of that name.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string()
}

/// Reports the running test as skipped for `reason` (one line on standard
/// output); the test should return at once. A test reports once: a second
/// report (a device helper said why, then the test's macro says it again) is
/// not printed.
pub fn skipped(reason: &str) {
    thread_local! {
        static REPORTED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    }
    let test = current_test();
    if REPORTED.with(|r| r.replace(Some(test.clone())).as_ref() == Some(&test)) {
        return;
    }
    let line = format!("{MARKER}{test}: {reason}\n");
    // Through the stdout handle, not `print!`: the harness captures `print!`
    // and shows it only for failing tests, and this line must show for a
    // test that passes. One write under the lock, so the line stays whole.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Whether this is a CI run (the `CI` environment variable is set).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// What a test that needs something does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It has what it needs: it runs.
    Run,
    /// It lacks it: it is reported skipped.
    Skip,
    /// It cannot run, yet the machine reports what it needs, in CI: it fails.
    Fail,
}

/// The decision for a test that `can_run` here, on a machine that `reports`
/// (by a second, independent look) having what the test needs, in CI or not.
pub fn decide(can_run: bool, reports: bool, ci: bool) -> Decision {
    match (can_run, reports && ci) {
        (true, _) => Decision::Run,
        (false, true) => Decision::Fail,
        (false, false) => Decision::Skip,
    }
}

/// For a test that needs `what`: true when it `can_run` here. Otherwise the
/// test is reported [`skipped`] and false returned, except in CI on a
/// machine that `reports` having `what`, where the test panics (it would
/// have run, had the check been right).
pub fn run_or_skip(what: &str, can_run: bool, reports: bool) -> bool {
    match decide(can_run, reports, in_ci()) {
        Decision::Run => true,
        Decision::Skip => {
            skipped(&format!("this machine lacks {what}"));
            false
        }
        Decision::Fail => panic!(
            "CI: this machine reports {what}, but {} could not use it",
            current_test()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_runs_skips_or_fails_in_ci_as_the_machine_reports() {
        use Decision::*;
        assert_eq!(decide(true, true, true), Run);
        assert_eq!(decide(true, false, true), Run);
        assert_eq!(decide(false, false, true), Skip);
        assert_eq!(decide(false, true, false), Skip);
        assert_eq!(decide(false, false, false), Skip);
        assert_eq!(
            decide(false, true, true),
            Fail,
            "CI, the machine has it, the test did not run"
        );
    }

    #[test]
    fn the_skip_line_names_the_running_test() {
        assert!(current_test().ends_with("the_skip_line_names_the_running_test"));
    }
}
