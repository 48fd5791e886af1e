//! Adding up `cargo test`'s output: the `test result:` line of each test
//! binary, and the tests that reported themselves skipped at run time.
//!
//! A test that cannot run on this machine prints `SKIPPED: <test>: <reason>`
//! (`residual_tensor::test_skip`) and returns, which the harness counts as
//! passed: here it is counted as skipped instead, and listed.

use std::collections::BTreeMap;

/// What starts the line of a test skipped at run time (the same as
/// `residual_tensor::test_skip::MARKER`; xtask does not link the workspace).
pub const MARKER: &str = "SKIPPED: ";

/// The counts over every test binary of a `cargo test` run.
#[derive(Debug, Default)]
pub struct TestCounts {
    /// Tests that passed and were not skipped at run time.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests marked `#[ignore]`.
    pub ignored: u64,
    /// Tests skipped at run time, `(test, reason)`, in the order of their binaries.
    pub skipped: Vec<(String, String)>,
    /// The skip lines of the binary whose result line has not come yet, by
    /// test (a test reporting twice counts once).
    pending: BTreeMap<String, String>,
}

impl TestCounts {
    /// Adds the counts of another `cargo test` run.
    pub fn add(&mut self, other: TestCounts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
        self.skipped.extend(other.skipped);
    }

    /// Takes one line of `cargo test`'s standard output.
    pub fn line(&mut self, line: &str) {
        // Anywhere in the line: the harness may have begun `test NAME ... `
        // on the same line before the test printed.
        if let Some(at) = line.find(MARKER) {
            let rest = &line[at + MARKER.len()..];
            let (test, reason) = rest.split_once(": ").unwrap_or((rest, ""));
            self.pending
                .entry(test.trim().to_string())
                .or_insert_with(|| reason.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |key: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(key)
                            .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
                    })
                    .unwrap_or(0)
            };
            let passed = num(" passed");
            // A skipped test returned, so the harness counted it passed.
            let skipped = (self.pending.len() as u64).min(passed);
            self.passed += passed - skipped;
            self.failed += num(" failed");
            self.ignored += num(" ignored");
            self.skipped.extend(std::mem::take(&mut self.pending));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(out: &str) -> TestCounts {
        let mut c = TestCounts::default();
        for l in out.lines() {
            c.line(l);
        }
        c
    }

    #[test]
    fn skipped_tests_leave_the_passed_count_and_are_listed() {
        let c = counts(
            "running 3 tests\n\
             test cpu::gemm_bf16::tests::a ... SKIPPED: cpu::gemm_bf16::tests::a: this machine lacks AVX512-BF16\n\
             ok\n\
             SKIPPED: conv::b: no device of this kind on this machine\n\
             SKIPPED: conv::b: no wgpu adapter: none found\n\
             test conv::b ... ok\n\
             test c ... ok\n\
             test result: ok. 3 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
             running 2 tests\n\
             test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n",
        );
        assert_eq!((c.passed, c.failed, c.ignored), (2, 1, 2));
        assert_eq!(
            c.skipped,
            [
                (
                    "conv::b".to_string(),
                    "no device of this kind on this machine".to_string()
                ),
                (
                    "cpu::gemm_bf16::tests::a".to_string(),
                    "this machine lacks AVX512-BF16".to_string()
                ),
            ]
        );
    }

    #[test]
    fn skip_lines_count_against_their_own_binary_only() {
        let c = counts(
            "SKIPPED: same::name: no adapter\n\
             test result: ok. 1 passed; 0 failed; 0 ignored\n\
             test result: ok. 1 passed; 0 failed; 0 ignored\n",
        );
        assert_eq!((c.passed, c.skipped.len()), (1, 1));
    }
}
