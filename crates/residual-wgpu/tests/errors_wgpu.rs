//! Errors on the wgpu device name what was wrong.

use residual_tensor::{Device, Tensor};

#[test]
fn a_tensor_over_the_binding_limit_is_refused_with_the_limit_named() {
    let Some(gpu) = residual_wgpu::test_device() else {
        return;
    };
    // 2^31 f32 elements (8 GiB): above any adapter's storage binding limit.
    let err = Tensor::zeros([1usize << 31], &gpu).unwrap_err().to_string();
    assert!(
        err.contains("max_storage_buffer_binding_size") && err.contains("8589934592 bytes"),
        "{err}"
    );
}

#[test]
fn mixing_devices_is_an_error_naming_both() {
    let Some(gpu) = residual_wgpu::test_device() else {
        return;
    };
    let a = Tensor::ones([2, 2], &gpu).unwrap();
    let b = Tensor::ones([2, 2], &Device::cpu()).unwrap();
    let err = a.add(&b).unwrap_err().to_string();
    assert!(err.contains("wgpu") && err.contains("cpu"), "{err}");
}

#[test]
fn data_round_trips_in_every_dtype() {
    let Some(gpu) = residual_wgpu::test_device() else {
        return;
    };
    use residual_tensor::{DType, HostData};
    // Odd lengths exercise the packing of two halves per word.
    let v: Vec<f32> = (0..7).map(|i| i as f32 * 0.25 - 0.5).collect();
    for data in [
        HostData::F32(v.clone()),
        HostData::F16(v.iter().map(|&x| half::f16::from_f32(x)).collect()),
        HostData::BF16(v.iter().map(|&x| half::bf16::from_f32(x)).collect()),
    ] {
        let t = Tensor::from_host(data.clone(), [7], &gpu).unwrap();
        assert_eq!(t.to_host().unwrap(), data);
        assert_eq!(t.cast(DType::F32).unwrap().to_vec().unwrap(), v);
    }
}
