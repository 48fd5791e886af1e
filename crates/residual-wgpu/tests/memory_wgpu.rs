//! Device memory stays flat over training steps: freed tensors' buffers go
//! back to the pool and are reused (its own test binary, so that no other
//! test allocates on the device meanwhile).

use residual_nn::{named_tensors, Mode, Module};
use residual_tensor::Tensor;
use residual_train::optim::{Optimizer, OptimizerConfig};
use residual_zoo::{create, ModelOptions};

#[test]
fn a_training_loop_runs_in_constant_device_memory() {
    let Some(gpu) = residual_wgpu::test_device() else {
        return;
    };
    let model = create("resnet20", &ModelOptions::classes(10), 3, &gpu).unwrap();
    let mut opt = Optimizer::new(OptimizerConfig::adamw(), named_tensors(&*model), true);
    let mut after = Vec::new();
    for step in 0..6u64 {
        let x = Tensor::randn([4, 3, 16, 16], 0.0, 1.0, step, &gpu).unwrap();
        let loss = model
            .forward(&x, Mode::Train)
            .unwrap()
            .cross_entropy(&[1, 2, 3, 4], 0.0)
            .unwrap();
        let grads = loss.backward().unwrap();
        opt.step(&grads, 1e-3).unwrap();
        loss.to_scalar().unwrap();
        drop((x, loss, grads));
        after.push(residual_wgpu::pool_stats().unwrap());
    }
    // The first steps fill the pool (optimizer moments appear on step 1);
    // from then on nothing new is created and the bytes in use do not grow.
    let settled = after[2];
    for (i, s) in after.iter().enumerate().skip(3) {
        assert_eq!(
            s.created, settled.created,
            "step {i} created buffers: {after:?}"
        );
        assert_eq!(
            s.in_use, settled.in_use,
            "step {i} holds more memory: {after:?}"
        );
    }
    assert!(settled.in_use > 0);
}
