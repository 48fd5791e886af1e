//! `residual experiment degradation`: plain-20 / plain-56 against
//! ResNet-20 / ResNet-56 on the bundled digits, with the same budget and
//! settings, to show the degradation problem (deeper plain nets train worse;
//! deeper residual nets do not) and the gradient flow behind it.

use crate::data::mnist_normalize;
use indicatif::{ProgressBar, ProgressStyle};
use residual_tensor::Error;
use residual_train::config::TrainConfig;
use residual_train::data::{Dataset, Mnist, Transform};
use residual_train::optim::OptimizerConfig;
use residual_train::plots::{grad_flow_curves, panels, smooth, Curve, GradSnapshots};
use residual_train::schedule::Schedule;
use residual_train::trainer::{StepStats, Trainer};
use residual_zoo::ModelConfig;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `residual experiment`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// Train plain20, plain56, resnet20 and resnet56 for the same budget and plot
    /// their training error and per-layer gradient norms side by side.
    Degradation(Degradation),
}

#[derive(clap::Args)]
struct Degradation {
    /// Epochs of the bundled digits per model (the budget; 3 take about 15 minutes on 2 cores).
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Shallow and deep depth (6n+2 each: 20, 32, 44, 56, 110).
    #[arg(long, default_value = "20,56")]
    depths: String,
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Learning rate of the one-cycle schedule (SGD, Nesterov momentum 0.9).
    #[arg(long, default_value_t = 0.1)]
    lr: f32,
    /// Seed of initialisation, data order and augmentation (the same for all four).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the plots and summary.json go.
    #[arg(long, default_value = "runs/degradation")]
    out: PathBuf,
    #[command(flatten)]
    device: crate::device::DeviceArg,
}

/// What one model's run produced.
struct Run {
    model: String,
    error: Vec<(f32, f32)>,
    flow: GradSnapshots,
    test_error: f32,
    secs: f32,
}

/// Runs the chosen experiment.
pub fn run(a: Args) -> Result<(), Error> {
    match a.which {
        Which::Degradation(d) => degradation(d),
    }
}

fn degradation(a: Degradation) -> Result<(), Error> {
    let dev = a.device.open()?;
    let depths: Vec<usize> = a
        .depths
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            Error::arg(
                "--depths",
                format!("expected two depths like 20,56, got {:?}", a.depths),
            )
        })?;
    let [shallow, deep] = depths[..] else {
        return Err(Error::arg(
            "--depths",
            format!("expected two depths, got {}", depths.len()),
        ));
    };
    // Every model name is checked before the first one trains.
    let mut configs: Vec<(String, ModelConfig)> = Vec::new();
    for kind in ["plain", "resnet"] {
        for depth in [shallow, deep] {
            let name = format!("{kind}{depth}");
            let config = residual_zoo::resolve(&name, &Default::default())?;
            configs.push((name, config));
        }
    }
    let train: Arc<dyn Dataset> = Arc::new(Mnist::bundled(true)?);
    let test: Arc<dyn Dataset> = Arc::new(Mnist::bundled(false)?);
    if a.batch_size == 0 || a.batch_size > train.len() {
        return Err(Error::arg(
            "--batch-size",
            format!("must be in 1..={}", train.len()),
        ));
    }
    std::fs::create_dir_all(&a.out).map_err(|e| Error::Io {
        path: a.out.display().to_string(),
        msg: e.to_string(),
    })?;
    let steps = a.epochs * (train.len() / a.batch_size) as u64;
    let mut runs = Vec::new();
    for (model, model_config) in configs {
        let config = TrainConfig {
            model: model.clone(),
            model_config,
            epochs: a.epochs,
            batch_size: a.batch_size,
            lr: a.lr,
            optimizer: OptimizerConfig::Sgd {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 5e-4,
            },
            schedule: Schedule::parse("onecycle", steps)?,
            clip_grad_norm: None,
            label_smoothing: 0.0,
            seed: a.seed,
            no_decay_norm_bias: true,
            transforms: vec![Transform::RandomCrop { padding: 2 }, mnist_normalize()],
            log_every: 5,
            amp: None,
            data: None,
            sync_bn: false,
            precise_bn: 0,
        };
        let mut trainer = Trainer::new(config, train.clone(), &dev)?;
        let bar = ProgressBar::new(steps);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix(model.clone());
        let (mut error, mut flow) = (Vec::new(), GradSnapshots::new());
        let t0 = Instant::now();
        while trainer.epoch < trainer.config.epochs {
            trainer.train_epoch(&mut |s: &StepStats| {
                error.push((s.step as f32, 100.0 * (1.0 - s.acc)));
                if let Some(l) = &s.layer_grad_norms {
                    flow.push((s.step, l.clone()));
                }
                bar.set_message(format!("loss {:.3}", s.loss));
                bar.inc(1);
            })?;
        }
        bar.finish_and_clear();
        let secs = t0.elapsed().as_secs_f32();
        let ev = trainer.evaluate(test.clone(), 256)?;
        let run = Run {
            model,
            error,
            flow,
            test_error: 100.0 * (1.0 - ev.acc),
            secs,
        };
        eprintln!(
            "{:>9}: training error (last 20 steps) {:.2}%, held-out error {:.2}%, {:.0} s",
            run.model,
            last_mean(&run.error, 20),
            run.test_error,
            run.secs
        );
        runs.push(run);
    }
    write_outputs(&a, &runs)
}

/// Mean of the last `n` values.
fn last_mean(points: &[(f32, f32)], n: usize) -> f32 {
    let tail = &points[points.len().saturating_sub(n)..];
    tail.iter().map(|p| p.1).sum::<f32>() / tail.len().max(1) as f32
}

fn write_outputs(a: &Degradation, runs: &[Run]) -> Result<(), Error> {
    let curve = |r: &Run, thin: bool| Curve {
        label: r.model.clone(),
        points: smooth(&r.error, 20),
        thin,
    };
    let errors = a.out.join("training_error.svg");
    panels(
        &errors,
        &[
            (
                "plain networks".into(),
                "step".into(),
                "training error % (mean of 20 steps)".into(),
                vec![curve(&runs[0], true), curve(&runs[1], false)],
                true,
            ),
            (
                "residual networks".into(),
                "step".into(),
                "training error % (mean of 20 steps)".into(),
                vec![curve(&runs[2], true), curve(&runs[3], false)],
                true,
            ),
        ],
    )?;
    let flow = a.out.join("grad_flow.svg");
    panels(
        &flow,
        &runs
            .iter()
            .map(|r| {
                (
                    format!("{}: gradient norm by depth", r.model),
                    "layer (0 = stem, last = fc)".into(),
                    "gradient L2 norm".into(),
                    grad_flow_curves(&r.flow, 5),
                    true,
                )
            })
            .collect::<Vec<_>>(),
    )?;
    let summary: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "model": r.model,
                "train_error_last20_pct": last_mean(&r.error, 20),
                "test_error_pct": r.test_error,
                "seconds": r.secs,
                "first_layer_grad_norm_mean": mean_layer_norm(&r.flow, true),
                "last_layer_grad_norm_mean": mean_layer_norm(&r.flow, false),
            })
        })
        .collect();
    let path = a.out.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).expect("json");
    residual_nn::weights::atomic_write(&path, text.as_bytes())?;
    println!("{text}");
    println!(
        "plots: {} and {}; summary: {}",
        errors.display(),
        flow.display(),
        path.display()
    );
    Ok(())
}

/// Mean over snapshots of the first (stem) or last (fc) layer's gradient norm.
fn mean_layer_norm(flow: &GradSnapshots, first: bool) -> f32 {
    let vals: Vec<f32> = flow
        .iter()
        .filter_map(|(_, l)| if first { l.first() } else { l.last() }.map(|p| p.1))
        .collect();
    vals.iter().sum::<f32>() / vals.len().max(1) as f32
}
