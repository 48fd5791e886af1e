//! Defaults that fit the data: an image folder's input size and
//! augmentation chosen from its images, `--crop-scale`, a validation split
//! carved from the training split (`--val-fraction`), and the run's cost said
//! before it trains.

mod common;

use common::*;
use residual_train::checkpoint::read_meta;
use residual_train::data::Transform;
use std::path::Path;

/// Writes `root/{a,b}/k.png`: `per_class` images of `w` x `h` pixels each
/// (a bright block whose place depends on the class), and returns the
/// `--data` value.
fn folder(root: &Path, per_class: u32, w: u32, h: u32) -> String {
    for (c, class) in ["a", "b"].iter().enumerate() {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..per_class {
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                let left = x < w / 2;
                let on = if c == 0 { left } else { !left } && y > h / 4;
                image::Rgb(if on {
                    [230, 230, 230]
                } else {
                    [(k * 9) as u8, 20, 20]
                })
            });
            img.save(dir.join(format!("{k}.png"))).unwrap();
        }
    }
    format!("imagefolder:{}", root.display())
}

/// `residual train` of the tiny model, 1 epoch of batch 4, on `data` into `run`.
fn train_on(t: &Tiny, data: &str, run: &str, extra: &[&str]) -> std::process::Output {
    let out = t.path(run);
    let mut args = vec![
        "train",
        "--data",
        data,
        "--model",
        t.path("tiny.toml").to_str().unwrap().to_owned().leak(),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--out",
        out.to_str().unwrap().to_owned().leak(),
    ];
    args.extend(extra);
    residual(&args)
}

#[test]
fn small_images_train_at_their_own_size_with_padded_crops_and_flips() {
    let t = Tiny::new();
    let data = folder(&t.path("small"), 10, 24, 20);
    let o = train_on(&t, &data, "run", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("input 20x20 (the images are small (median shorter side 20 px)")
            && err.contains("random crops padded by 2 px and flips")
            && err.contains("held out: resized to 20, center 20x20"),
        "{err}"
    );
    let cfg = read_meta(&t.path("run")).unwrap().config;
    assert_eq!(
        cfg.transforms[..2],
        [
            Transform::RandomCrop { padding: 2 },
            Transform::HorizontalFlip
        ]
    );
    assert_eq!(cfg.data.unwrap().image_size, None, "chosen, not given");
}

#[test]
fn large_images_get_imagenets_recipe_and_crop_scale_overrides_the_crops() {
    let t = Tiny::new();
    let data = folder(&t.path("large"), 3, 90, 72);
    let o = train_on(&t, &data, "run", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("input 224x224 (the images are large (median shorter side 72 px)")
            && err.contains("random resized crops (area 8-100%) and flips")
            && err.contains("held out: resized to 256, center 224x224"),
        "{err}"
    );
    let o = train_on(
        &t,
        &data,
        "run2",
        &["--image-size", "32", "--crop-scale", "0.35,1"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("input 32x32 (--image-size)")
            && err.contains("random resized crops (area 35-100%)"),
        "{err}"
    );
    let source = read_meta(&t.path("run2")).unwrap().config.data.unwrap();
    assert_eq!(source.crop_scale, Some([0.35, 1.0]));
    // A resume with another crop scale is refused, naming the run's own.
    let o = t.resume("run2", &["--crop-scale", "0.5,1", "--epochs", "2"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--crop-scale 0.5,1: the run has 0.35,1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_crop_scales_are_refused_naming_the_flag_and_the_range() {
    let t = Tiny::new();
    let data = folder(&t.path("small"), 2, 20, 20);
    for bad in ["0.9,0.1", "0,1", "0.5", "a,b", "0.5,1.5"] {
        let o = train_on(&t, &data, "run", &["--crop-scale", bad]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("--crop-scale") && stderr(&o).contains("0 < MIN <= MAX <= 1"),
            "{bad}: {}",
            stderr(&o)
        );
    }
    let o = residual(&["train", "--crop-scale", "0.5,1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("--crop-scale: invalid argument: applies to --data imagefolder:DIR only"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn val_fraction_evaluates_on_a_validation_split_carved_from_training_only() {
    let t = Tiny::new();
    // 32 training digits, labels i % 10: 4 of classes 0 and 1, 3 of the others;
    // a quarter of each, at least one, is held out: 10 images.
    let o = t.train("run", &["--epochs", "2", "--val-fraction", "0.25"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("(22 train / 10 validation)"), "{err}");
    assert!(err.contains("| validation loss"), "{err}");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("validation accuracy"), "{out}");
    let last = log_records(&t.path("run"))
        .into_iter()
        .rfind(|v| v.get("test_acc").is_some())
        .unwrap();
    // `eval --val-fraction` evaluates the same 10 images: the same accuracy.
    let run = t.path("run");
    let o = residual(&[
        "eval",
        "--model",
        run.join("model.json").to_str().unwrap(),
        "--weights",
        run.join("model.safetensors").to_str().unwrap(),
        "--data",
        &t.data(),
        "--val-fraction",
        "0.25",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let acc = 100.0 * last["test_acc"].as_f64().unwrap();
    assert!(
        printed.contains("(10 validation samples)") && printed.contains(&format!("{acc:.2}%")),
        "{printed} (the run's last validation accuracy: {acc:.2}%)"
    );
    // The run keeps its split: another fraction on resume is refused.
    let o = t.resume("run", &["--val-fraction", "0.5", "--epochs", "3"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--val-fraction 0.5: the run has 0.25"),
        "{}",
        stderr(&o)
    );
    for bad in ["0", "1", "-0.2", "1.5", "NaN"] {
        let o = t.train("bad", &["--val-fraction", bad]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("--val-fraction") && stderr(&o).contains("(0, 1)"),
            "{bad}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn the_cost_is_said_before_training_and_the_time_after_the_first_steps() {
    let t = Tiny::new();
    let o = t.train("run", &["--epochs", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let cost = err.find("cost: 32 images in 8 steps per epoch, 24 step(s) to run");
    let time = err.find("time: about ");
    let first_epoch = err.find("epoch 2/3:");
    assert!(
        cost.is_some() && time.is_some() && cost < time && time < first_epoch,
        "{err}"
    );
    assert!(
        err.contains("per epoch (8 steps)") && err.contains("for the 14 step(s) left"),
        "{err}"
    );
}

/// The affine transform a run recorded, if any.
fn recorded_affine(run: &Path) -> Option<Transform> {
    read_meta(run)
        .unwrap()
        .config
        .transforms
        .into_iter()
        .find(|t| matches!(t, Transform::RandomAffine { .. }))
}

#[test]
fn digits_train_with_small_affine_warps_that_random_affine_sets_or_removes() {
    let t = Tiny::new();
    let o = t.train("default", &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = read_meta(&t.path("default")).unwrap().config;
    assert_eq!(
        cfg.transforms[..2],
        [
            Transform::RandomCrop { padding: 2 },
            Transform::RandomAffine {
                degrees: 15.0,
                translate: 0.1,
                scale: (0.85, 1.15)
            }
        ],
        "the digits' recipe (docs/training.md, \"The main job\")"
    );
    let o = t.train("set", &["--epochs", "1", "--random-affine", "15,0.1,0.2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        recorded_affine(&t.path("set")),
        Some(Transform::RandomAffine {
            degrees: 15.0,
            translate: 0.1,
            scale: (0.8, 1.2)
        })
    );
    let o = t.train("none", &["--epochs", "1", "--random-affine", "0,0,0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(recorded_affine(&t.path("none")), None);
    // A resumed run keeps its augmentation: another warp is refused, naming
    // the run's; the run's own (given or its dataset's default) is accepted.
    let o = t.resume("set", &["--epochs", "2", "--random-affine", "0,0,0"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--random-affine none (0,0,0): the run has 15,0.1,0.2"),
        "{err}"
    );
    let o = t.resume("set", &["--epochs", "2", "--random-affine", "15,0.1,0.2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = t.resume(
        "default",
        &["--epochs", "2", "--random-affine", "15,0.1,0.15"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for bad in ["10", "10,0.1", "200,0,0", "10,1,0", "10,0.1,-0.1", "a,b,c"] {
        let o = t.train("bad", &["--epochs", "1", "--random-affine", bad]);
        assert!(!o.status.success(), "{bad} accepted");
        let err = stderr(&o);
        assert!(
            err.contains("DEGREES,TRANSLATE,SCALE") && err.contains(bad),
            "{bad}: {err}"
        );
    }
}

#[test]
fn elastic_distortion_and_batch_norm_recalibration_are_recorded_and_kept_on_resume() {
    let t = Tiny::new();
    let o = t.train(
        "set",
        &["--epochs", "1", "--elastic", "34,4", "--precise-bn", "64"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        // 32 training digits: the 64 asked for are cut to the data's 32.
        stderr(&o).contains("batch norm recalibrated on 32 clean training images after each epoch"),
        "{}",
        stderr(&o)
    );
    let cfg = read_meta(&t.path("set")).unwrap().config;
    assert_eq!(cfg.precise_bn, 64);
    let elastic: Vec<_> = cfg
        .transforms
        .iter()
        .filter(|t| matches!(t, Transform::Elastic { .. }))
        .collect();
    assert_eq!(
        elastic,
        [&Transform::Elastic {
            alpha: 34.0,
            sigma: 4.0
        }]
    );
    // After the warp, before the normalisation.
    let at = |f: fn(&Transform) -> bool| cfg.transforms.iter().position(f).unwrap();
    assert!(
        at(|t| matches!(t, Transform::RandomAffine { .. }))
            < at(|t| matches!(t, Transform::Elastic { .. }))
    );
    assert!(
        at(|t| matches!(t, Transform::Elastic { .. }))
            < at(|t| matches!(t, Transform::Normalize { .. }))
    );
    let o = t.resume(
        "set",
        &["--epochs", "2", "--elastic", "0,0", "--precise-bn", "0"],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--elastic none (0,0): the run has 34,4")
            && err.contains("--precise-bn 0: the run has 64"),
        "{err}"
    );
    let o = t.resume("set", &["--epochs", "2", "--elastic", "34,4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = read_meta(&t.path("set")).unwrap();
    assert_eq!(resumed.epoch, 2);
    assert_eq!(resumed.config.precise_bn, 64);
    assert_eq!(resumed.config.transforms, cfg.transforms);
    for bad in ["34", "34,0", "-1,4", "2000,4", "34,200", "a,b"] {
        let o = t.train("bad", &["--epochs", "1", "--elastic", bad]);
        assert!(!o.status.success(), "{bad} accepted");
        let err = stderr(&o);
        assert!(
            err.contains("ALPHA,SIGMA") && err.contains(bad),
            "{bad}: {err}"
        );
    }
    let o = t.train("bad", &["--epochs", "1", "--precise-bn", "-3"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--precise-bn"), "{}", stderr(&o));
}
