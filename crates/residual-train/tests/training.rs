//! Loss scaling, data, checkpoints and exact resume.

use residual_nn::named_tensors;
use residual_tensor::{Device, Gradients, Tensor};
use residual_train::checkpoint;
use residual_train::data::{DataLoader, Dataset, Mnist, Transform};
use residual_train::optim::OptimizerConfig;
use residual_train::scaler::GradScaler;
use residual_train::schedule::Schedule;
use residual_train::trainer::{TrainConfig, Trainer};
use residual_zoo::{ActKind, NormKind};
use std::sync::Arc;

#[test]
fn forced_overflow_skips_the_step_and_halves_the_scale() {
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
struct Subset(Mnist, usize);
impl Dataset for Subset {
    fn len(&self) -> usize {
        self.1
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
}

fn tiny_config(epochs: u64) -> TrainConfig {
    TrainConfig {
        model: "resnet20".into(),
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
        norm: NormKind::Batch,
        act: ActKind::Relu,
        no_decay_norm_bias: true,
        transforms: vec![
            Transform::RandomCrop { padding: 2 },
            Transform::Normalize {
                mean: vec![0.13],
                std: vec![0.33],
            },
        ],
        log_every: 2,
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

    let dir = std::env::temp_dir().join(format!("residual-resume-{}", std::process::id()));
    let mut first = Trainer::new(tiny_config(3), data.clone(), &dev).unwrap();
    first.train_epoch(&mut |_| {}).unwrap();
    first.save(&dir).unwrap();
    drop(first);
    let mut resumed = Trainer::resume(&dir, data.clone(), None, &dev).unwrap();
    assert_eq!(resumed.epoch, 1);
    while resumed.epoch < 3 {
        resumed.train_epoch(&mut |_| {}).unwrap();
    }
    for ((n, a), (_, b)) in named_tensors(&straight.model)
        .into_iter()
        .zip(named_tensors(&resumed.model))
    {
        assert_eq!(
            a.get().to_vec().unwrap(),
            b.get().to_vec().unwrap(),
            "{n} differs after resume"
        );
    }
    assert_eq!(straight.optimizer.steps(), resumed.optimizer.steps());

    // The weights file loads as a plain model (what `residual predict` reads).
    let m = residual_zoo::build(
        "resnet20",
        residual_zoo::ModelOptions {
            in_channels: Some(1),
            ..Default::default()
        },
        0,
        &dev,
    )
    .unwrap();
    residual_nn::weights::load_safetensors(&m, dir.join("model.safetensors"), true).unwrap();

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
