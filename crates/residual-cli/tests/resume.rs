//! `residual train --resume`, end to end: what a resumed run trains, which
//! flags it takes, the data it reads, and how it repairs a run folder that a
//! killed run left behind.

use residual_train::schedule::Schedule;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn residual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_residual"))
        .args(args)
        .output()
        .expect("run residual")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny run: 32 training and 16 held-out 8x8 digits (IDX files), a
/// two-stage ResNet of width 4 and 8 from a config file.
struct Tiny {
    dir: tempfile::TempDir,
}

impl Tiny {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("residual-resume-tests-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("digits");
        std::fs::create_dir_all(&data).unwrap();
        write_idx(&data, "train", 32);
        write_idx(&data, "t10k", 16);
        std::fs::write(
            dir.path().join("tiny.toml"),
            "family = \"resnet\"\nblock = \"basic\"\nlayers = [1, 1]\nwidths = [4, 8]\nstem = \"cifar\"\nstem_width = 4\nnum_classes = 10\n",
        )
        .unwrap();
        Tiny { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn data(&self) -> String {
        format!("mnist:{}", self.path("digits").display())
    }

    /// `residual train` on the tiny data and model into `run`, batch 4, and `extra`.
    fn train_args(&self, run: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "train",
            "--data",
            &self.data(),
            "--model",
            self.path("tiny.toml").to_str().unwrap(),
            "--batch-size",
            "4",
            "--out",
            self.path(run).to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn train(&self, run: &str, extra: &[&str]) -> Output {
        let args = self.train_args(run, extra);
        residual(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn resume(&self, run: &str, extra: &[&str]) -> Output {
        let mut args = vec!["train", "--resume"];
        let dir = self.path(run);
        args.push(dir.to_str().unwrap());
        args.extend(extra);
        residual(&args)
    }
}

/// Writes an IDX3 file of `n` 8x8 images (a bright pixel whose place depends
/// on the label) and its IDX1 labels.
fn write_idx(dir: &Path, prefix: &str, n: u32) {
    let mut img = Vec::new();
    for x in [0x0803u32, n, 8, 8] {
        img.extend(x.to_be_bytes());
    }
    for i in 0..n {
        let mut pixels = [0u8; 64];
        pixels[(i % 10) as usize * 6] = 255;
        img.extend(pixels);
    }
    let mut lab = Vec::new();
    for x in [0x0801u32, n] {
        lab.extend(x.to_be_bytes());
    }
    lab.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
}

/// The records of a run's log.
fn log_records(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The epochs of the log's epoch records, in order.
fn epoch_records(run: &Path) -> Vec<u64> {
    log_records(run)
        .iter()
        .filter(|v| v.get("test_acc").is_some())
        .map(|v| v["epoch"].as_u64().unwrap())
        .collect()
}

/// The string metadata of a safetensors file.
fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    md.metadata().clone().unwrap_or_default()
}

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

fn epoch_records_or_empty(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("test_acc").is_some())
        .filter_map(|v| v["epoch"].as_u64())
        .collect()
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

/// The tensors of a safetensors file: name, shape and bytes.
fn tensors(bytes: &[u8]) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    out.sort();
    out
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
