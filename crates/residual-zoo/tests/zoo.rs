//! The zoo: torchvision's parameter and MAC totals, names, shapes, configs, errors.

use residual_nn::{named_tensors, Mode, Module};
use residual_tensor::{Device, Tensor};
use residual_zoo::*;

fn dev() -> Device {
    Device::cpu()
}

/// torchvision's published figures: parameters, and GMACs at 224x224.
const TORCHVISION: [(&str, usize, f64); 5] = [
    ("resnet18", 11_689_512, 1.814),
    ("resnet34", 21_797_672, 3.664),
    ("resnet50", 25_557_032, 4.089),
    ("resnet101", 44_549_160, 7.801),
    ("resnet152", 60_192_808, 11.514),
];

#[test]
fn parameter_and_mac_totals_match_torchvision_and_snapshot() {
    for (name, params, gmacs) in TORCHVISION {
        let m = create(name, &ModelOptions::default(), 0, &dev()).unwrap();
        let s = m.summary(name, [3, 224, 224]).unwrap();
        assert_eq!(s.total_params(), params, "{name} parameters");
        let g = s.total_macs() as f64 / 1e9;
        assert!(
            (g - gmacs).abs() < 0.0005,
            "{name}: {g:.4} GMACs, torchvision says {gmacs}"
        );
        insta::assert_snapshot!(format!("summary_{name}"), s.to_string());
    }
}

#[test]
fn cifar_and_plain_summaries() {
    for name in ["resnet20", "plain20", "resnet56"] {
        let m = create(name, &ModelOptions::default(), 0, &dev()).unwrap();
        let s = m.summary(name, [3, 32, 32]).unwrap();
        insta::assert_snapshot!(format!("summary_{name}"), s.to_string());
    }
}

#[test]
fn names_are_torchvision_state_dict_keys() {
    let m = create("resnet50", &ModelOptions::default(), 0, &dev()).unwrap();
    let names: Vec<String> = named_tensors(&*m).into_iter().map(|(n, _)| n).collect();
    for key in [
        "conv1.weight",
        "bn1.weight",
        "bn1.running_mean",
        "bn1.num_batches_tracked",
        "layer1.0.conv3.weight",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.running_var",
        "layer4.2.bn3.bias",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(names.contains(&key.to_string()), "missing {key}");
    }
    assert_eq!(names.len(), 320, "resnet50's state_dict has 320 entries");
    assert!(!names.iter().any(|n| n.starts_with("layer1.1.downsample")));
}

#[test]
fn forward_shapes_train_and_eval() {
    let m = create("resnet18", &ModelOptions::classes(7), 1, &dev()).unwrap();
    let x = Tensor::randn([2, 3, 32, 32], 0.0, 1.0, 2, &dev()).unwrap();
    assert_eq!(m.forward(&x, Mode::Eval).unwrap().dims(), [2, 7]);
    let y = m.forward(&x, Mode::Train).unwrap();
    assert_eq!(y.dims(), [2, 7]);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.len(), 62, "a gradient for every parameter of resnet18");
    let c = create(
        "resnet20",
        &ModelOptions {
            in_channels: Some(1),
            ..Default::default()
        },
        1,
        &dev(),
    )
    .unwrap();
    let x = Tensor::randn([3, 1, 28, 28], 0.0, 1.0, 3, &dev()).unwrap();
    assert_eq!(c.forward(&x, Mode::Train).unwrap().dims(), [3, 10]);
}

#[test]
fn plain_nets_have_no_shortcuts() {
    let config = |name| match (lookup(name).unwrap().config)() {
        ModelConfig::Resnet(c) => c,
        other => panic!("{name} is not a ResNet: {other:?}"),
    };
    let p = ResNet::new(&config("plain20"), 0, &dev()).unwrap();
    let r = ResNet::new(&config("resnet20"), 0, &dev()).unwrap();
    let pn: Vec<String> = named_tensors(&p).into_iter().map(|(n, _)| n).collect();
    assert!(pn.iter().all(|n| !n.contains("downsample")));
    assert!(named_tensors(&r)
        .iter()
        .any(|(n, _)| n == "layer2.0.downsample.0.weight"));
    assert!(p.stages.iter().flatten().all(|b| !b.shortcut));
}

#[test]
fn options_norm_act_and_zero_init() {
    let o = ModelOptions::default()
        .set("norm", "group")
        .set("act", "silu")
        .set("zero_init_residual", true);
    let m = create("resnet50", &o, 0, &dev()).unwrap();
    let ModelConfig::Resnet(c) = m.config() else {
        panic!("a ResNet config")
    };
    assert_eq!((c.norm, c.act), (NormKind::Group, ActKind::Silu));
    let s = m.summary("resnet50-gn", [3, 64, 64]).unwrap();
    assert_eq!(s.rows[1].kind, "GroupNorm");
    assert_eq!(
        s.total_params(),
        25_557_032,
        "GroupNorm has the same parameters as BatchNorm"
    );
    let bn3 = named_tensors(&*m)
        .into_iter()
        .find(|(n, _)| n == "layer1.0.bn3.weight")
        .unwrap()
        .1;
    assert!(
        bn3.get().to_vec().unwrap().iter().all(|&v| v == 0.0),
        "zero_init_residual"
    );
    let f = create(
        "resnet18",
        &ModelOptions::default().set("norm", "frozen_batch"),
        0,
        &dev(),
    )
    .unwrap();
    let trainable = named_tensors(&*f)
        .iter()
        .filter(|(_, p)| p.is_trainable())
        .count();
    assert_eq!(
        trainable, 22,
        "with frozen BN only the 21 convs and fc weight+bias train"
    );
}

#[test]
fn residual_add_refuses_mismatched_shapes() {
    let a = Tensor::zeros([2, 64, 8, 8], &dev()).unwrap();
    let b = Tensor::zeros([2, 128, 4, 4], &dev()).unwrap();
    let err = residual_add(&a, &b).unwrap_err().to_string();
    assert!(
        err.contains("[2, 64, 8, 8]") && err.contains("[2, 128, 4, 4]") && err.contains("shortcut"),
        "{err}"
    );
    // A broadcastable pair is refused too: the add never broadcasts silently.
    let c = Tensor::zeros([2, 64, 1, 1], &dev()).unwrap();
    assert!(residual_add(&a, &c).is_err());
}

#[test]
fn config_from_json_and_toml_and_errors() {
    let json = r#"{"block": "bottleneck", "layers": [1, 1], "widths": [8, 16], "stem": "cifar", "stem_width": 8,
                   "num_classes": 5, "norm": "group", "act": "gelu"}"#;
    let c = ResNetConfig::from_json(json).unwrap();
    assert_eq!(c.feature_channels(), 64);
    assert!(c.shortcut && c.in_channels == 3);
    let toml = "block = \"basic\"\nlayers = [2, 2]\nwidths = [4, 8]\nstem = \"imagenet\"\nstem_width = 4\nnum_classes = 3\n";
    let t = ResNetConfig::from_toml(toml).unwrap();
    let m = ResNet::new(&t, 0, &dev()).unwrap();
    assert_eq!(
        m.forward(&Tensor::zeros([1, 3, 32, 32], &dev()).unwrap(), Mode::Eval)
            .unwrap()
            .dims(),
        [1, 3]
    );
    let err = ResNetConfig::from_json(r#"{"block": "basic"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid JSON config") && err.contains("layers"),
        "{err}"
    );
    let err = ResNetConfig::from_toml("block = \"basic\"\nlayers = [1]\nwidths = [1, 2]\nstem = \"cifar\"\nstem_width = 4\nnum_classes = 3\n").unwrap_err().to_string();
    assert!(err.contains("equal length"), "{err}");
    let err = create("resnet19", &ModelOptions::default(), 0, &dev())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("resnet19") && err.contains("resnet50"),
        "{err}"
    );
    let m = create("resnet18", &ModelOptions::default(), 0, &dev()).unwrap();
    let err = m
        .forward(&Tensor::zeros([1, 1, 32, 32], &dev()).unwrap(), Mode::Eval)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[N, 3, H, W]") && err.contains("[1, 1, 32, 32]"),
        "{err}"
    );
}
