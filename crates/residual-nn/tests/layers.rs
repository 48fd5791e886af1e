//! Layer behaviour: batch norm modes, naming, dropout, init.

use residual_nn::*;
use residual_tensor::{Device, Tensor};

fn dev() -> Device {
    Device::cpu()
}

#[test]
fn batch_norm_train_updates_running_stats_and_counter() {
    let bn = BatchNorm2d::new(3, BnMode::Normal, &dev()).unwrap();
    let x = Tensor::randn([4, 3, 5, 5], 2.0, 3.0, 1, &dev()).unwrap();
    let y = bn.forward(&x, Mode::Train).unwrap();
    // Batch statistics: each channel of y has mean ~0 and biased var ~1.
    let m = y.mean(&[0, 2, 3], false).unwrap().to_vec().unwrap();
    assert!(m.iter().all(|v| v.abs() < 1e-5), "{m:?}");
    let bm = x.mean(&[0, 2, 3], false).unwrap().to_vec().unwrap();
    let rm = bn.running_mean.get().to_vec().unwrap();
    for (r, b) in rm.iter().zip(&bm) {
        assert!((r - 0.1 * b).abs() < 1e-5, "running mean {r} vs 0.1 * {b}");
    }
    let uv = x.var(&[0, 2, 3], false, true).unwrap().to_vec().unwrap();
    let rv = bn.running_var.get().to_vec().unwrap();
    for (r, u) in rv.iter().zip(&uv) {
        assert!(
            (r - (0.9 + 0.1 * u)).abs() < 1e-4,
            "running var {r} vs unbiased {u}"
        );
    }
    assert_eq!(bn.num_batches_tracked.get().to_scalar().unwrap(), 1.0);
    // Eval uses the running statistics and changes nothing.
    let before = bn.running_mean.get().to_vec().unwrap();
    bn.forward(&x, Mode::Eval).unwrap();
    assert_eq!(bn.running_mean.get().to_vec().unwrap(), before);
}

#[test]
fn frozen_batch_norm_uses_running_stats_in_training() {
    let bn = BatchNorm2d::new(2, BnMode::Frozen, &dev()).unwrap();
    bn.running_mean
        .set(Tensor::from_vec(vec![1.0, -1.0], [2], &dev()).unwrap());
    bn.running_var
        .set(Tensor::from_vec(vec![4.0, 0.25], [2], &dev()).unwrap());
    let x = Tensor::from_vec(vec![3.0, 5.0, -1.0, 0.0], [1, 2, 2, 1], &dev()).unwrap();
    let y = bn.forward(&x, Mode::Train).unwrap().to_vec().unwrap();
    let want = [
        (3.0 - 1.0) / (4.0f32 + 1e-5).sqrt(),
        (5.0 - 1.0) / (4.0f32 + 1e-5).sqrt(),
        0.0,
        1.0 / (0.25f32 + 1e-5).sqrt(),
    ];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{y:?} vs {want:?}");
    }
    assert!(!bn.weight.is_trainable() && !bn.weight.get().requires_grad());
    assert_eq!(
        bn.running_mean.get().to_vec().unwrap(),
        [1.0, -1.0],
        "frozen stats never move"
    );
    assert_eq!(bn.num_batches_tracked.get().to_scalar().unwrap(), 0.0);
}

#[test]
fn sequential_names_children_by_index() {
    let s = Sequential::new()
        .push(
            Conv2dConfig::new(3, 4, 1)
                .stride(2)
                .init(1, &dev())
                .unwrap(),
        )
        .push(BatchNorm2d::new(4, BnMode::Normal, &dev()).unwrap());
    let names: Vec<String> = named_tensors(&s).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked"
        ]
    );
    let y = s
        .forward(&Tensor::ones([1, 3, 4, 4], &dev()).unwrap(), Mode::Eval)
        .unwrap();
    assert_eq!(y.dims(), [1, 4, 2, 2]);
}

#[test]
fn conv_init_is_kaiming_fan_out_and_seeded() {
    let c = Conv2dConfig::new(64, 128, 3)
        .padding(1)
        .init(7, &dev())
        .unwrap();
    let w = c.weight.get().to_vec().unwrap();
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    let want = (2.0 / (128.0 * 9.0f32)).sqrt();
    assert!(
        (std - want).abs() / want < 0.02,
        "std {std}, expected {want}"
    );
    let c2 = Conv2dConfig::new(64, 128, 3)
        .padding(1)
        .init(7, &dev())
        .unwrap();
    assert_eq!(
        c2.weight.get().to_vec().unwrap(),
        w,
        "same seed, same weights"
    );
    assert!(Conv2dConfig::new(6, 4, 3)
        .padding(1)
        .groups(4)
        .init(0, &dev())
        .is_err());
}

#[test]
fn linear_default_init_and_shape() {
    let l = Linear::new(50, 10, true, 3, &dev()).unwrap();
    let w = l.weight.get().to_vec().unwrap();
    let bound = 1.0 / 50f32.sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound));
    let y = l
        .forward(&Tensor::ones([4, 50], &dev()).unwrap(), Mode::Eval)
        .unwrap();
    assert_eq!(y.dims(), [4, 10]);
}

#[test]
fn dropout_and_droppath_only_in_training() {
    let x = Tensor::ones([8, 4, 2, 2], &dev()).unwrap();
    let d = Dropout::new(0.5, 1).unwrap();
    assert_eq!(
        d.forward(&x, Mode::Eval).unwrap().to_vec().unwrap(),
        x.to_vec().unwrap()
    );
    let a = d.forward(&x, Mode::Train).unwrap().to_vec().unwrap();
    let b = d.forward(&x, Mode::Train).unwrap().to_vec().unwrap();
    assert_ne!(a, b, "each call draws a new mask");
    let dp = DropPath::new(0.5, 2).unwrap();
    let y = dp.forward(&x, Mode::Train).unwrap().to_vec().unwrap();
    for s in y.chunks(16) {
        assert!(
            s.iter().all(|&v| v == s[0]) && (s[0] == 0.0 || s[0] == 2.0),
            "per-sample decision: {s:?}"
        );
    }
    assert!(Dropout::new(1.0, 0).is_err());
}

#[test]
fn summaries_attribute_each_layer_output_and_its_macs_to_its_row() {
    use residual_nn::summary::summarize;
    let s = Sequential::new()
        .push(
            Conv2dConfig::new(3, 4, 3)
                .padding(1)
                .init(1, &dev())
                .unwrap(),
        )
        .push(BatchNorm2d::new(4, BnMode::Frozen, &dev()).unwrap())
        .push(AdaptiveAvgPool2d((1, 1)));
    let x = Tensor::zeros([1, 3, 5, 5], &dev()).unwrap();
    let rows = s.children();
    let sum = summarize("seq", [3, 5, 5], &rows, || s.forward(&x, Mode::Eval)).unwrap();
    let got: Vec<(&str, &str, Vec<usize>, usize, u64)> = sum
        .rows
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.kind.as_str(),
                r.output.clone(),
                r.params,
                r.macs,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("0", "Conv2d", vec![4, 5, 5], 108, 4 * 5 * 5 * 3 * 9),
            ("1", "FrozenBatchNorm2d", vec![4, 5, 5], 8, 0),
            ("2", "AdaptiveAvgPool2d", vec![4, 1, 1], 0, 0),
        ]
    );
    // A row the forward never runs is an error naming it.
    let head = Linear::new(4, 2, true, 0, &dev()).unwrap();
    let mut with_head = s.children();
    with_head.push(("head".into(), &head));
    let err = summarize("seq", [3, 5, 5], &with_head, || s.forward(&x, Mode::Eval))
        .unwrap_err()
        .to_string();
    assert!(err.contains("head") && err.contains("Linear"), "{err}");
}
