//! A diverging run stops with where it diverged and never saves NaN weights
//! over its last good checkpoint; a loss scaler that backs off to nothing
//! stops an f16 run.

mod common;

use common::Subset;

use residual_nn::named_tensors;
use residual_tensor::{Device, Tensor};
use residual_train::checkpoint;
use residual_train::config::{AmpDtype, TrainConfig};
use residual_train::data::{Dataset, Mnist, Transform};
use residual_train::optim::OptimizerConfig;
use residual_train::schedule::Schedule;
use residual_train::trainer::Trainer;
use std::sync::Arc;

fn config(amp: Option<AmpDtype>) -> TrainConfig {
    TrainConfig {
        model: "resnet20".into(),
        model_config: residual_zoo::resolve("resnet20", &Default::default()).unwrap(),
        epochs: 3,
        batch_size: 16,
        lr: 0.05,
        optimizer: OptimizerConfig::sgd_momentum(),
        schedule: Schedule::Constant,
        clip_grad_norm: None,
        label_smoothing: 0.0,
        seed: 1,
        no_decay_norm_bias: true,
        transforms: vec![Transform::Normalize {
            mean: vec![0.13],
            std: vec![0.33],
        }],
        log_every: 0,
        amp,
        data: None,
        sync_bn: false,
        precise_bn: 0,
    }
}

fn data(n: usize) -> Arc<dyn Dataset> {
    Arc::new(Subset(Mnist::bundled(false).unwrap(), n))
}

/// Sets the first convolution's weight to NaN: every later step diverges.
fn poison(t: &Trainer) {
    let (_, w) = named_tensors(&*t.model)
        .into_iter()
        .find(|(_, p)| p.get().rank() == 4)
        .unwrap();
    let shape = w.get().shape().clone();
    w.set(Tensor::full(f32::NAN, shape, &Device::cpu()).unwrap());
}

#[test]
fn a_non_finite_loss_stops_the_run_and_the_last_good_checkpoint_stays() {
    let dev = Device::cpu();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let mut t = Trainer::new(config(None), data(64), &dev).unwrap();
    t.train_epoch(&mut |_| {}).unwrap();
    t.save(dir).unwrap();
    let good = std::fs::read(dir.join("state.safetensors")).unwrap();
    poison(&t);
    let steps = t.optimizer.steps();
    let err = t.train_epoch(&mut |_| {}).unwrap_err().to_string();
    for part in [
        "diverged at step 5 (epoch 2, batch 1)",
        "loss NaN",
        "learning rate 0.05",
        "first non-finite gradient",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert_eq!(
        t.optimizer.steps(),
        steps,
        "the diverged step was not taken"
    );
    // Saving NaN weights is refused: the checkpoint on disk is the good one.
    let err = t.save(dir).unwrap_err().to_string();
    assert!(
        err.contains("NaN or infinite") && err.contains("not saved"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("state.safetensors")).unwrap(), good);
    assert_eq!(checkpoint::read_meta(dir).unwrap().epoch, 1);
}

#[test]
fn a_loss_scaler_backing_off_to_nothing_stops_an_f16_run() {
    let dev = Device::cpu();
    // 64 steps of batch 1: enough for 2^16 to halve past 2^-24 (41 halvings).
    let mut c = config(Some(AmpDtype::F16));
    c.batch_size = 1;
    let mut t = Trainer::new(c, data(64), &dev).unwrap();
    poison(&t);
    let mut skipped = 0;
    let err = t
        .train_epoch(&mut |s| skipped += usize::from(s.skipped))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("loss scaler backed off") && err.contains("(epoch 1, batch 42)"),
        "{err}"
    );
    // Scales 2^16 down to 2^-25: the 42nd is below 2^-24.
    assert_eq!(skipped, 41, "each earlier step was skipped, none applied");
    assert_eq!(t.optimizer.steps(), 0);
}
