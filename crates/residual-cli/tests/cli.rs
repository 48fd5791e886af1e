//! The `residual` binary, end to end.

mod common;

use common::{residual, stderr};

use residual_nn::weights::{read_tensors, save_safetensors, write_tensors};
use residual_nn::{Mode, Module};
use residual_tensor::{Device, Tensor};
use residual_zoo::{create, ModelOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh folder for one test's files, removed when the test ends.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("residual-cli-tests-")
        .tempdir()
        .expect("create a temporary folder")
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
    let dir = scratch();
    let tmp = |name: &str| dir.path().join(name);
    let dev = Device::cpu();
    let opts = ModelOptions {
        num_classes: Some(5),
        ..Default::default()
    };
    let model = create("resnet18", &opts, 9, &dev).unwrap();
    let weights = tmp("r18.safetensors");
    save_safetensors(&*model, &weights).unwrap();
    let x = Tensor::randn([2, 3, 32, 32], 0.0, 1.0, 4, &dev).unwrap();
    let input = tmp("x.safetensors");
    write_tensors(&input, &[("input".into(), x.clone())]).unwrap();
    let output = tmp("y.safetensors");
    let o = predict(&weights, &input, &output, &["--classes", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let y = read_tensors(&output, &dev).unwrap()["output"]
        .to_vec()
        .unwrap();
    // predict runs the library's inference pass (folded batch norm) ...
    let fused = residual_zoo::inference(&*model).unwrap();
    let want = residual_tensor::no_grad(|| fused.forward(&x, Mode::Eval))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(y, want);
    // ... which agrees with the model's own evaluation-mode forward.
    let plain = model.forward(&x, Mode::Eval).unwrap().to_vec().unwrap();
    let scale = plain.iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = y
        .iter()
        .zip(&plain)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        diff <= 1e-5 * scale,
        "folded and plain forwards differ by {diff}"
    );
    // --precision bf16 runs the library's bf16 pass, and writes f32 logits.
    let o = predict(
        &weights,
        &input,
        &output,
        &["--classes", "5", "--precision", "bf16"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let y16 = &read_tensors(&output, &dev).unwrap()["output"];
    assert_eq!(y16.dtype(), residual_tensor::DType::F32);
    let bf16 = residual_zoo::inference_at(&*model, residual_zoo::Precision::Bf16).unwrap();
    let want = residual_tensor::no_grad(|| bf16.forward(&x, Mode::Eval)).unwrap();
    assert_eq!(y16.to_vec().unwrap(), want.to_vec().unwrap());
    // An output path that is the weights or the input file is refused, and
    // the file is left as it was.
    for victim in [&weights, &input] {
        let before = std::fs::read(victim).unwrap();
        let o = predict(&weights, &input, victim, &["--classes", "5"]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("would overwrite"), "{}", stderr(&o));
        assert_eq!(std::fs::read(victim).unwrap(), before);
    }

    let other = tmp("other.safetensors");
    write_tensors(&other, &[("images".into(), x.clone())]).unwrap();
    let flat = tmp("flat.safetensors");
    write_tensors(&flat, &[("input".into(), x.reshape(&[2, 3072]).unwrap())]).unwrap();
    let garbage = tmp("garbage.safetensors");
    std::fs::write(&garbage, b"garbage").unwrap();
    let missing = PathBuf::from("/no/such.safetensors");
    let grey = tmp("grey.safetensors");
    write_tensors(&grey, &[("input".into(), x.narrow(1, 0, 1).unwrap())]).unwrap();
    let cases: [(&Path, &Path, &[&str]); 6] = [
        // Weights for 5 classes into the default 1000-class head: the strict load names the keys.
        (&weights, &input, &["fc.weight", "[5, 512]"]),
        // A 1-channel input for 3-channel weights: the input is named, not the weights.
        (
            &weights,
            &grey,
            &[
                "the input tensor has 1 channel(s)",
                "3-channel",
                "conv1.weight",
            ],
        ),
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
fn predict_classifies_image_files_like_the_library() {
    let dir = scratch();
    let tmp = |name: &str| dir.path().join(name);
    let dev = Device::cpu();
    let opts = ModelOptions {
        num_classes: Some(3),
        ..Default::default()
    };
    let model = create("resnet18", &opts, 5, &dev).unwrap();
    let weights = tmp("r18_3.safetensors");
    save_safetensors(&model, &weights).unwrap();
    let (a, b) = (tmp("a.png"), tmp("b.jpg"));
    image::RgbImage::from_fn(96, 80, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 3) as u8, 90])
    })
    .save(&a)
    .unwrap();
    image::RgbImage::from_fn(40, 60, |x, y| image::Rgb([200, (x * y % 255) as u8, 10]))
        .save(&b)
        .unwrap();
    let labels = tmp("labels.txt");
    std::fs::write(&labels, "apple\nbanana\ncherry\n").unwrap();
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "predict",
            "--model",
            "resnet18",
            "--weights",
            weights.to_str().unwrap(),
            "--classes",
            "3",
            "--image",
            a.to_str().unwrap(),
            "--image",
            b.to_str().unwrap(),
            "--image-size",
            "32",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let o = residual(
        &args(&["--labels", labels.to_str().unwrap(), "--top-k", "2"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    // The library on the same files, as `residual train` evaluates them: the
    // large image (shorter side 80) resized to 36 (32 * 256 / 224), the small
    // one (shorter side 40) left at its size, both center-cropped to 32, then
    // ImageNet normalisation.
    let norm = residual_train::data::Transform::Normalize {
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
    };
    let mut px = Vec::new();
    for (f, resize) in [(&a, 36), (&b, 32)] {
        let mut img = residual_train::data::load_image(f, resize, 32).unwrap();
        norm.apply(&mut img, [3, 32, 32], 0);
        px.extend(img);
    }
    let x = Tensor::from_vec(px, [2, 3, 32, 32], &dev).unwrap();
    let p = model
        .forward(&x, Mode::Eval)
        .unwrap()
        .softmax(1)
        .unwrap()
        .to_vec()
        .unwrap();
    let names = ["apple", "banana", "cherry"];
    for (i, f) in [&a, &b].iter().enumerate() {
        let row = &p[i * 3..(i + 1) * 3];
        let top = (0..3).max_by(|&u, &v| row[u].total_cmp(&row[v])).unwrap();
        let block = out.split(&format!("{}:", f.display())).nth(1).unwrap();
        let first = block.lines().nth(1).unwrap();
        assert!(
            first.contains(names[top]) && first.contains(&format!("{:.2}%", 100.0 * row[top])),
            "{first} (want {} {:.2}%)\n{out}",
            names[top],
            100.0 * row[top]
        );
        assert_eq!(block.lines().filter(|l| l.contains('%')).count().min(2), 2);
    }
    // Bad inputs.
    let bad_labels = tmp("labels2.txt");
    std::fs::write(&bad_labels, "one\ntwo\n").unwrap();
    let not_image = tmp("not_image.png");
    std::fs::write(&not_image, b"plain text").unwrap();
    let cases: [(Vec<String>, &str); 3] = [
        (
            args(&["--labels", bad_labels.to_str().unwrap()]),
            "2 class names; the model has 3",
        ),
        (
            args(&["--image", not_image.to_str().unwrap()]),
            "not_image.png",
        ),
        (args(&["--top-k", "0"]), "--top-k"),
    ];
    for (argv, needle) in cases {
        let o = residual(&argv.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            !o.status.success() && stderr(&o).contains(needle),
            "{needle}: {}",
            stderr(&o)
        );
    }
    let o = residual(&[
        "predict",
        "--model",
        "resnet18",
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--image"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn train_rejects_bad_flags_with_clear_errors() {
    let cases: [(&[&str], &str); 27] = [
        (&["train", "--val", "/x"], "--val"),
        (
            &["train", "--lr", "-1"],
            "--lr: invalid argument: must be a finite number > 0, got -1",
        ),
        (
            &["train", "--lr", "inf"],
            "--lr: invalid argument: must be a finite number > 0, got inf",
        ),
        (&["train", "--lr", "nan"], "--lr"),
        (&["train", "--schedule", "step:0:0.1"], "SIZE"),
        (&["train", "--schedule", "step:1:inf"], "GAMMA"),
        (&["train", "--epochs", "4611686018427387904"], "--epochs"),
        (
            &["train", "--data", "imagefolder:/no/such/images"],
            "/no/such/images",
        ),
        (
            &["train", "--data", "cifar10:/no/such/dir"],
            "/no/such/dir/data_batch_1.bin",
        ),
        (
            &["train", "--data", "imagenet:/x"],
            "expected mnist, mnist:DIR, cifar10:DIR, cifar100:DIR or imagefolder:DIR",
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
        (
            &["train", "--out", "/etc/hostname"],
            "is a file, not a folder",
        ),
        (
            &["train", "--image-size", "64"],
            "--image-size: invalid argument: applies to --data imagefolder:DIR only",
        ),
        (&["train", "--data", "imagefolder:"], "names no folder"),
        (&["train", "--data", "cifar10:"], "expected cifar10:DIR"),
        (
            &["train", "--epochs", "0"],
            "invalid value '0' for '--epochs <EPOCHS>': must be at least 1, got 0",
        ),
        (
            &["train", "--epochs", "-3"],
            "invalid value '-3' for '--epochs <EPOCHS>': must be at least 1, got -3",
        ),
        (
            &["train", "--epochs", "2.5"],
            "invalid value '2.5' for '--epochs <EPOCHS>': expected a whole number >= 1",
        ),
        (
            &["train", "--batch-size", "-1"],
            "invalid value '-1' for '--batch-size <BATCH_SIZE>': must be at least 1, got -1",
        ),
        (
            &["train", "--label-smoothing", "nan"],
            "--label-smoothing must be in [0, 1], got NaN",
        ),
        (
            &["train", "--clip-grad-norm", "0"],
            "--clip-grad-norm: invalid argument: must be a number > 0, got 0",
        ),
        (
            &["train", "--precise-bn", "10"],
            "--precise-bn: invalid argument: 10 images is less than one batch (64)",
        ),
        (
            &["train", "--weight-decay", "-1e-4"],
            "--weight-decay: invalid argument: must be a finite number >= 0, got -0.0001",
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
        "--weight-decay",
        "--schedule",
        "--clip-grad-norm",
        "--freeze-bn",
        "--norm",
        "--act",
        "--seed",
        "--out",
        "--resume",
        "--device",
    ] {
        assert!(help.contains(flag), "--help documents {flag}");
    }
    let o = residual(&["train", "--device", "tpu"]);
    assert!(
        !o.status.success() && stderr(&o).contains("tpu"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn experiment_rejects_bad_flags_with_clear_errors() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["experiment", "degradation", "--depths", "20"],
            "expected two depths",
        ),
        (
            &["experiment", "degradation", "--depths", "20,deep"],
            "expected two depths like 20,56",
        ),
        (&["experiment", "degradation", "--depths", "20,57"], "57"),
    ];
    for (args, needle) in cases {
        let o = residual(args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let o = residual(&["experiment", "nonsense"]);
    assert!(!o.status.success());
}

#[test]
fn eval_reports_accuracy_and_rejects_foreign_weights() {
    let dir = scratch();
    let tmp = |name: &str| dir.path().join(name);
    let dev = Device::cpu();
    let opts = ModelOptions {
        in_channels: Some(1),
        ..Default::default()
    };
    let model = create("resnet20", &opts, 1, &dev).unwrap();
    let weights = tmp("r20.safetensors");
    save_safetensors(&*model, &weights).unwrap();
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
    // 3-channel weights on the 1-channel digits: the data is named.
    let rgb = create("resnet20", &ModelOptions::default(), 1, &dev).unwrap();
    let rgb_weights = tmp("rgb.safetensors");
    save_safetensors(&*rgb, &rgb_weights).unwrap();
    let o = residual(&[
        "eval",
        "--model",
        "resnet20",
        "--weights",
        rgb_weights.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("the mnist data has 1 channel(s)") && err.contains("3-channel"),
        "{err}"
    );
}

#[test]
fn eval_at_bf16_reports_its_agreement_with_f32() {
    let dir = scratch();
    let opts = ModelOptions {
        in_channels: Some(1),
        ..Default::default()
    };
    let model = create("resnet20", &opts, 1, &Device::cpu()).unwrap();
    let weights = dir.path().join("r20.safetensors");
    save_safetensors(&*model, &weights).unwrap();
    let w = weights.to_str().unwrap();
    let args = ["eval", "--model", "resnet20", "--weights", w, "--precision"];
    let o = residual(&[&args[..], &["bf16"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("(2004 test samples) at bf16: accuracy")
            && out.contains("against f32 (accuracy")
            && out.contains("of 2004 samples")
            && out.contains("max |logit difference|"),
        "{out}"
    );
    let o = residual(&[&args[..], &["fp16"]].concat());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("f32, bf16"), "{}", stderr(&o));
}

/// Writes `dir/images/{red,blue}/k.png`, `per_class` images of varied sizes
/// each (a red or a blue block on grey), and returns the `--data` value.
fn image_folder(dir: &Path, per_class: u32) -> String {
    for (class, colour) in [("red", [220u8, 30, 30]), ("blue", [30u8, 30, 220])] {
        let cdir = dir.join("images").join(class);
        std::fs::create_dir_all(&cdir).unwrap();
        for k in 0..per_class {
            let img = image::RgbImage::from_fn(48 + k, 40, |x, y| {
                if (10..30).contains(&x) && (8..30).contains(&y) {
                    image::Rgb(colour)
                } else {
                    image::Rgb([(7 * k) as u8; 3])
                }
            });
            img.save(cdir.join(format!("{k}.png"))).unwrap();
        }
    }
    format!("imagefolder:{}", dir.join("images").display())
}

#[test]
fn train_runs_on_an_image_folder() {
    let dir = scratch();
    let data = image_folder(dir.path(), 10);
    let out = dir.path().join("run");
    let o = residual(&[
        "train",
        "--data",
        &data,
        "--image-size",
        "32",
        "--model",
        "resnet20",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(printed.contains("18 train / 2 test"), "{printed}");
    assert!(printed.contains("(2 images)"), "{printed}");
    for f in [
        "model.safetensors",
        "state.safetensors",
        "log.jsonl",
        "curves.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} in the run folder");
    }
}

#[test]
fn train_and_summary_take_a_model_config_file() {
    let dir = scratch();
    let data = image_folder(dir.path(), 4);
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        "family = \"resnet\"\nblock = \"basic\"\nlayers = [1, 1]\nwidths = [4, 8]\nstem = \"cifar\"\nstem_width = 4\nnum_classes = 2\n",
    )
    .unwrap();
    let model = config.to_str().unwrap();
    let o = residual(&["summary", model, "--input", "3x16x16"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("layer2.0") && table.contains("BasicBlock"),
        "{table}"
    );
    let out = dir.path().join("run");
    let o = residual(&[
        "train",
        "--data",
        &data,
        "--image-size",
        "16",
        "--model",
        model,
        "--norm",
        "group",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("tiny.toml"), "{}", stderr(&o));
    let weights = out.join("model.safetensors");
    let names: Vec<String> = read_tensors(&weights, &Device::cpu())
        .unwrap()
        .into_keys()
        .collect();
    assert!(
        names.contains(&"layer2.0.downsample.0.weight".to_string()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("running_mean")),
        "--norm group applied: {names:?}"
    );
    // The run folder's model.json rebuilds the model the weights belong to.
    let run_model = out.join("model.json");
    let o = residual(&[
        "eval",
        "--model",
        run_model.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--data",
        &data,
        "--image-size",
        "16",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("accuracy"));
    // --freeze-bn is refused over group norm, from the file ...
    std::fs::write(
        &config,
        "family = \"resnet\"\nblock = \"basic\"\nlayers = [1]\nwidths = [4]\nstem = \"cifar\"\nstem_width = 4\nnum_classes = 2\nnorm = \"group\"\n",
    )
    .unwrap();
    let o = residual(&[
        "train",
        "--data",
        &data,
        "--model",
        model,
        "--freeze-bn",
        "--epochs",
        "1",
        "--batch-size",
        "2",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--freeze-bn") && stderr(&o).contains("group norm"),
        "{}",
        stderr(&o)
    );
    // ... and from the flag.
    let o = residual(&[
        "train",
        "--data",
        &data,
        "--model",
        "resnet20",
        "--act",
        "gelu",
        "--norm",
        "group",
        "--freeze-bn",
        "--epochs",
        "1",
        "--batch-size",
        "2",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--freeze-bn"), "{}", stderr(&o));
}

#[test]
fn an_empty_held_out_split_is_an_error_not_zero_accuracy() {
    let dir = scratch();
    common::write_idx(dir.path(), "train", 8);
    common::write_idx(dir.path(), "t10k", 0);
    let data = format!("mnist:{}", dir.path().display());
    let out = dir.path().join("run");
    let o = residual(&[
        "train",
        "--data",
        &data,
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no held-out images"), "{}", stderr(&o));
    assert!(!out.exists(), "refused before training");
}

#[test]
fn a_run_that_cannot_fit_in_memory_is_refused_up_front_with_the_estimate() {
    // ResNet-110 on all 7,996 training digits in one batch: about 57 GB.
    let available = residual_train::memory::available_memory();
    if available.is_none_or(|a| a > 40_000_000_000) {
        residual_tensor::test_skip::skipped(
            "this machine has more than 40 GB available (or no /proc/meminfo)",
        );
        return;
    }
    let dir = scratch();
    let out = dir.path().join("run");
    let t0 = std::time::Instant::now();
    let o = residual(&[
        "train",
        "--model",
        "resnet110",
        "--batch-size",
        "7996",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    for part in [
        "needs about",
        "per sample x batch 7996",
        "available",
        "at most",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!out.exists(), "refused before anything was written");
    assert!(
        t0.elapsed().as_secs() < 60,
        "refused up front, not after minutes"
    );
}

#[test]
fn wgpu_on_a_machine_without_a_display_prints_no_xdg_warnings() {
    let dir = scratch();
    let dev = Device::cpu();
    let model = create("resnet20", &ModelOptions::default(), 0, &dev).unwrap();
    let weights = dir.path().join("w.safetensors");
    save_safetensors(&*model, &weights).unwrap();
    let input = dir.path().join("x.safetensors");
    let x = Tensor::zeros([1, 3, 8, 8], &dev).unwrap();
    write_tensors(&input, &[("input".into(), x)]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_residual"))
        .args([
            "predict",
            "--model",
            "resnet20",
            "--device",
            "wgpu",
            "--weights",
        ])
        .arg(&weights)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("y.safetensors"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    let err = stderr(&o);
    if !o.status.success() && err.contains("no GPU adapter") && !residual_tensor::test_skip::in_ci()
    {
        residual_tensor::test_skip::skipped("no GPU adapter (install mesa-vulkan-drivers)");
        return;
    }
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
}
