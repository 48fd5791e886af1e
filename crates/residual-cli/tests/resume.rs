//! `residual train --resume`, end to end: what a resumed run trains, which
//! flags it takes, the data it reads, and how it repairs a run folder that a
//! killed run left behind.

mod common;

use common::*;
use residual_train::schedule::Schedule;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_run_killed_mid_training_resumes_to_its_own_epoch_count_logging_each_epoch_once() {
    let t = Tiny::new();
    let run = t.path("run");
    let args = t.train_args("run", &["--epochs", "100"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_residual"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill -9 once the second epoch's record is written: the run is then
    // somewhere in epoch 3 (training, or saving its checkpoint).
    let t0 = Instant::now();
    while epoch_records_or_empty(&run).len() < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(t0.elapsed() < Duration::from_secs(120), "no epoch in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(epoch_records_or_empty(&run).len() < 100, "killed mid-run");
    // No --epochs: the run goes on to its own 100, not to the default 5.
    let o = t.resume("run", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resumed after epoch"), "{}", stderr(&o));
    assert_eq!(epoch_records(&run), (1..=100).collect::<Vec<u64>>());
    // Step records: each optimizer step once, in order.
    let steps: Vec<u64> = log_records(&run)
        .iter()
        .filter_map(|v| v.get("step").and_then(|s| s.as_u64()))
        .collect();
    assert_eq!(steps, (1..=100 * 8).collect::<Vec<u64>>());
    assert_eq!(
        metadata(&run.join("model.safetensors"))["residual_epoch"],
        "100"
    );
}

#[test]
fn extending_a_run_reshapes_its_schedule_over_the_new_total() {
    let t = Tiny::new();
    let run = t.path("run");
    let o = t.train("run", &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = t.resume("run", &["--epochs", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(epoch_records(&run), [1, 2, 3]);
    // 8 steps per epoch; steps 9..24 run on the one-cycle schedule over 24
    // steps, where they would have been at the old schedule's floor.
    let extended = Schedule::parse("onecycle", 24).unwrap();
    let old = Schedule::parse("onecycle", 8).unwrap();
    for v in log_records(&run).iter().filter(|v| v.get("step").is_some()) {
        let step = v["step"].as_u64().unwrap();
        let lr = v["lr"].as_f64().unwrap() as f32;
        if step > 8 {
            let want = extended.lr(0.1, step - 1);
            assert!(
                (lr - want).abs() <= 1e-6 * want.max(1.0),
                "step {step}: {lr} vs {want}"
            );
        }
    }
    let lr_at_9 = extended.lr(0.1, 8);
    assert!(lr_at_9 > 100.0 * old.lr(0.1, 8), "{lr_at_9}");
    // Fewer epochs than the run completed is refused.
    let o = t.resume("run", &["--epochs", "2"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--epochs") && err.contains("completed 3"),
        "{err}"
    );
}

#[test]
fn resume_refuses_flags_that_change_the_run_and_accepts_its_own() {
    let t = Tiny::new();
    let o = t.train("run", &["--epochs", "1", "--lr", "0.05"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (flags, needle) in [
        (vec!["--lr", "0.2"], "--lr 0.2: the run has 0.05"),
        (vec!["--batch-size", "8"], "--batch-size 8: the run has 4"),
        (vec!["--model", "resnet20"], "--model resnet20"),
        (
            vec!["--optimizer", "adamw"],
            "--optimizer adamw: the run has sgd",
        ),
        (vec!["--schedule", "cosine"], "--schedule cosine"),
        (
            vec!["--weight-decay", "0.001"],
            "--weight-decay 0.001: the run has 0.0005",
        ),
        (vec!["--seed", "3"], "--seed 3: the run has 0"),
        (
            vec!["--norm", "group"],
            "--norm group: the run has norm batch",
        ),
        (vec!["--amp"], "--amp mixed precision"),
        (
            vec!["--data", "cifar10:/x"],
            "--data cifar10: the run has mnist",
        ),
        (vec!["--out", "/tmp"], "--out /tmp"),
    ] {
        let o = t.resume("run", &flags);
        assert!(!o.status.success(), "{flags:?} should be refused");
        let err = stderr(&o);
        assert!(err.contains(needle), "{flags:?}: {err}");
        assert!(err.contains("leave them out"), "{err}");
    }
    // The run's own values are no conflict; nothing is left to train.
    let o = t.resume(
        "run",
        &[
            "--lr",
            "0.05",
            "--batch-size",
            "4",
            "--schedule",
            "onecycle",
            "--weight-decay",
            "5e-4",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("completed its 1 epochs"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_runs_weight_decay_is_recorded_and_kept_on_resume() {
    let t = Tiny::new();
    let o = t.train("run", &["--epochs", "1", "--weight-decay", "0.001"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = t.resume("run", &["--weight-decay", "5e-4"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--weight-decay 0.0005: the run has 0.001"),
        "{}",
        stderr(&o)
    );
    let o = t.resume("run", &["--weight-decay", "0.001"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn resume_reads_the_runs_own_data_and_batch_size() {
    // 32 training digits: the default batch size (64) would not fit them, and
    // the bundled digits would give the model the wrong input size; resume
    // reads neither.
    let t = Tiny::new();
    let o = t.train("run", &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // From another working folder: the data path was recorded absolute.
    let o = Command::new(env!("CARGO_BIN_EXE_residual"))
        .args([
            "train",
            "--resume",
            t.path("run").to_str().unwrap(),
            "--epochs",
            "2",
        ])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("(32 train / 16 test)"),
        "{}",
        stderr(&o)
    );
    // The data moved: --data names its new place (same kind).
    std::fs::rename(t.path("digits"), t.path("moved")).unwrap();
    let moved = format!("mnist:{}", t.path("moved").display());
    let o = t.resume("run", &["--epochs", "3", "--data", &moved]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(epoch_records(&t.path("run")), [1, 2, 3]);
}

#[test]
fn a_folder_left_by_a_kill_between_writes_is_repaired_on_resume() {
    let t = Tiny::new();
    let run = t.path("run");
    let o = t.train("run", &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epoch1_model = std::fs::read(run.join("model.safetensors")).unwrap();
    let o = t.resume("run", &["--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epoch2_model = std::fs::read(run.join("model.safetensors")).unwrap();
    assert_ne!(epoch1_model, epoch2_model);
    // What a kill leaves: the state written, the export not yet (the epoch-1
    // model back in place), a temporary of a dead writer, a torn log line.
    std::fs::write(run.join("model.safetensors"), &epoch1_model).unwrap();
    let stale = run.join(".state.safetensors.tmp-999999999-0");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    let mut log = std::fs::read(run.join("log.jsonl")).unwrap();
    log.extend_from_slice(br#"{"epoch": 2, "step": 17, "lo"#);
    std::fs::write(run.join("log.jsonl"), log).unwrap();
    let o = t.resume("run", &["--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("rewritten from the state"), "{err}");
    assert!(err.contains("removed 1 temporary file"), "{err}");
    assert!(!stale.exists());
    assert_eq!(
        tensors(&std::fs::read(run.join("model.safetensors")).unwrap()),
        tensors(&epoch2_model)
    );
    assert_eq!(
        metadata(&run.join("model.safetensors"))["residual_epoch"],
        "2"
    );
    assert_eq!(epoch_records(&run), [1, 2], "every line whole");
}

#[test]
fn a_corrupt_held_out_image_costs_no_training() {
    // The held-out folder's image has a whole header and cut-off pixels: it
    // opens, and fails only when decoded, after the epoch's checkpoint.
    let dir = tempfile::tempdir().unwrap();
    for (split, n) in [("train", 8u32), ("val", 1)] {
        for class in ["a", "b"] {
            let cdir = dir.path().join(split).join(class);
            std::fs::create_dir_all(&cdir).unwrap();
            for k in 0..n {
                image::RgbImage::from_pixel(20, 20, image::Rgb([(k * 30) as u8, 0, 0]))
                    .save(cdir.join(format!("{k}.png")))
                    .unwrap();
            }
        }
    }
    let bad = dir.path().join("val/b/0.png");
    let png = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &png[..png.len() / 2]).unwrap();
    let run = dir.path().join("run");
    let data = format!("imagefolder:{}", dir.path().join("train").display());
    let o = residual(&[
        "train",
        "--data",
        &data,
        "--val",
        dir.path().join("val").to_str().unwrap(),
        "--image-size",
        "16",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("val/b/0.png"), "{}", stderr(&o));
    assert_eq!(
        metadata(&run.join("model.safetensors"))["residual_epoch"],
        "1"
    );
    assert!(run.join("state.safetensors").is_file());
}
