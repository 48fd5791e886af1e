//! `mpirun -np 2 residual train` (binary built with `--features mpi`): one
//! data-parallel run on the bundled digits, resumed on one process;
//! processes started with different flags refuse to train; a process that
//! hangs ends the job with an error within the timeout. Without the feature, a binary that an
//! MPI launcher started refuses to train alone.

mod common;

use common::stderr;
#[cfg(feature = "mpi")]
use common::{epoch_records, events_files, log_records, step_record_count, Tiny};
use std::process::Command;

#[cfg(not(feature = "mpi"))]
#[test]
fn a_binary_without_mpi_refuses_to_run_under_a_launcher() {
    let o = Command::new(env!("CARGO_BIN_EXE_residual"))
        .args(["train", "--epochs", "1"])
        .env("PMI_SIZE", "2")
        .env("PMI_RANK", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("started this process as one of 2, but this residual was built without MPI")
            && e.contains("--features mpi"),
        "{e}"
    );
}

/// `mpirun` with the flags this machine's MPI needs (OpenMPI refuses to run
/// as root without `--allow-run-as-root`; MPICH needs nothing).
#[cfg(feature = "mpi")]
fn mpirun() -> Command {
    let version = Command::new("mpirun")
        .arg("--version")
        .output()
        .expect("mpirun on PATH (the `mpi` feature's tests need an MPI launcher)");
    let mut cmd = Command::new("mpirun");
    let open_mpi = String::from_utf8_lossy(&version.stdout).contains("Open MPI");
    // SAFETY: geteuid has no preconditions.
    if open_mpi && unsafe { libc::geteuid() } == 0 {
        cmd.arg("--allow-run-as-root");
    }
    cmd
}

#[cfg(feature = "mpi")]
const RESIDUAL: &str = env!("CARGO_BIN_EXE_residual");

#[cfg(feature = "mpi")]
#[test]
fn two_processes_train_one_run_that_one_process_resumes() {
    // Two epochs on two processes at global batch 128, then a third on one.
    let scratch = tempfile::tempdir().unwrap();
    let run = scratch.path().join("run");
    let run_s = run.to_str().unwrap();
    let o = mpirun()
        .args([
            "-np", "2", RESIDUAL, "train", "--epochs", "2", "--out", run_s,
        ])
        .args(["--batch-size", "128"])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("2 processes (MPI"),
        "the header names the processes: {e}"
    );
    assert_eq!(
        e.matches("training resnet20").count(),
        1,
        "one process prints: {e}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.matches("done in").count(), 1, "{stdout}");
    // One writer: one events file, one log whose step records count the
    // global batches.
    assert_eq!(events_files(&run), 1, "one events file");
    assert!(run.join("state.safetensors").is_file());
    assert_eq!(epoch_records(&run), vec![1, 2]);
    assert_eq!(
        step_record_count(&run),
        2 * (7996 / 128),
        "one record per global step"
    );
    let records = log_records(&run);
    let acc = |records: &[serde_json::Value], epoch: u64| -> f64 {
        records
            .iter()
            .find(|r| r.get("test_acc").is_some() && r["epoch"].as_u64() == Some(epoch))
            .and_then(|r| r["test_acc"].as_f64())
            .unwrap()
    };
    let after_two = acc(&records, 2);
    assert!(
        after_two >= 0.95,
        "held-out accuracy after 2 epochs: {after_two}"
    );

    // The same run, extended by an epoch on one process.
    let o = Command::new(RESIDUAL)
        .args(["train", "--resume", run_s, "--epochs", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(epoch_records(&run), vec![1, 2, 3]);
    assert_eq!(
        step_record_count(&run),
        3 * (7996 / 128),
        "the step count goes on"
    );
    let records = log_records(&run);
    let after_three = acc(&records, 3);
    assert!(
        after_three >= 0.95,
        "after the resumed epoch: {after_three}"
    );
}

#[cfg(feature = "mpi")]
#[test]
fn processes_started_with_different_flags_refuse_to_train() {
    let tiny = Tiny::new();
    let rank = |lr: &str| -> Vec<String> {
        let mut a = vec![RESIDUAL.to_string()];
        a.extend(tiny.train_args("run", &["--epochs", "1", "--lr", lr]));
        a
    };
    let o = mpirun()
        .args(["-np", "1"])
        .args(rank("0.1"))
        .arg(":")
        .args(["-np", "1"])
        .args(rank("0.2"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("the ranks were started with different configurations"),
        "{e}"
    );
    assert!(
        e.contains("lr (0.20000000298023224 here, 0.10000000149011612 on rank 0)"),
        "{e}"
    );
    assert!(
        !tiny.path("run").join("state.safetensors").exists(),
        "nothing trained"
    );
}

/// The pid of the process whose environment says it is MPI rank `rank` and
/// whose command line names `marker`.
#[cfg(all(feature = "mpi", target_os = "linux"))]
fn rank_pid(rank: usize, marker: &str) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let environ = std::fs::read(e.path().join("environ")).ok()?;
            let has = |bytes: &[u8], s: &str| bytes.split(|b| *b == 0).any(|w| w == s.as_bytes());
            let named = String::from_utf8_lossy(&cmdline).contains(marker);
            // MPICH's and OpenMPI's names for it.
            let ranked = has(&environ, &format!("PMI_RANK={rank}"))
                || has(&environ, &format!("OMPI_COMM_WORLD_RANK={rank}"));
            (named && ranked).then_some(pid)
        })
}

#[cfg(all(feature = "mpi", target_os = "linux"))]
#[test]
fn a_process_that_hangs_ends_the_job_with_an_error() {
    use std::time::{Duration, Instant};
    let scratch = tempfile::tempdir().unwrap();
    let run = scratch.path().join("hanging-run");
    let run_s = run.to_str().unwrap().to_string();
    let job = mpirun()
        .args([
            "-np", "2", RESIDUAL, "train", "--epochs", "1", "--out", &run_s,
        ])
        .args(["--collective-timeout", "10"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once training has begun (step records in the log), rank 1 stops.
    let t0 = Instant::now();
    while std::fs::read_to_string(run.join("log.jsonl")).map_or(true, |l| l.lines().count() < 2) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = rank_pid(1, &run_s).expect("rank 1's process");
    // SAFETY: signals a process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let stopped = Instant::now();
    let out = job.wait_with_output().unwrap();
    let waited = stopped.elapsed();
    let e = stderr(&out);
    assert!(!out.status.success(), "{e}");
    // The operation rank 0 waits in depends on where rank 1 stopped
    // (a step's buffer broadcast, its all-reduces).
    let timed_out = e
        .lines()
        .any(|l| l.contains("error: rank 0 of 2: ") && l.contains(" did not complete within 10s"));
    assert!(timed_out, "{e}");
    assert!(
        waited < Duration::from_secs(60),
        "ended {waited:?} after rank 1 stopped"
    );
    // The launcher's kill is delivered when it exits, but a process with
    // many threads takes a moment to be torn down (seen under load in CI):
    // a rank left behind stays stopped, so a few seconds tell them apart.
    let ended = Instant::now();
    while rank_pid(1, &run_s).is_some() {
        assert!(
            ended.elapsed() < Duration::from_secs(10),
            "the stopped rank was not ended with the job"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
