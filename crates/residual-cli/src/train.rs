//! `residual train`: the main job. With no arguments it trains a CIFAR-style
//! ResNet-20 on the MNIST digits shipped in the repository.

use crate::data::DataArgs;
use indicatif::{ProgressBar, ProgressStyle};
use residual_tensor::Device;
use residual_tensor::Error;
use residual_train::config::{AmpDtype, TrainConfig};
use residual_train::optim::OptimizerConfig;
use residual_train::schedule::Schedule;
use residual_train::trainer::{StepStats, Trainer};
use residual_zoo::ModelOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `residual train`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: a registered name (`residual summary --help` lists them) or a
    /// .json / .toml model config file.
    #[arg(long, default_value = "resnet20")]
    model: String,
    #[command(flatten)]
    data: DataArgs,
    /// Epochs.
    #[arg(long, default_value_t = 5)]
    epochs: u64,
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Base learning rate (default: 0.1 for sgd, 1e-3 for adamw).
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f32>,
    /// Optimizer: sgd (momentum 0.9, Nesterov, weight decay 5e-4) or adamw (PyTorch's defaults).
    #[arg(long, default_value = "sgd", value_parser = ["sgd", "adamw"])]
    optimizer: String,
    /// Schedule: constant, step:SIZE:GAMMA, multistep:M1,M2:GAMMA, cosine[:WARMUP] or onecycle (steps are optimizer steps).
    #[arg(long, default_value = "onecycle")]
    schedule: String,
    /// Clip gradients to this global L2 norm.
    #[arg(long, allow_negative_numbers = true)]
    clip_grad_norm: Option<f32>,
    /// Cross-entropy label smoothing in [0, 1].
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    label_smoothing: f32,
    /// Freeze batch norm (running statistics, fixed affine terms): the
    /// model's `norm` setting becomes `frozen_batch`.
    #[arg(long)]
    freeze_bn: bool,
    /// The model's normalisation setting: batch or group (GroupNorm, 32
    /// groups, for small batches); the model's own when not given.
    #[arg(long, value_parser = ["batch", "group"])]
    norm: Option<String>,
    /// The model's activation setting: relu, gelu or silu; the model's own
    /// when not given.
    #[arg(long, value_parser = ["relu", "gelu", "silu"])]
    act: Option<String>,
    /// Seed of initialisation, data order and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Mixed precision: convolutions and the classifier in half precision
    /// (bf16 on the CPU, f16 on a GPU with f16 arithmetic), norms and the loss
    /// in f32, f32 master weights; f16 scales the loss dynamically.
    #[arg(long)]
    amp: bool,
    /// The half-precision dtype of --amp instead of the device's default (implies --amp).
    #[arg(long, value_parser = ["bf16", "f16"])]
    amp_dtype: Option<String>,
    #[command(flatten)]
    device: crate::device::DeviceArg,
    /// Run folder for the checkpoint and the log.
    #[arg(long, default_value = "runs/mnist")]
    out: PathBuf,
    /// Continue the run saved in this folder (its configuration; --epochs may extend it).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Steps between per-layer gradient-norm records in the log.
    #[arg(long, default_value_t = 20)]
    log_every: u64,
}

fn config(a: &Args, steps_per_epoch: u64, dev: &Device) -> Result<TrainConfig, Error> {
    let (optimizer, default_lr) = match a.optimizer.as_str() {
        "adamw" => (OptimizerConfig::adamw(), 1e-3),
        _ => (
            OptimizerConfig::Sgd {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 5e-4,
            },
            0.1,
        ),
    };
    let mut opts = ModelOptions::default();
    if let Some(norm) = &a.norm {
        opts = opts.set("norm", norm.as_str());
    }
    if let Some(act) = &a.act {
        opts = opts.set("act", act.as_str());
    }
    let mut model_config = residual_zoo::resolve(&a.model, &opts)?;
    if a.freeze_bn {
        // Freezing applies to batch norm: refuse it over group norm, whether
        // --norm or the model's own config chose it.
        let norm = serde_json::to_value(&model_config)
            .ok()
            .and_then(|v| v.get("norm").cloned());
        if norm == Some("group".into()) {
            return Err(Error::arg(
                "train",
                format!(
                    "--freeze-bn applies to batch norm; {} would use group norm",
                    a.model
                ),
            ));
        }
        model_config.set("norm", "frozen_batch".into())?;
    }
    if !(0.0..=1.0).contains(&a.label_smoothing) {
        return Err(Error::arg(
            "train",
            format!(
                "--label-smoothing must be in [0, 1], got {}",
                a.label_smoothing
            ),
        ));
    }
    if let Some(c) = a.clip_grad_norm.filter(|c| c.is_nan() || *c <= 0.0) {
        return Err(Error::arg(
            "--clip-grad-norm",
            format!("must be a number > 0, got {c}"),
        ));
    }
    let lr = a.lr.unwrap_or(default_lr);
    if !(lr.is_finite() && lr > 0.0) {
        return Err(Error::arg(
            "--lr",
            format!("must be a finite number > 0, got {lr}"),
        ));
    }
    let total_steps = a.epochs.checked_mul(steps_per_epoch).ok_or_else(|| {
        Error::arg(
            "--epochs",
            format!(
                "{} epochs of {steps_per_epoch} steps overflow the step counter",
                a.epochs
            ),
        )
    })?;
    Ok(TrainConfig {
        model: a.model.clone(),
        model_config,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr,
        optimizer,
        schedule: Schedule::parse(&a.schedule, total_steps)?,
        clip_grad_norm: a.clip_grad_norm,
        label_smoothing: a.label_smoothing,
        seed: a.seed,
        no_decay_norm_bias: true,
        transforms: a.data.train_transforms(),
        log_every: a.log_every,
        amp: match a.amp_dtype.as_deref() {
            Some("f16") => Some(AmpDtype::F16),
            Some(_) => Some(AmpDtype::Bf16),
            None => a.amp.then(|| AmpDtype::for_device(dev)),
        },
    })
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Trains, evaluating and checkpointing after every epoch.
pub fn run(a: Args) -> Result<(), Error> {
    let dev = a.device.open()?;
    let (train, test) = a.data.splits()?;
    if test.is_empty() {
        return Err(Error::arg(
            "--data",
            format!(
                "{} has no held-out images to evaluate on (its test split is empty)",
                a.data.data
            ),
        ));
    }
    if a.batch_size == 0 || a.batch_size > train.len() {
        return Err(Error::arg(
            "train",
            format!(
                "--batch-size must be in 1..={} (the training set), got {}",
                train.len(),
                a.batch_size
            ),
        ));
    }
    let steps = (train.len() / a.batch_size) as u64;
    let (mut trainer, out) = match &a.resume {
        Some(dir) => (
            Trainer::resume(dir, train.clone(), Some(a.epochs), &dev)?,
            dir.clone(),
        ),
        None => (
            Trainer::new(config(&a, steps, &dev)?, train.clone(), &dev)?,
            a.out.clone(),
        ),
    };
    std::fs::create_dir_all(&out).map_err(|e| io(&out, e))?;
    let log_path = out.join("log.jsonl");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| io(&log_path, e))?;
    let cfg = &trainer.config;
    eprintln!(
        "training {} on {} ({} train / {} test) for {} epochs, batch {}, lr {}, {:?}, {} -> {}",
        cfg.model,
        a.data.data,
        train.len(),
        test.len(),
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        cfg.schedule,
        match cfg.amp {
            Some(AmpDtype::Bf16) => "mixed precision bf16",
            Some(AmpDtype::F16) => "mixed precision f16 (dynamic loss scaling)",
            None => "f32",
        },
        out.display()
    );
    let t_start = Instant::now();
    while trainer.epoch < trainer.config.epochs {
        let epoch = trainer.epoch;
        let bar = ProgressBar::new(trainer.train.batches() as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, trainer.config.epochs));
        let mut write_err = None;
        let (mut loss_sum, mut acc_sum, mut n) = (0.0f32, 0.0f32, 0.0f32);
        let t_epoch = Instant::now();
        trainer.train_epoch(&mut |s: &StepStats| {
            loss_sum += s.loss;
            acc_sum += s.acc;
            n += 1.0;
            bar.set_message(format!(
                "loss {:.4} acc {:.3} {:.0} img/s",
                loss_sum / n,
                acc_sum / n,
                s.img_per_s
            ));
            bar.inc(1);
            if let Err(e) = serde_json::to_writer(&mut log, s)
                .map(|_| ())
                .map_err(std::io::Error::from)
                .and_then(|_| writeln!(log))
            {
                write_err = Some(e);
            }
        })?;
        bar.finish_and_clear();
        if let Some(e) = write_err {
            return Err(io(&log_path, e));
        }
        let ev = trainer.evaluate(test.clone(), 256)?;
        let secs = t_epoch.elapsed().as_secs_f32();
        let ips = (trainer.train.batches() * trainer.config.batch_size) as f32 / secs;
        eprintln!(
            "epoch {}/{}: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.1} s, {:.0} img/s",
            epoch + 1, trainer.config.epochs, loss_sum / n, acc_sum / n, ev.loss, ev.acc, secs, ips
        );
        let rec = serde_json::json!({"epoch": epoch + 1, "train_loss": loss_sum / n, "train_acc": acc_sum / n,
            "test_loss": ev.loss, "test_acc": ev.acc, "epoch_seconds": secs, "img_per_s": ips});
        writeln!(log, "{rec}").map_err(|e| io(&log_path, e))?;
        trainer.save(&out)?;
        log.flush().map_err(|e| io(&log_path, e))?;
        residual_train::plots::render_run(&out)?;
    }
    let n_test = test.len();
    let ev = trainer.evaluate(test, 256)?;
    println!(
        "done in {:.1} s: test accuracy {:.2}% ({} images), loss {:.4}; weights {}, state {}, log {}, plots {}",
        t_start.elapsed().as_secs_f32(),
        ev.acc * 100.0,
        n_test,
        ev.loss,
        out.join("model.safetensors").display(),
        out.join("state.safetensors").display(),
        log_path.display(),
        out.join("curves.svg").display()
    );
    Ok(())
}
