//! The `residual` binary, end to end.

use residual_nn::weights::{read_tensors, save_safetensors, write_tensors};
use residual_nn::{Mode, Module};
use residual_tensor::{Device, Tensor};
use residual_zoo::{build, ModelOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn residual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_residual"))
        .args(args)
        .output()
        .expect("run residual")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("residual-cli-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn summary_prints_the_table() {
    let o = residual(&["summary", "resnet18"]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!("summary_resnet18_cli", String::from_utf8_lossy(&o.stdout));
    let o = residual(&["summary", "resnet20", "--input", "1x28x28"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("resnet20 (input 1x28x28)"));
}

#[test]
fn summary_rejects_bad_names_and_sizes() {
    let o = residual(&["summary", "resnet19"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown model \"resnet19\""),
        "{}",
        stderr(&o)
    );
    let o = residual(&["summary", "resnet50", "--input", "3x0x224"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("CxHxW"), "{}", stderr(&o));
}

/// `residual predict --model resnet18 --weights W --input I --output O [extra...]`.
fn predict(weights: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let (w, i, o) = (
        weights.to_str().unwrap(),
        input.to_str().unwrap(),
        output.to_str().unwrap(),
    );
    let mut args = vec![
        "predict",
        "--model",
        "resnet18",
        "--weights",
        w,
        "--input",
        i,
        "--output",
        o,
    ];
    args.extend_from_slice(extra);
    residual(&args)
}

#[test]
fn predict_matches_the_library_and_reports_bad_input() {
    let dev = Device::cpu();
    let opts = ModelOptions {
        num_classes: Some(5),
        ..Default::default()
    };
    let model = build("resnet18", opts, 9, &dev).unwrap();
    let weights = tmp("r18.safetensors");
    save_safetensors(&model, &weights).unwrap();
    let x = Tensor::randn([2, 3, 32, 32], 0.0, 1.0, 4, &dev).unwrap();
    let input = tmp("x.safetensors");
    write_tensors(&input, &[("input".into(), x.clone())]).unwrap();
    let output = tmp("y.safetensors");
    let o = predict(&weights, &input, &output, &["--classes", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let y = read_tensors(&output, &dev).unwrap()["output"]
        .to_vec()
        .unwrap();
    let want = model.forward(&x, Mode::Eval).unwrap().to_vec().unwrap();
    assert_eq!(y, want);

    let other = tmp("other.safetensors");
    write_tensors(&other, &[("images".into(), x.clone())]).unwrap();
    let flat = tmp("flat.safetensors");
    write_tensors(&flat, &[("input".into(), x.reshape(&[2, 3072]).unwrap())]).unwrap();
    let garbage = tmp("garbage.safetensors");
    std::fs::write(&garbage, b"garbage").unwrap();
    let missing = PathBuf::from("/no/such.safetensors");
    let cases: [(&Path, &Path, &[&str]); 5] = [
        // Weights for 5 classes into the default 1000-class head: the strict load names the keys.
        (&weights, &input, &["fc.weight", "[5, 512]"]),
        (&missing, &input, &["/no/such.safetensors"]),
        (&weights, &other, &["no tensor named \"input\"", "images"]),
        (&weights, &flat, &["[N, C, H, W]", "[2, 3072]"]),
        (&weights, &garbage, &["not a valid safetensors file"]),
    ];
    for (w, i, needles) in cases {
        let o = predict(w, i, &output, &[]);
        assert!(
            !o.status.success(),
            "{} {} should fail",
            w.display(),
            i.display()
        );
        for n in needles {
            assert!(stderr(&o).contains(n), "{n}: {}", stderr(&o));
        }
    }
}

#[test]
fn train_rejects_bad_flags_with_clear_errors() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["train", "--data", "cifar10:/x"],
            "expected mnist or mnist:DIR",
        ),
        (
            &["train", "--data", "mnist:/no/such/dir"],
            "train-images-idx3-ubyte",
        ),
        (&["train", "--batch-size", "0"], "--batch-size"),
        (&["train", "--freeze-bn", "--norm", "group"], "--freeze-bn"),
        (&["train", "--schedule", "sometimes"], "cannot parse"),
        (
            &["train", "--resume", "/no/such/run"],
            "/no/such/run/state.safetensors",
        ),
    ];
    for (args, needle) in cases {
        let o = residual(args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let o = residual(&["train", "--optimizer", "rmsprop"]);
    assert!(!o.status.success() && stderr(&o).contains("rmsprop"));
    let o = residual(&["train", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--model",
        "--data",
        "--epochs",
        "--batch-size",
        "--lr",
        "--optimizer",
        "--schedule",
        "--clip-grad-norm",
        "--freeze-bn",
        "--norm",
        "--act",
        "--seed",
        "--out",
        "--resume",
    ] {
        assert!(help.contains(flag), "--help documents {flag}");
    }
}

#[test]
fn eval_reports_accuracy_and_rejects_foreign_weights() {
    let dev = Device::cpu();
    let opts = ModelOptions {
        in_channels: Some(1),
        ..Default::default()
    };
    let model = build("resnet20", opts, 1, &dev).unwrap();
    let weights = tmp("r20.safetensors");
    save_safetensors(&model, &weights).unwrap();
    let w = weights.to_str().unwrap();
    let o = residual(&["eval", "--model", "resnet20", "--weights", w]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("2004 test samples") && out.contains("accuracy"),
        "{out}"
    );
    let o = residual(&["eval", "--model", "resnet32", "--weights", w]);
    assert!(
        !o.status.success() && stderr(&o).contains("layer1.3.conv1.weight"),
        "{}",
        stderr(&o)
    );
}
