//! The one model interface: the registry, configs and config files, family
//! settings, intermediates, the inference pass and computed summaries.

use residual_nn::{named_tensors, Mode, Module};
use residual_tensor::{no_grad, Device, Tensor};
use residual_zoo::*;

fn dev() -> Device {
    Device::cpu()
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (a.to_vec().unwrap(), b.to_vec().unwrap());
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}

#[test]
fn every_registered_name_resolves_to_its_valid_default_config() {
    assert_eq!(names().len(), MODELS.len());
    let mut seen = std::collections::HashSet::new();
    for r in MODELS {
        assert!(seen.insert(r.name), "{} registered twice", r.name);
        let config = resolve(r.name, &ModelOptions::default()).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config,
            (r.config)(),
            "{}: no options, the default config",
            r.name
        );
    }
    // The CIFAR-sized ones build and run; the model reports its config.
    for name in ["resnet20", "plain20", "resnet32"] {
        let opts = ModelOptions {
            in_channels: Some(1),
            num_classes: Some(4),
            ..Default::default()
        };
        let m = create(name, &opts, 0, &dev()).unwrap();
        assert_eq!(m.config(), resolve(name, &opts).unwrap());
        assert_eq!((m.config().in_channels(), m.config().num_classes()), (1, 4));
        let x = Tensor::randn([2, 1, 16, 16], 0.0, 1.0, 1, &dev()).unwrap();
        assert_eq!(m.forward(&x, Mode::Eval).unwrap().dims(), [2, 4]);
    }
}

#[test]
fn config_files_name_their_family_and_build_like_a_registered_model() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("tiny.toml");
    std::fs::write(
        &toml,
        "family = \"resnet\"\nblock = \"basic\"\nlayers = [1, 1]\nwidths = [4, 8]\nstem = \"cifar\"\nstem_width = 4\nnum_classes = 3\nnorm = \"group\"\n",
    )
    .unwrap();
    let c = resolve(toml.to_str().unwrap(), &ModelOptions::default()).unwrap();
    let ModelConfig::Resnet(r) = &c else {
        panic!("a ResNet config")
    };
    assert_eq!(
        (r.layers.clone(), r.norm, r.num_classes),
        (vec![1, 1], NormKind::Group, 3)
    );
    // The JSON a config serialises to is a config file too.
    let json = dir.path().join("tiny.json");
    std::fs::write(&json, serde_json::to_string(&c).unwrap()).unwrap();
    let from_json = resolve(json.to_str().unwrap(), &ModelOptions::classes(5)).unwrap();
    assert_eq!(from_json.num_classes(), 5, "options apply to files too");
    let m = create(toml.to_str().unwrap(), &ModelOptions::default(), 0, &dev()).unwrap();
    assert_eq!(
        named_tensors(&*m).len(),
        named_tensors(&ResNet::new(r, 0, &dev()).unwrap()).len()
    );

    // Errors name the file and what is wrong.
    std::fs::write(&toml, "block = \"basic\"\n").unwrap();
    let err = resolve(toml.to_str().unwrap(), &ModelOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tiny.toml") && err.contains("family"), "{err}");
    std::fs::write(&toml, "family = \"vgg\"\n").unwrap();
    let err = resolve(toml.to_str().unwrap(), &ModelOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("vgg") && err.contains("resnet"), "{err}");
    std::fs::write(&json, r#"{"family": "resnet", "block": "basic", "layers": [1], "widths": [4], "stem": "cifar", "stem_width": 4, "num_classes": 2, "depth": 3}"#).unwrap();
    let err = resolve(json.to_str().unwrap(), &ModelOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("depth"), "an unknown field is named: {err}");
    let err = resolve("missing.toml", &ModelOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn config_files_that_are_devices_or_overflow_are_clear_errors() {
    // A `.json` name for a device is refused, not read without end (was:
    // an endless read of /dev/zero, which reports a size of 0).
    #[cfg(unix)]
    {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = resolve(link.to_str().unwrap(), &ModelOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("zero.json") && err.contains("not a regular file"),
            "{err}"
        );
    }
    // A bottleneck width near usize::MAX times the expansion (4) overflowed
    // in `validate` (a panic, found by the config fuzz target's seed).
    let text = r#"{"family": "resnet", "block": "bottleneck", "layers": [1], "widths": [18446744073709551615], "stem": "cifar", "stem_width": 4, "num_classes": 2}"#;
    let err = ModelConfig::from_json(text).unwrap_err().to_string();
    assert!(err.contains("at most 65536"), "{err}");
}

#[test]
fn settings_are_checked_against_the_family() {
    let c = resolve("resnet18", &ModelOptions::default().set("act", "gelu")).unwrap();
    let ModelConfig::Resnet(r) = &c else {
        panic!("a ResNet config")
    };
    assert_eq!(r.act, ActKind::Gelu);
    let err = resolve("resnet18", &ModelOptions::default().set("nrom", "group"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"nrom\"") && err.contains("norm") && err.contains("zero_init_residual"),
        "an unknown setting lists the family's settings: {err}"
    );
    let err = resolve("resnet18", &ModelOptions::default().set("norm", "purple"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("norm") && err.contains("purple"), "{err}");
    let err = resolve("resnet18", &ModelOptions::classes(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("num_classes"), "{err}");
}

#[test]
fn intermediates_are_the_stem_and_every_block_and_compose_to_the_forward() {
    let m = create("resnet20", &ModelOptions::default(), 2, &dev()).unwrap();
    let x = Tensor::randn([2, 3, 16, 16], 0.0, 1.0, 3, &dev()).unwrap();
    let out = m.forward_intermediates(&x, Mode::Eval).unwrap();
    let names: Vec<&str> = out.taps.iter().map(|(n, _)| n.as_str()).collect();
    let mut want = vec!["conv1".to_string()];
    for s in 1..=3 {
        for b in 0..3 {
            want.push(format!("layer{s}.{b}"));
        }
    }
    assert_eq!(names, want);
    assert_eq!(out.taps[0].1.dims(), [2, 16, 16, 16]);
    assert_eq!(out.taps.last().unwrap().1.dims(), out.features.dims());
    let features = m.forward_features(&x, Mode::Eval).unwrap();
    assert_eq!(features.to_vec().unwrap(), out.features.to_vec().unwrap());
    let logits = m.forward_head(&features, Mode::Eval).unwrap();
    assert_eq!(
        logits.to_vec().unwrap(),
        m.forward(&x, Mode::Eval).unwrap().to_vec().unwrap()
    );
}

/// Running statistics and affine terms away from their defaults, so that a
/// fold that ignores one of them shows.
fn randomise_norms(m: &dyn Module) {
    for (i, (name, p)) in named_tensors(m).into_iter().enumerate() {
        let t = p.get();
        let n = t.numel();
        let v = match name.rsplit('.').next().unwrap() {
            "running_var" => residual_tensor::rng::uniform(i as u64, n, 0.5, 2.0),
            "running_mean" | "bias" => residual_tensor::rng::normal(i as u64, n, 0.0, 0.2),
            "weight" if t.rank() == 1 => residual_tensor::rng::uniform(i as u64, n, 0.5, 1.5),
            _ => continue,
        };
        p.set(Tensor::from_vec(v, t.dims().to_vec(), &dev()).unwrap());
    }
}

#[test]
fn the_inference_pass_folds_batch_norm_and_matches_the_forward() {
    let x = Tensor::randn([2, 3, 40, 40], 0.0, 1.0, 5, &dev()).unwrap();
    for (name, norm) in [
        ("resnet18", "batch"),
        ("resnet50", "batch"),
        ("resnet20", "batch"),
        ("plain20", "batch"),
        ("resnet18", "frozen_batch"),
    ] {
        let opts = ModelOptions::classes(7).set("norm", norm);
        let m = create(name, &opts, 1, &dev()).unwrap();
        randomise_norms(&*m);
        let fused = inference(&*m).unwrap();
        assert!(fused.is_fused(), "{name} {norm}: batch norm folds");
        let (got, want) = no_grad(|| {
            (
                fused.forward(&x, Mode::Train).unwrap(),
                m.forward(&x, Mode::Eval).unwrap(),
            )
        });
        let d = max_rel_diff(&got, &want);
        assert!(d <= 1e-5, "{name} {norm}: folded forward off by {d:e}");
        // The fold is a snapshot, the classifier too: changed weights need a
        // new pass.
        for key in ["bn1.weight", "fc.weight"] {
            let before = no_grad(|| fused.forward(&x, Mode::Eval).unwrap());
            let w = named_tensors(&*m)
                .into_iter()
                .find(|(n, _)| n == key)
                .unwrap()
                .1;
            w.set(w.get().mul_scalar(3.0).unwrap());
            let (stale, refolded, now) = no_grad(|| {
                (
                    fused.forward(&x, Mode::Eval).unwrap(),
                    inference(&*m).unwrap().forward(&x, Mode::Eval).unwrap(),
                    m.forward(&x, Mode::Eval).unwrap(),
                )
            });
            assert_eq!(
                stale.to_vec().unwrap(),
                before.to_vec().unwrap(),
                "{name}: {key} changed a snapshot"
            );
            assert!(
                max_rel_diff(&stale, &now) > 1e-3,
                "{name}: the change of {key} shows"
            );
            assert!(
                max_rel_diff(&refolded, &now) <= 1e-5,
                "{name}: refolded after {key}"
            );
        }
    }
    // Group norm does not fold: the pass leaves the model as it is.
    let g = create(
        "resnet20",
        &ModelOptions::default().set("norm", "group"),
        1,
        &dev(),
    )
    .unwrap();
    let plain = inference(&*g).unwrap();
    assert!(!plain.is_fused());
    let (a, b) = no_grad(|| {
        (
            plain.forward(&x, Mode::Eval).unwrap(),
            g.forward(&x, Mode::Eval).unwrap(),
        )
    });
    assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap());
    // Wrong inputs get the model's own error.
    let err = fused_error(&x);
    assert!(err.contains("[N, 1, H, W]"), "{err}");
}

fn fused_error(x: &Tensor) -> String {
    let m = create(
        "resnet20",
        &ModelOptions {
            in_channels: Some(1),
            ..Default::default()
        },
        0,
        &dev(),
    )
    .unwrap();
    let f = inference(&*m).unwrap();
    f.forward(x, Mode::Eval).unwrap_err().to_string()
}

#[test]
fn summaries_are_computed_for_any_config_and_refuse_huge_inputs() {
    // A config no preset has gets its summary from the traced forward.
    let c = ResNetConfig {
        layers: vec![1, 1],
        widths: vec![8, 16],
        stem_width: 8,
        ..ResNetConfig::cifar(20).unwrap()
    };
    let m = ModelConfig::Resnet(c).build(0, &dev()).unwrap();
    let s = m.summary("tiny", [3, 8, 8]).unwrap();
    let rows: Vec<(&str, &str, Vec<usize>)> = s
        .rows
        .iter()
        .map(|r| (r.name.as_str(), r.kind.as_str(), r.output.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("conv1", "Conv2d", vec![8, 8, 8]),
            ("bn1", "BatchNorm2d", vec![8, 8, 8]),
            ("layer1.0", "BasicBlock", vec![8, 8, 8]),
            ("layer2.0", "BasicBlock", vec![16, 4, 4]),
            ("avgpool", "AdaptiveAvgPool2d", vec![16, 1, 1]),
            ("fc", "Linear", vec![10]),
        ]
    );
    // MACs by hand: the stem, two 3x3 convs at 8x8, a strided 3x3, a 3x3 and
    // a 1x1 downsample at 4x4, the classifier.
    let macs = [
        8 * 8 * 8 * 3 * 9,
        2 * 8 * 8 * 8 * 8 * 9,
        16 * 4 * 4 * 8 * 9 + 16 * 4 * 4 * 16 * 9 + 16 * 4 * 4 * 8,
        16 * 10,
    ];
    assert_eq!(s.rows[0].macs, macs[0]);
    assert_eq!(s.rows[2].macs, macs[1]);
    assert_eq!(s.rows[3].macs, macs[2]);
    assert_eq!(s.rows[5].macs, macs[3]);
    assert_eq!(s.total_macs(), macs.iter().sum::<u64>());
    assert_eq!(s.total_params(), residual_nn::parameter_count(&*m));
    for input in [[3, 4_294_967_295, 4_294_967_295], [3, 2048, 2048]] {
        let err = m.summary("tiny", input).unwrap_err().to_string();
        assert!(err.contains("too large"), "{input:?}: {err}");
    }
    assert!(m.summary("tiny", [3, 1182, 1182]).is_ok(), "at the bound");
}
