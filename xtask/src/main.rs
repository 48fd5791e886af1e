//! `cargo xtask`: the project's tasks.
//!
//! - `cargo xtask test`: formatting, lints (warnings are errors), every test; a summary
//!   that counts the tests skipped at run time (`SKIPPED: <test>: <reason>`) as
//!   skipped, not passed, and lists them.
//! - `cargo xtask shaders`: validates every WGSL shader with naga, lists them, and
//!   checks the typed host/shader contract against naga's reflection.
//! - `cargo xtask layout`: the source-layout rules: no source file over 800 lines
//!   (tests aside), no file-level import circles inside a crate.
//! - `cargo xtask bench [--filter TEXT] [--device cpu|wgpu]`: benchmarks, one JSON object per line and case.

mod layout;
mod shaders;
mod test_output;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;
use test_output::TestCounts;

const USAGE: &str =
    "usage: cargo xtask <test | shaders | layout | bench [--filter TEXT] [--device cpu|wgpu]>\n\
  test    cargo fmt --check, cargo clippy -D warnings, shaders, layout, cargo test --workspace\n\
  shaders validate every WGSL shader with naga, print their entry points and bindings,\n\
          and check the Rust parameter structs and bindings against the WGSL\n\
  layout  no source file over 800 lines (tests aside), no import circles between files\n\
  bench   release-mode benchmarks as JSON lines (see docs/benchmarks.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") if args.len() == 1 => test(),
        Some("shaders") if args.len() == 1 => shaders_command(),
        Some("layout") if args.len() == 1 => layout_command(),
        Some("bench") => bench(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("xtask: unknown or malformed command {other:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// One step of `xtask test`: its name, whether it passed and how long it took.
struct Step {
    name: &'static str,
    ok: bool,
    secs: f64,
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run_step(name: &'static str, args: &[&str]) -> Step {
    eprintln!("\n== xtask: {name}: cargo {}", args.join(" "));
    let t0 = Instant::now();
    let ok = cargo()
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    Step {
        name,
        ok,
        secs: t0.elapsed().as_secs_f64(),
    }
}

/// Runs `cargo test`, echoing its output and adding up its result lines and
/// the tests skipped at run time.
fn run_tests(args: &[&str]) -> (Step, TestCounts) {
    eprintln!("\n== xtask: tests: cargo {}", args.join(" "));
    let t0 = Instant::now();
    let mut counts = TestCounts::default();
    let child = cargo().args(args).stdout(Stdio::piped()).spawn();
    let ok = match child {
        Err(e) => {
            eprintln!("xtask: could not start cargo test: {e}");
            false
        }
        Ok(mut child) => {
            let out = child.stdout.take().expect("piped stdout");
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("{line}");
                counts.line(&line);
            }
            child.wait().map(|s| s.success()).unwrap_or(false)
        }
    };
    (
        Step {
            name: "tests",
            ok,
            secs: t0.elapsed().as_secs_f64(),
        },
        counts,
    )
}

fn test() -> ExitCode {
    let mut steps = vec![
        run_step("format", &["fmt", "--all", "--", "--check"]),
        run_step(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    let t0 = Instant::now();
    steps.push(Step {
        name: "shaders",
        ok: shaders_command() == ExitCode::SUCCESS,
        secs: t0.elapsed().as_secs_f64(),
    });
    let t0 = Instant::now();
    steps.push(Step {
        name: "layout",
        ok: layout_command() == ExitCode::SUCCESS,
        secs: t0.elapsed().as_secs_f64(),
    });
    let (step, mut counts) = run_tests(&["test", "--workspace"]);
    steps.push(step);
    mpi_steps(&mut steps, &mut counts);
    if !counts.skipped.is_empty() {
        println!(
            "\n== xtask: {} tests skipped at run time (this machine lacks what they need)",
            counts.skipped.len()
        );
        for (test, reason) in &counts.skipped {
            println!("  {test}: {reason}");
        }
    }
    println!("\n== xtask test summary");
    for s in &steps {
        println!(
            "  {:<8} {:<4} {:>7.1}s",
            s.name,
            if s.ok { "ok" } else { "FAIL" },
            s.secs
        );
    }
    let TestCounts {
        passed,
        failed,
        ignored,
        ..
    } = counts;
    let skipped = ignored + counts.skipped.len() as u64;
    println!(
        "  ({} skipped at run time, {ignored} #[ignore]d)",
        counts.skipped.len()
    );
    println!("tests: {passed} passed, {failed} failed, {skipped} skipped");
    if steps.iter().all(|s| s.ok) {
        ExitCode::SUCCESS
    } else {
        let bad: Vec<&str> = steps.iter().filter(|s| !s.ok).map(|s| s.name).collect();
        eprintln!("xtask test FAILED: {}", bad.join(", "));
        ExitCode::FAILURE
    }
}

/// Whether this machine can build and launch the `mpi` feature: an MPI
/// launcher and compiler wrapper on PATH (Debian: mpich, libmpich-dev;
/// OpenMPI's work too).
fn mpi_available() -> bool {
    let runs = |prog: &str, arg: &str| {
        Command::new(prog)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    runs("mpirun", "--version") && runs("mpicc", "--version")
}

/// The `mpi` feature: its lints, and the tests that start `mpirun` (the
/// workspace tests build without it). Where MPI is missing the tests are
/// skipped and listed, except in CI (`CI` set), where that is a failure.
fn mpi_steps(steps: &mut Vec<Step>, counts: &mut TestCounts) {
    if !mpi_available() {
        let reason = "no MPI (mpirun, mpicc): install mpich and libmpich-dev";
        if std::env::var_os("CI").is_some() {
            eprintln!("xtask: CI: {reason}");
            steps.push(Step {
                name: "mpi",
                ok: false,
                secs: 0.0,
            });
        } else {
            counts
                .skipped
                .push(("mpi (feature `mpi` lints and tests)".into(), reason.into()));
        }
        return;
    }
    let features = "residual-train/mpi,residual-cli/mpi";
    let mut clippy = run_step(
        "clippy",
        &[
            "clippy",
            "-p",
            "residual-train",
            "-p",
            "residual-cli",
            "--all-targets",
            "--features",
            features,
            "--",
            "-D",
            "warnings",
        ],
    );
    clippy.name = "mpi lint";
    steps.push(clippy);
    let (mut step, mpi_counts) = run_tests(&[
        "test",
        "-p",
        "residual-cli",
        "--features",
        "mpi",
        "--test",
        "mpi",
    ]);
    step.name = "mpi";
    steps.push(step);
    counts.add(mpi_counts);
}

fn shaders_command() -> ExitCode {
    let dir = shaders::shader_dir();
    eprintln!("\n== xtask: shaders: naga validation of {}", dir.display());
    let listing = shaders::validate_all(&dir);
    let contract = shaders::check_contracts(&dir);
    match (listing, contract) {
        (Ok(listing), Ok(summary)) => {
            print!("{listing}{summary}");
            ExitCode::SUCCESS
        }
        (listing, contract) => {
            for e in [listing.err(), contract.err()].into_iter().flatten() {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn layout_command() -> ExitCode {
    let root = layout::workspace_root();
    eprintln!(
        "\n== xtask: layout: line limit and import circles in {}",
        root.display()
    );
    match layout::check(&root) {
        Ok(report) if report.violations.is_empty() => {
            println!(
                "layout: {} source files within {} lines, no import circles in {} crate roots",
                report.files,
                layout::MAX_LINES,
                report.roots
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            for v in &report.violations {
                eprintln!("{v}");
            }
            eprintln!(
                "layout: {} violations ({} source files, {} crate roots checked)",
                report.violations.len(),
                report.files,
                report.roots
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask layout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &[String]) -> ExitCode {
    // Benchmarks run optimised: hand over to the release-built runner.
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "xtask",
        "--bin",
        "bench-runner",
        "--",
    ])
    .args(args);
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: could not start the bench runner: {e}");
            ExitCode::FAILURE
        }
    }
}
