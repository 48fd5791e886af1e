//! Crash safety of `residual train`, with real processes: a crash at every
//! named point of a save, kill -9 at random moments, Ctrl-C, a second writer,
//! a disk that fills up, a diverging run. After each, the run folder loads and
//! `--resume` finishes the run with every epoch and step logged once.

#![cfg(unix)]

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Spawns `residual` with `args`, output discarded.
fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_residual"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the run's log holds at least `steps` step records (the child
/// still running), at most 120 s.
fn wait_for_steps(child: &mut Child, run: &Path, steps: usize) {
    let t0 = Instant::now();
    loop {
        let logged = std::fs::read_to_string(run.join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"step\""))
            .count();
        if logged >= steps {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Checks what a crash left: no temporaries will trip the next run, the
/// checkpoint's header reads, and its exported model evaluates.
fn folder_loads(t: &Tiny, run: &Path) {
    let meta = residual_train::checkpoint::read_meta(run).unwrap();
    assert!(meta.epoch <= 3);
    let o = residual(&[
        "eval",
        "--model",
        run.join("model.json").to_str().unwrap(),
        "--weights",
        run.join("model.safetensors").to_str().unwrap(),
        "--data",
        &t.data(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Resumes the run to its end and checks the log: each epoch 1..=3 and each
/// step 1..=24 once, the export current, no temporary left.
fn resume_to_the_end(t: &Tiny, run: &Path) {
    let o = t.resume("run", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(epoch_records(run), [1, 2, 3]);
    let steps: Vec<u64> = log_records(run)
        .iter()
        .filter_map(|v| v.get("step").and_then(|s| s.as_u64()))
        .collect();
    assert_eq!(steps, (1..=24).collect::<Vec<u64>>());
    assert_eq!(
        metadata(&run.join("model.safetensors"))["residual_epoch"],
        "3"
    );
    let stray: Vec<String> = std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn a_crash_at_every_point_of_a_save_leaves_a_folder_that_loads_and_resumes() {
    for point in [
        "before-rename:state.safetensors@2",
        "after-rename:state.safetensors@2",
        "before-rename:model.safetensors@2",
        "after-rename:model.safetensors@2",
        "before-rename:model.json@2",
        "after-rename:model.json@2",
        "before-rename:model_best.safetensors@1",
        "epoch-saved@2",
        "epoch-evaluated@2",
        "step-logged@13",
    ] {
        let t = Tiny::new();
        let run = t.path("run");
        let args = t.train_args("run", &["--epochs", "3"]);
        let o = Command::new(env!("CARGO_BIN_EXE_residual"))
            .args(&args)
            .env(residual_nn::weights::CRASH_AT_ENV, point)
            .output()
            .unwrap();
        assert!(
            o.status.code().is_none() && stderr(&o).contains("crashing at"),
            "{point}: the run should have crashed there: {}",
            stderr(&o)
        );
        folder_loads(&t, &run);
        resume_to_the_end(&t, &run);
    }
}

#[test]
fn kill_9_at_random_moments_never_costs_the_folder() {
    let t = Tiny::new();
    let run = t.path("run");
    let mut rng = residual_tensor::rng::hash64(7, 0);
    for kill in 0..6u64 {
        let args = if run.join("state.safetensors").exists() {
            let mut a = vec!["train".to_string(), "--resume".into()];
            a.push(run.to_str().unwrap().into());
            a
        } else {
            t.train_args("run", &["--epochs", "3"])
        };
        let mut child = spawn(&args);
        rng = residual_tensor::rng::hash64(rng, kill);
        std::thread::sleep(Duration::from_millis(40 + rng % 400));
        let _ = child.kill();
        child.wait().unwrap();
        if run.join("state.safetensors").exists() {
            folder_loads(&t, &run);
        }
    }
    if !run.join("state.safetensors").exists() {
        let o = t.train("run", &["--epochs", "1"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = t.resume("run", &["--epochs", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(epoch_records(&run), [1, 2, 3]);
}

/// Sends `signal` to the child.
fn signal(child: &Child, signal: i32) {
    // SAFETY: sends a signal to a process this test started and has not reaped.
    let r = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(r, 0, "kill failed");
}

#[test]
fn ctrl_c_finishes_the_step_saves_and_the_resumed_run_ends_bit_identical() {
    let t = Tiny::new();
    let o = t.train("straight", &["--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let run = t.path("run");
        let _ = std::fs::remove_dir_all(&run);
        let mut child = spawn(&t.train_args("run", &["--epochs", "2"]));
        wait_for_steps(&mut child, &run, 3);
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(130), "{err}");
        let resume = format!("resume with: residual train --resume {}", run.display());
        assert!(
            err.contains("interrupted at step") && err.contains(&resume),
            "{err}"
        );
        let meta = residual_train::checkpoint::read_meta(&run).unwrap();
        assert!(
            meta.optimizer_step >= 3 && meta.optimizer_step < 16,
            "{meta:?}"
        );
        let o = t.resume("run", &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let steps: Vec<u64> = log_records(&run)
            .iter()
            .filter_map(|v| v.get("step").and_then(|s| s.as_u64()))
            .collect();
        assert_eq!(steps, (1..=16).collect::<Vec<u64>>());
        assert_eq!(epoch_records(&run), [1, 2]);
        let weights =
            |r: &str| tensors(&std::fs::read(t.path(r).join("model.safetensors")).unwrap());
        assert_eq!(
            weights("run"),
            weights("straight"),
            "bit-identical to the straight run"
        );
    }
}

#[test]
fn a_second_writer_is_refused_and_a_killed_runs_lock_is_freed() {
    let t = Tiny::new();
    let run = t.path("run");
    let mut first = spawn(&t.train_args("run", &["--epochs", "500"]));
    // Once its first checkpoint is written (one epoch is 8 steps).
    wait_for_steps(&mut first, &run, 10);
    let o = t.train("run", &["--epochs", "1"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("in use by another `residual train`")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    let o = t.resume("run", &["--epochs", "500"]);
    assert!(
        !o.status.success() && stderr(&o).contains("in use"),
        "{}",
        stderr(&o)
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // The kernel released the dead run's lock: the folder is free again (a
    // resume to where the run is trains nothing and ends at once).
    let done = residual_train::checkpoint::read_meta(&run).unwrap().epoch;
    let o = t.resume("run", &["--epochs", &done.max(1).to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_save_that_runs_out_of_space_fails_clearly_and_keeps_the_previous_checkpoint() {
    use std::os::unix::process::CommandExt;
    let t = Tiny::new();
    let run = t.path("run");
    let o = t.train("run", &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let state_before = std::fs::read(run.join("state.safetensors")).unwrap();
    let model_before = std::fs::read(run.join("model.safetensors")).unwrap();
    // The next save cannot write a file as large as the state: the disk is
    // "full" for it (EFBIG from RLIMIT_FSIZE; SIGXFSZ ignored, as a full disk
    // gives ENOSPC and no signal).
    let limit = (state_before.len() / 2) as libc::rlim_t;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_residual"));
    cmd.args(["train", "--resume", run.to_str().unwrap(), "--epochs", "2"]);
    // SAFETY: between fork and exec, only async-signal-safe calls: signal
    // and setrlimit.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("state.safetensors") && err.contains("File too large"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(run.join("state.safetensors")).unwrap(),
        state_before
    );
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        model_before
    );
    let stray: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")
        })
        .collect();
    assert!(stray.is_empty(), "the failed write removed its temporary");
    // With space again, the run goes on from the kept checkpoint.
    let o = t.resume("run", &["--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(epoch_records(&run), [1, 2]);
}

#[test]
fn a_diverging_run_stops_naming_the_step_loss_rate_and_layer() {
    let t = Tiny::new();
    let run = t.path("run");
    let o = t.train(
        "run",
        &["--epochs", "2", "--lr", "1e30", "--schedule", "constant"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for part in [
        "diverged at step",
        "at learning rate 1",
        "the first non-finite gradient",
        "last checkpoint is the last good one",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(
        !run.join("state.safetensors").exists(),
        "nothing from a diverged epoch is saved"
    );
}
