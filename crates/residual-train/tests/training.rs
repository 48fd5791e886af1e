//! Loss scaling, data, checkpoints and exact resume.

mod common;

use common::Subset;

use residual_nn::{named_tensors, Module};
use residual_tensor::{Device, Gradients, Tensor};
use residual_train::checkpoint;
use residual_train::config::{AmpDtype, TrainConfig};
use residual_train::data::{Batch, DataLoader, Dataset, Mnist, Transform};
use residual_train::distributed::Solo;
use residual_train::optim::OptimizerConfig;
use residual_train::scaler::{self, GradScaler};
use residual_train::schedule::Schedule;
use residual_train::step::{train_step, StepSettings};
use residual_train::trainer::{evaluate, StepStats, Trainer};
use residual_zoo::{BackboneConfig, ModelConfig};
use std::sync::Arc;

#[test]
fn grad_scaler_unscales_flags_inf_and_nan_backs_off_and_grows() {
    let mut s = GradScaler::default();
    assert_eq!(s.scale, 65536.0);
    let p = Tensor::zeros([3], &Device::cpu()).unwrap();
    let mut g = Gradients::default();
    g.insert(
        &p,
        Tensor::from_vec(vec![65536.0, f32::INFINITY, 1.0], [3], &Device::cpu()).unwrap(),
    );
    assert!(s.unscale(&mut g).unwrap(), "an inf gradient is found");
    s.update(true);
    assert_eq!(s.scale, 32768.0);
    let mut g = Gradients::default();
    g.insert(
        &p,
        Tensor::from_vec(vec![32768.0, -16384.0, 0.0], [3], &Device::cpu()).unwrap(),
    );
    assert!(!s.unscale(&mut g).unwrap());
    assert_eq!(
        g.get(&p).unwrap().to_vec().unwrap(),
        [1.0, -0.5, 0.0],
        "unscaled"
    );
    let mut nan = Gradients::default();
    nan.insert(
        &p,
        Tensor::from_vec(vec![f32::NAN, 0.0, 0.0], [3], &Device::cpu()).unwrap(),
    );
    assert!(s.unscale(&mut nan).unwrap(), "NaN counts as overflow");
    // Growth: x2 after 2000 clean steps.
    let mut s = GradScaler::default();
    for _ in 0..1999 {
        s.update(false);
    }
    assert_eq!(s.scale, 65536.0);
    s.update(false);
    assert_eq!(s.scale, 131072.0);
}

/// A trainer of `config` on the first 32 bundled test digits, and its first
/// training batch.
fn trainer_and_batch(config: TrainConfig) -> (Trainer, Batch) {
    let dev = Device::cpu();
    let data: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(false).unwrap(), 32));
    let t = Trainer::new(config, data, &dev).unwrap();
    let batch = t.train.batch(&t.train.order(0), 0, 0, &dev).unwrap();
    (t, batch)
}

/// What a skipped step must leave as it was.
struct OptimizerBits {
    /// Every trainable parameter's values, as bits, by name.
    params: Vec<(String, Vec<u32>)>,
    /// The optimizer's state tensors (momentum), as bits.
    state: Vec<(String, Vec<u32>)>,
    /// Its step count.
    steps: u64,
}

fn optimizer_bits(t: &Trainer) -> OptimizerBits {
    let bits =
        |x: &Tensor| -> Vec<u32> { x.to_vec().unwrap().iter().map(|v| v.to_bits()).collect() };
    let params = t
        .optimizer
        .params()
        .iter()
        .map(|(n, p)| (n.clone(), bits(&p.get())))
        .collect();
    let (state, steps) = t.optimizer.state_tensors();
    let state = state.iter().map(|(n, x)| (n.clone(), bits(x))).collect();
    OptimizerBits {
        params,
        state,
        steps,
    }
}

#[test]
fn forced_overflow_skips_the_step_and_halves_the_scale() {
    let mut config = tiny_config(1);
    config.amp = Some(AmpDtype::F16);
    let (mut t, batch) = trainer_and_batch(config);
    let settings = StepSettings::from(&t.config);
    // A clean step first, so that the optimizer has momentum a wrongly taken
    // step would apply.
    let mut scaler = GradScaler {
        scale: 256.0,
        growth_tracker: 5,
        ..GradScaler::default()
    };
    let clean = train_step(
        &*t.model,
        &mut t.optimizer,
        Some(&mut scaler),
        &batch,
        &settings,
        0.05,
        false,
        &Solo,
    )
    .unwrap();
    assert!(!clean.skipped && clean.grad_norm.is_finite(), "{clean:?}");
    assert_eq!((scaler.scale, scaler.growth_tracker), (256.0, 6));
    let before = optimizer_bits(&t);
    assert_eq!(before.steps, 1);
    // 2^24 times the loss overflows the f16 backward of the classifier (its
    // gradients reach 2^24 / batch, past f16's 65504), not f32.
    scaler.scale = (1u32 << 24) as f32;
    let out = train_step(
        &*t.model,
        &mut t.optimizer,
        Some(&mut scaler),
        &batch,
        &settings,
        0.05,
        false,
        &Solo,
    )
    .unwrap();
    assert!(out.skipped, "the step is reported skipped: {out:?}");
    assert_eq!(out.loss_scale, Some((1u32 << 24) as f32));
    assert_eq!(
        (scaler.scale, scaler.growth_tracker),
        ((1u32 << 23) as f32, 0),
        "halved, growth restarts"
    );
    let after = optimizer_bits(&t);
    assert_eq!(after.steps, before.steps, "the optimizer counted no step");
    for ((name, a), (_, b)) in before.params.iter().zip(&after.params) {
        assert!(a == b, "parameter {name} changed in a skipped step");
    }
    assert!(
        before.state == after.state,
        "the optimizer state changed in a skipped step"
    );
    assert_eq!(before.params.len(), t.optimizer.params().len());
}

#[test]
fn scaled_backward_gives_the_plain_gradients_after_unscaling() {
    let (t, batch) = trainer_and_batch(tiny_config(1));
    // A backward frees its graph: each one gets its own forward (the same
    // values: batch statistics, deterministic kernels).
    let loss = || {
        let logits = t
            .model
            .forward(&batch.images, residual_nn::Mode::Train)
            .unwrap();
        logits.cross_entropy(&batch.labels, 0.1).unwrap()
    };
    let (plain, overflow) = scaler::backward(&loss(), None).unwrap();
    assert!(!overflow);
    for k in [1, 12, 24] {
        let s = GradScaler {
            scale: (1u32 << k) as f32,
            ..GradScaler::default()
        };
        let (scaled, overflow) = scaler::backward(&loss(), Some(&s)).unwrap();
        assert!(!overflow, "2^{k} does not overflow f32");
        assert_eq!(scaled.len(), plain.len());
        for (name, p) in t.optimizer.params() {
            let want = plain.get(&p.get()).unwrap().to_vec().unwrap();
            let got = scaled.get(&p.get()).unwrap().to_vec().unwrap();
            assert!(want.iter().any(|&v| v != 0.0), "{name} has a gradient");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // Scaling by a power of two is exact in f32 (short of the
                // subnormals): the same gradients within f32 rounding.
                assert!(
                    (g - w).abs() <= 4.0 * f32::EPSILON * w.abs() + f32::MIN_POSITIVE,
                    "scale 2^{k}: {name}[{i}]: {g} after unscaling, {w} plain"
                );
            }
        }
    }
}

#[test]
fn evaluation_drops_the_runs_augmentation_and_keeps_its_normalisation() {
    let dev = Device::cpu();
    let data: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(false).unwrap(), 48));
    let normalize = Transform::Normalize {
        mean: vec![0.13],
        std: vec![0.33],
    };
    let mut config = tiny_config(1);
    config.transforms = vec![
        Transform::RandomCrop { padding: 4 },
        Transform::HorizontalFlip,
        normalize.clone(),
    ];
    let t = Trainer::new(config, data.clone(), &dev).unwrap();
    let eval =
        |transforms: &[Transform]| evaluate(&*t.model, data.clone(), transforms, 16, &dev).unwrap();
    let want = eval(std::slice::from_ref(&normalize));
    assert_eq!(t.evaluate(data.clone(), 16).unwrap(), want);
    // On this data both halves of the claim show: evaluating through the
    // run's transforms unfiltered (augmentation included), or through none
    // (no normalisation), gives another result.
    let augmented = eval(&t.config.transforms);
    assert_ne!(augmented.loss, want.loss, "augmentation changes the result");
    assert_ne!(
        eval(&[]).loss,
        want.loss,
        "normalisation changes the result"
    );
}

#[test]
fn bundled_mnist_and_bad_files() {
    let train = Mnist::bundled(true).unwrap();
    let test = Mnist::bundled(false).unwrap();
    assert_eq!((train.len(), test.len()), (7996, 2004));
    assert_eq!(train.shape(), [1, 28, 28]);
    let (img, label) = train.get(0).unwrap();
    assert!(label < 10 && img.len() == 784 && img.iter().all(|&v| v == 0.0 || v == 1.0));
    let counts = (0..test.len()).fold([0usize; 10], |mut c, i| {
        c[test.get(i).unwrap().1] += 1;
        c
    });
    assert!(
        counts.iter().all(|&c| c > 150),
        "every digit in the test split: {counts:?}"
    );
    let err = Mnist::from_idx(b"not an idx file at all", b"x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("IDX3"), "{err}");
    let mut img = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
    img.extend(vec![0u8; 784]); // one image where the header says two
    let lab = [0u8, 0, 8, 1, 0, 0, 0, 2, 1, 2];
    let err = Mnist::from_idx(&img, &lab).unwrap_err().to_string();
    assert!(
        err.contains("2 images") && err.contains("784 bytes"),
        "{err}"
    );
    let err = Mnist::from_dir("/no/such/dir", true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn loader_is_seeded_and_drops_the_last_batch() {
    let data: Arc<dyn Dataset> = Arc::new(Mnist::bundled(false).unwrap());
    let mut l = DataLoader::new(data.clone(), 100, true, true, 5).unwrap();
    l.transforms = vec![
        Transform::RandomCrop { padding: 2 },
        Transform::HorizontalFlip,
    ];
    assert_eq!(l.batches(), 20);
    assert_eq!(l.order(0), l.order(0));
    assert_ne!(l.order(0), l.order(1));
    let mut sorted = l.order(3);
    sorted.sort();
    assert_eq!(sorted, (0..2004).collect::<Vec<_>>());
    let dev = Device::cpu();
    let a = l.batch(&l.order(0), 0, 3, &dev).unwrap();
    let b = l.batch(&l.order(0), 0, 3, &dev).unwrap();
    assert_eq!(a.images.dims(), [100, 1, 28, 28]);
    assert_eq!(
        a.images.to_vec().unwrap(),
        b.images.to_vec().unwrap(),
        "same seed, same augmentation"
    );
    let keep = DataLoader::new(data, 100, false, false, 5).unwrap();
    assert_eq!(keep.batches(), 21);
    assert_eq!(
        keep.batch(&keep.order(0), 0, 20, &dev)
            .unwrap()
            .labels
            .len(),
        4
    );
    assert!(DataLoader::new(Arc::new(Mnist::bundled(false).unwrap()), 0, true, true, 0).is_err());
}

/// The first `n` samples of a dataset.
/// A dataset whose augmentation on decode always fails: shows which path a
/// loader reads.
struct DecodeAugmentFails(Subset);
impl Dataset for DecodeAugmentFails {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn shape(&self) -> [usize; 3] {
        self.0.shape()
    }
    fn classes(&self) -> usize {
        10
    }
    fn get(&self, i: usize) -> residual_tensor::Result<(Vec<f32>, usize)> {
        self.0.get(i)
    }
    fn get_seeded(&self, _: usize, _: u64) -> residual_tensor::Result<(Vec<f32>, usize)> {
        Err(residual_tensor::Error::arg("get_seeded", "augmented read"))
    }
}

#[test]
fn training_reads_augment_on_decode_and_evaluation_does_not() {
    let dev = Device::cpu();
    let data: Arc<dyn Dataset> = Arc::new(DecodeAugmentFails(Subset(
        Mnist::bundled(false).unwrap(),
        40,
    )));
    let loader = DataLoader::new(data.clone(), 8, true, true, 1).unwrap();
    let err = loader.batch(&loader.order(0), 0, 0, &dev).unwrap_err();
    assert!(err.to_string().contains("augmented read"), "{err}");
    let t = Trainer::new(tiny_config(1), data.clone(), &dev).unwrap();
    let plain: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(false).unwrap(), 40));
    let (a, b) = (
        t.evaluate(data, 16).unwrap(),
        t.evaluate(plain, 16).unwrap(),
    );
    assert_eq!((a.loss, a.acc), (b.loss, b.acc));
}

fn tiny_config(epochs: u64) -> TrainConfig {
    TrainConfig {
        model: "resnet20".into(),
        model_config: residual_zoo::resolve("resnet20", &Default::default()).unwrap(),
        epochs,
        batch_size: 32,
        lr: 0.05,
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 5e-4,
        },
        schedule: Schedule::OneCycle {
            total: 3 * 3,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
        },
        clip_grad_norm: Some(5.0),
        label_smoothing: 0.1,
        seed: 3,
        no_decay_norm_bias: true,
        transforms: vec![
            Transform::RandomCrop { padding: 2 },
            Transform::Normalize {
                mean: vec![0.13],
                std: vec![0.33],
            },
        ],
        log_every: 2,
        amp: None,
        data: None,
        sync_bn: false,
        precise_bn: 0,
    }
}

#[test]
fn stopped_and_resumed_run_ends_bit_identical() {
    let dev = Device::cpu();
    let data: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(true).unwrap(), 96));
    let mut straight = Trainer::new(tiny_config(3), data.clone(), &dev).unwrap();
    let mut logged = 0;
    for _ in 0..3 {
        straight
            .train_epoch(&mut |s| logged += s.layer_grad_norms.is_some() as usize)
            .unwrap();
    }
    assert!(logged > 0, "per-layer gradient norms were recorded");

    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("run");
    let mut first = Trainer::new(tiny_config(3), data.clone(), &dev).unwrap();
    first.train_epoch(&mut |_| {}).unwrap();
    first.save(&dir).unwrap();
    drop(first);
    let mut resumed = Trainer::resume(&dir, data.clone(), None, &dev).unwrap();
    assert_eq!(resumed.epoch, 1);
    while resumed.epoch < 3 {
        resumed.train_epoch(&mut |_| {}).unwrap();
    }
    for ((n, a), (_, b)) in named_tensors(&*straight.model)
        .into_iter()
        .zip(named_tensors(&*resumed.model))
    {
        assert_eq!(
            a.get().to_vec().unwrap(),
            b.get().to_vec().unwrap(),
            "{n} differs after resume"
        );
    }
    assert_eq!(straight.optimizer.steps(), resumed.optimizer.steps());

    // The weights file loads as a plain model (what `residual predict` reads).
    let m = residual_zoo::create(
        "resnet20",
        &residual_zoo::ModelOptions {
            in_channels: Some(1),
            ..Default::default()
        },
        0,
        &dev,
    )
    .unwrap();
    residual_nn::weights::load_safetensors(&*m, dir.join("model.safetensors"), true).unwrap();

    // Corrupt, truncated and foreign checkpoints are clear errors.
    let state = std::fs::read(dir.join("state.safetensors")).unwrap();
    std::fs::write(dir.join("state.safetensors"), &state[..state.len() / 2]).unwrap();
    let err = checkpoint::read(&dir, &dev).unwrap_err().to_string();
    assert!(err.contains("state.safetensors"), "{err}");
    std::fs::copy(dir.join("model.safetensors"), dir.join("state.safetensors")).unwrap();
    let err = Trainer::resume(&dir, data, None, &dev)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a residual checkpoint"), "{err}");
}

/// The per-step losses of a run of `config` on the first `n` bundled digits.
fn losses(config: TrainConfig, n: usize) -> (Vec<StepStats>, Trainer) {
    let data: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(true).unwrap(), n));
    let mut t = Trainer::new(config, data, &Device::cpu()).unwrap();
    let mut steps = Vec::new();
    while t.epoch < t.config.epochs {
        t.train_epoch(&mut |s| steps.push(s.clone())).unwrap();
    }
    (steps, t)
}

/// The largest relative difference between two runs' loss curves, each
/// smoothed over windows of 5 steps (what a plot of the curve shows).
fn curve_distance(a: &[StepStats], b: &[StepStats]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.chunks(5)
        .zip(b.chunks(5))
        .map(|(x, y)| {
            let mx: f32 = x.iter().map(|s| s.loss).sum();
            let my: f32 = y.iter().map(|s| s.loss).sum();
            (mx - my).abs() / my
        })
        .fold(0.0, f32::max)
}

#[test]
fn mixed_precision_runs_track_the_f32_run() {
    let config = |amp, lr: f32| TrainConfig {
        schedule: Schedule::Constant,
        lr,
        label_smoothing: 0.0,
        transforms: vec![Transform::Normalize {
            mean: vec![0.13],
            std: vec![0.33],
        }],
        amp,
        ..tiny_config(3)
    };
    let (f32_run, _) = losses(config(None, 0.05), 320);
    // Training is chaotic: any perturbation grows from step to step. The
    // yardstick is how far f32 runs whose learning rate is nudged by one
    // bf16 rounding (2^-8 relative) move: the farther of a nudge up and one
    // down, since one nudge alone is a single draw of that spread (0.02 to
    // 0.08 on this run, as the f32 convolutions' own rounding changes).
    let yardstick = [1.0 + 2f32.powi(-8), 1.0 - 2f32.powi(-8)]
        .into_iter()
        .map(|nudge| curve_distance(&losses(config(None, 0.05 * nudge), 320).0, &f32_run))
        .fold(0.0, f32::max);
    for amp in [AmpDtype::Bf16, AmpDtype::F16] {
        let (run, trainer) = losses(config(Some(amp), 0.05), 320);
        let distance = curve_distance(&run, &f32_run);
        let skipped = run.iter().filter(|s| s.skipped).count();
        eprintln!(
            "{amp:?}: loss curve within {distance:.4} of the f32 run's (nudged f32 run: {yardstick:.4}), {skipped} steps skipped, final scale {:?}",
            trainer.scaler.as_ref().map(|s| s.scale)
        );
        assert!(
            distance <= (3.0 * yardstick).max(0.02),
            "{amp:?} run left the f32 run: {distance} (a nudged f32 run: {yardstick})"
        );
        let mean = |s: &[StepStats]| s.iter().map(|s| s.loss).sum::<f32>() / s.len() as f32;
        let (first, last) = (mean(&run[..5]), mean(&run[run.len() - 5..]));
        assert!(
            last < 0.6 * first,
            "{amp:?} run did not learn: {first} -> {last}"
        );
        // f16 scales the loss (2^16 until an overflow), bf16 does not.
        match amp {
            AmpDtype::F16 => {
                assert!(run.iter().all(|s| s.loss_scale.is_some()));
                assert!(trainer.scaler.is_some());
            }
            AmpDtype::Bf16 => assert!(run.iter().all(|s| s.loss_scale.is_none())),
        }
    }
}

#[test]
fn loss_scaler_state_survives_resume() {
    let dev = Device::cpu();
    let data: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(true).unwrap(), 64));
    let config = TrainConfig {
        amp: Some(AmpDtype::F16),
        ..tiny_config(1)
    };
    let mut t = Trainer::new(config, data.clone(), &dev).unwrap();
    let s = t.scaler.as_mut().expect("an f16 run scales its loss");
    (s.scale, s.growth_tracker) = (1024.0, 7);
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("run");
    t.save(&dir).unwrap();
    let r = Trainer::resume(&dir, data, None, &dev).unwrap();
    assert_eq!(r.config.amp, Some(AmpDtype::F16));
    assert_eq!(r.scaler, t.scaler);
}

#[test]
fn every_registered_model_trains_through_the_one_step() {
    let dev = Device::cpu();
    let data: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(true).unwrap(), 4));
    for name in residual_zoo::names() {
        let config = TrainConfig {
            model: name.into(),
            model_config: residual_zoo::resolve(name, &Default::default()).unwrap(),
            epochs: 1,
            batch_size: 2,
            log_every: 1,
            transforms: vec![],
            ..tiny_config(1)
        };
        let mut t = Trainer::new(config, data.clone(), &dev).unwrap();
        assert_eq!(
            (
                t.model.config().in_channels(),
                t.model.config().num_classes()
            ),
            (1, 10),
            "{name}: the data sets channels and classes"
        );
        let mut steps = Vec::new();
        t.train_epoch(&mut |s| steps.push(s.clone())).unwrap();
        assert_eq!(steps.len(), 2, "{name}");
        for s in &steps {
            assert!(s.loss.is_finite() && s.grad_norm > 0.0, "{name}: {s:?}");
            let zeros = s.zero_activations.as_ref().expect("monitored every step");
            // The stem and every block: a ResNet's `layerN.M`; a hybrid's
            // backbone blocks and transformer blocks.
            let blocks = match t.model.config() {
                ModelConfig::Resnet(c) => c.layers.iter().sum::<usize>(),
                ModelConfig::Hybrid(c) => {
                    let backbone: usize = match &c.backbone {
                        BackboneConfig::Resnetv2 { layers, .. } => layers.iter().sum(),
                        BackboneConfig::Resnet { resnet, stages } => {
                            resnet.layers[..*stages].iter().sum()
                        }
                    };
                    backbone + c.depth
                }
            };
            assert_eq!(zeros.len(), 1 + blocks, "{name}: the stem and every block");
            assert!(!s.layer_grad_norms.as_ref().unwrap().is_empty());
        }
    }
}

#[test]
fn checkpoints_of_format_v1_still_resume() {
    let dev = Device::cpu();
    let data: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(true).unwrap(), 64));
    let config = TrainConfig {
        model_config: residual_zoo::resolve(
            "resnet20",
            &residual_zoo::ModelOptions::default().set("act", "silu"),
        )
        .unwrap(),
        ..tiny_config(2)
    };
    let mut t = Trainer::new(config, data.clone(), &dev).unwrap();
    t.train_epoch(&mut |_| {}).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("run");
    t.save(&dir).unwrap();
    // Rewrite the metadata as the previous format stored it: the run config
    // named the preset with `norm` and `act` beside it, and no model config.
    let path = dir.join("state.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(&md.metadata().as_ref().unwrap()["residual"]).unwrap();
    meta["format"] = "residual-checkpoint-v1".into();
    let c = meta["config"].as_object_mut().unwrap();
    c.remove("model_config");
    c.insert("norm".into(), "batch".into());
    c.insert("act".into(), "silu".into());
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        st.tensors().into_iter().collect();
    let old = safetensors::serialize(
        tensors,
        Some(std::collections::HashMap::from([(
            "residual".to_string(),
            meta.to_string(),
        )])),
    )
    .unwrap();
    std::fs::write(&path, old).unwrap();
    let r = Trainer::resume(&dir, data, None, &dev).unwrap();
    assert_eq!(r.epoch, 1);
    assert_eq!(
        r.config.model_config, t.config.model_config,
        "norm and act carried over"
    );
    for ((n, a), (_, b)) in named_tensors(&*t.model)
        .into_iter()
        .zip(named_tensors(&*r.model))
    {
        assert_eq!(a.get().to_vec().unwrap(), b.get().to_vec().unwrap(), "{n}");
    }
}

#[test]
fn nan_weights_or_inputs_give_a_nan_loss_not_a_plausible_one() {
    // PyTorch propagates NaN through every op: a model with NaN weights, or a
    // NaN input, evaluates to a NaN loss, never to ~2.30 and chance accuracy.
    let dev = Device::cpu();
    let data: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(false).unwrap(), 32));
    let t = Trainer::new(tiny_config(1), data.clone(), &dev).unwrap();
    let (name, first) = named_tensors(&*t.model)
        .into_iter()
        .find(|(_, p)| p.get().rank() == 4)
        .unwrap();
    let good = first.get();
    first.set(Tensor::full(f32::NAN, good.shape().clone(), &dev).unwrap());
    let ev = t.evaluate(data.clone(), 16).unwrap();
    assert!(ev.loss.is_nan(), "{name} all NaN: loss {}", ev.loss);
    first.set(good);
    assert!(t.evaluate(data, 16).unwrap().loss.is_finite());
    let x = Tensor::full(f32::NAN, [2, 1, 28, 28], &dev).unwrap();
    let logits = residual_tensor::no_grad(|| t.model.forward(&x, residual_nn::Mode::Eval)).unwrap();
    assert!(logits.to_vec().unwrap().iter().all(|v| v.is_nan()));
}
