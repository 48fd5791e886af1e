//! Every error path names the op, the shapes it got and what it expected.

use residual_tensor::{Conv2dParams, DType, Device, Error, Pool2dParams, Tensor};

fn t(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape.to_vec(), &Device::cpu()).unwrap()
}

/// Asserts the error's message contains every one of `needles`.
fn says(err: Error, needles: &[&str]) {
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} should mention {n:?}");
    }
}

#[test]
fn broadcast_mismatch_names_both_shapes() {
    // The residual add whose branches disagree: never broadcast silently.
    says(
        t(&[2, 64, 8, 8]).add(&t(&[2, 128, 4, 4])).unwrap_err(),
        &["add", "[2, 64, 8, 8]", "[2, 128, 4, 4]"],
    );
    says(t(&[3]).mul(&t(&[4])).unwrap_err(), &["mul", "[3]", "[4]"]);
}

#[test]
fn matmul_errors() {
    says(
        t(&[2, 3]).matmul(&t(&[4, 5])).unwrap_err(),
        &["matmul", "[2, 3]", "[4, 5]", "inner"],
    );
    says(
        t(&[3]).matmul(&t(&[3, 2])).unwrap_err(),
        &["matmul", "rank >= 2", "[3]"],
    );
    says(
        t(&[2, 3, 4]).matmul(&t(&[3, 4, 5])).unwrap_err(),
        &["matmul", "batch", "[2, 3, 4]", "[3, 4, 5]"],
    );
}

#[test]
fn conv2d_errors() {
    let p = Conv2dParams::default();
    says(
        t(&[1, 3, 8])
            .conv2d(&t(&[4, 3, 3, 3]), None, p)
            .unwrap_err(),
        &["conv2d", "[N, C, H, W]", "[1, 3, 8]"],
    );
    says(
        t(&[1, 3, 8, 8])
            .conv2d(&t(&[4, 2, 3, 3]), None, p)
            .unwrap_err(),
        &["conv2d", "[4, 2, 3, 3]", "[1, 3, 8, 8]", "input channels"],
    );
    says(
        t(&[1, 3, 2, 2])
            .conv2d(&t(&[4, 3, 3, 3]), None, p)
            .unwrap_err(),
        &["conv2d", "larger than the padded input"],
    );
    says(
        t(&[1, 3, 8, 8])
            .conv2d(&t(&[4, 3, 3, 3]), Some(&t(&[5])), p)
            .unwrap_err(),
        &["conv2d", "bias", "[5]"],
    );
    let r = t(&[1, 4, 5, 5]);
    says(
        t(&[1, 3, 8, 8])
            .conv2d_fused(&t(&[4, 3, 3, 3]), None, Some(&r), None, p)
            .unwrap_err(),
        &["conv2d", "residual", "[1, 4, 5, 5]", "[1, 4, 6, 6]"],
    );
    let g = Conv2dParams { groups: 2, ..p };
    says(
        t(&[1, 3, 8, 8])
            .conv2d(&t(&[4, 1, 3, 3]), None, g)
            .unwrap_err(),
        &["conv2d", "groups=2"],
    );
    let z = Conv2dParams {
        stride: (0, 1),
        ..p
    };
    says(
        t(&[1, 3, 8, 8])
            .conv2d(&t(&[4, 3, 3, 3]), None, z)
            .unwrap_err(),
        &["conv2d", "stride"],
    );
}

#[test]
fn reduction_and_layout_errors() {
    says(
        t(&[2, 3]).sum(&[2], false).unwrap_err(),
        &["sum", "axis 2", "[2, 3]"],
    );
    says(
        t(&[2, 3]).sum(&[1, -1], false).unwrap_err(),
        &["sum", "repeated"],
    );
    says(
        t(&[2, 3]).reshape(&[4, 2]).unwrap_err(),
        &["reshape", "[2, 3]", "[4, 2]"],
    );
    says(
        t(&[2, 3]).permute(&[0, 0]).unwrap_err(),
        &["permute", "[0, 0]", "[2, 3]"],
    );
    says(
        t(&[2, 3]).narrow(1, 2, 2).unwrap_err(),
        &["narrow", "2..4", "size 3"],
    );
    says(
        Tensor::concat(&[&t(&[2, 3]), &t(&[3, 3])], 1).unwrap_err(),
        &["concat", "[2, 3]", "[3, 3]"],
    );
    says(
        Tensor::concat(&[], 0).unwrap_err(),
        &["concat", "no tensors"],
    );
    says(
        t(&[2, 3]).index_select(1, &[0, 3]).unwrap_err(),
        &["index_select", "index 3", "size 3"],
    );
    says(
        t(&[2, 3]).broadcast_to(&[3, 3]).unwrap_err(),
        &["broadcast_to", "[2, 3]", "[3, 3]"],
    );
    says(t(&[2, 0]).max(&[1], false).unwrap_err(), &["max", "empty"]);
    says(
        t(&[1, 3]).var(&[0], false, true).unwrap_err(),
        &["var", "1 element"],
    );
    says(
        Tensor::from_vec(vec![1.0; 5], [2, 3], &Device::cpu()).unwrap_err(),
        &["from_vec", "5 values", "[2, 3]"],
    );
}

#[test]
fn norm_pool_loss_errors() {
    says(
        t(&[4]).batch_norm_train(None, None, 1e-5).unwrap_err(),
        &["batch_norm", "[N, C, ...]", "[4]"],
    );
    says(
        t(&[1, 3, 1, 1])
            .batch_norm_train(None, None, 1e-5)
            .unwrap_err(),
        &["batch_norm", "more than one value"],
    );
    says(
        t(&[2, 3, 4, 4])
            .batch_norm_train(Some(&t(&[4])), None, 1e-5)
            .unwrap_err(),
        &["batch_norm", "weight", "[3]", "[4]"],
    );
    says(
        t(&[2, 6, 4]).group_norm(4, None, None, 1e-5).unwrap_err(),
        &["group_norm", "channels 6", "groups=4"],
    );
    says(
        t(&[2, 6, 4])
            .layer_norm(&[6], None, None, 1e-5)
            .unwrap_err(),
        &["layer_norm", "[6]", "[2, 6, 4]"],
    );
    says(
        t(&[1, 1, 2, 2])
            .max_pool2d(Pool2dParams::new(3, 1, 0))
            .unwrap_err(),
        &["max_pool2d", "kernel 3"],
    );
    says(
        t(&[2, 2])
            .avg_pool2d(Pool2dParams::new(2, 2, 0))
            .unwrap_err(),
        &["avg_pool2d", "[N, C, H, W]", "[2, 2]"],
    );
    says(
        t(&[2, 5]).cross_entropy(&[0], 0.0).unwrap_err(),
        &["cross_entropy", "[2, 5]", "2 targets", "got 1"],
    );
    says(
        t(&[2, 5]).cross_entropy(&[0, 5], 0.0).unwrap_err(),
        &["cross_entropy", "target 5", "C=5"],
    );
    says(
        t(&[2, 5]).cross_entropy(&[0, 1], 1.5).unwrap_err(),
        &["cross_entropy", "label_smoothing"],
    );
    says(
        t(&[2, 5, 1]).cross_entropy(&[0, 1], 0.0).unwrap_err(),
        &["cross_entropy", "[N, C]", "[2, 5, 1]"],
    );
    says(t(&[3]).dropout(1.0, 0).unwrap_err(), &["dropout", "[0, 1)"]);
    says(t(&[3]).softmax(1).unwrap_err(), &["softmax", "axis 1"]);
}

#[test]
fn dtype_device_and_autograd_errors() {
    let h = t(&[2, 2]).cast(DType::BF16).unwrap();
    // Outside autocast, a GEMM op's operands must share a dtype.
    let h4 = t(&[1, 2, 1, 1]).cast(DType::BF16).unwrap();
    says(
        h4.conv2d(&t(&[1, 2, 1, 1]), None, Conv2dParams::default())
            .unwrap_err(),
        &["conv2d", "f32", "bf16", "autocast"],
    );
    says(
        h.matmul(&t(&[2, 2])).unwrap_err(),
        &["matmul", "f32", "bf16"],
    );
    says(
        residual_tensor::AutocastGuard::new(DType::F32)
            .err()
            .unwrap(),
        &["autocast", "f16 or bf16"],
    );
    says(
        t(&[2, 2]).requires_grad_().backward().unwrap_err(),
        &["backward", "scalar", "[2, 2]"],
    );
    says(
        t(&[1]).backward().unwrap_err(),
        &["backward", "does not require grad"],
    );
    // A backward frees what its graph saved: a second one is refused.
    let loss = t(&[2, 2])
        .requires_grad_()
        .relu()
        .unwrap()
        .sum_all()
        .unwrap();
    assert!(loss.backward().is_ok());
    says(
        loss.backward().unwrap_err(),
        &["backward", "second time", "freed", "forward again"],
    );
    says(
        Tensor::arange(0.0, 5.0, -1.0, &Device::cpu()).unwrap_err(),
        &["arange", "step"],
    );
    says(t(&[3]).clamp(1.0, 0.0).unwrap_err(), &["clamp", "lo <= hi"]);
}

#[test]
fn constructors_and_readback() {
    let dev = Device::cpu();
    let a = Tensor::arange(0.0, 3.0, 0.5, &dev).unwrap();
    assert_eq!(a.to_vec().unwrap(), [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    let r1 = Tensor::randn([100], 0.0, 1.0, 5, &dev)
        .unwrap()
        .to_vec()
        .unwrap();
    let r2 = Tensor::randn([100], 0.0, 1.0, 5, &dev)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(r1, r2, "same seed, same numbers");
    let mean = r1.iter().sum::<f32>() / 100.0;
    assert!(mean.abs() < 0.3, "normal mean {mean}");
    let u = Tensor::rand_uniform([1000], -1.0, 3.0, 9, &dev)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(u.iter().all(|&v| (-1.0..3.0).contains(&v)));
    let arr = ndarray::Array::from_shape_vec((2, 3), (0..6).map(|v| v as f32).collect()).unwrap();
    let x = Tensor::from_ndarray(&arr.t().to_owned(), &dev).unwrap();
    assert_eq!(x.dims(), [3, 2]);
    assert_eq!(
        x.to_vec().unwrap(),
        [0.0, 3.0, 1.0, 4.0, 2.0, 5.0],
        "ndarray read in logical order"
    );
    assert_eq!(x.to_ndarray().unwrap().shape(), [3, 2]);
    assert_eq!(
        Tensor::full(2.5, [2], &dev).unwrap().to_vec().unwrap(),
        [2.5, 2.5]
    );
    assert_eq!(Tensor::scalar(4.0, &dev).unwrap().to_scalar().unwrap(), 4.0);
}
