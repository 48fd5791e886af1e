//! `residual train`: the main job. With no arguments it trains a CIFAR-style
//! ResNet-20 on the MNIST digits shipped in the repository.
//!
//! `--resume DIR` continues the run saved in DIR with the configuration it was
//! started with, its data included: flags that would change that
//! configuration are refused (given with the run's own values they are
//! accepted), `--data` may point at the same kind of data in a new place, and
//! `--epochs` may extend the run (see [`Trainer::resume`] for what that does to
//! the schedule).

mod args;
mod follower;
mod forecast;
mod replicas;
mod resume;
mod world;

use args::setting;
pub use args::Args;

use crate::board::{Board, EpochFigures};
use crate::data::DataArgs;
use indicatif::{ProgressBar, ProgressStyle};
use residual_nn::weights::crash_point;
use residual_tensor::Device;
use residual_tensor::Error;
use residual_train::checkpoint::{self, CheckpointMeta};
use residual_train::config::{AmpDtype, TrainConfig};
use residual_train::distributed::Collective;
use residual_train::memory::{available_memory, estimate_training, human, MemoryEstimate};
use residual_train::metrics::server::MetricsServer;
use residual_train::metrics::{EpochMetrics, TrainMetrics};
use residual_train::optim::OptimizerConfig;
use residual_train::runlog::{self, RunLog};
use residual_train::schedule::Schedule;
use residual_train::trainer::{EpochEnd, StepStats, Trainer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// `--model` when not given.
const DEFAULT_MODEL: &str = "resnet20";
/// `--epochs` when not given (and not resuming): at least this many ...
const DEFAULT_MIN_EPOCHS: u64 = 8;
/// ... and enough for at least this many optimizer steps, so that a small
/// dataset trains as long as the main job did before 2026-12-06 (8 epochs of
/// 124 steps; it now has [`MAIN_JOB_MIN_STEPS`]).
const DEFAULT_MIN_STEPS: u64 = 960;

/// The main job's steps (ResNet-20 on the bundled digits): 12 epochs of
/// 124 steps, chosen on the validation split (docs/training.md), which its
/// replicas' speed fits in under 5 minutes on 2 cores.
const MAIN_JOB_MIN_STEPS: u64 = 1440;

/// The default epoch count for epochs of `steps_per_epoch` steps (see
/// [`DEFAULT_MIN_EPOCHS`] and [`DEFAULT_MIN_STEPS`]; the main job's
/// `min_steps` is [`MAIN_JOB_MIN_STEPS`]).
fn default_epochs(steps_per_epoch: u64, min_steps: u64) -> u64 {
    min_steps
        .div_ceil(steps_per_epoch.max(1))
        .max(DEFAULT_MIN_EPOCHS)
}
/// `--batch-size` when not given.
const DEFAULT_BATCH_SIZE: usize = 64;
/// `--optimizer` when not given.
const DEFAULT_OPTIMIZER: &str = "sgd";
/// `--schedule` when not given.
const DEFAULT_SCHEDULE: &str = "onecycle";
/// `--replicas` when not given, for the bundled digits (the main job): two
/// replicas of ResNet-20 keep 2 cores busy where one process idles a core
/// between its small kernels (401 against 212-252 img/s on 2026-12-03's
/// machine); every other dataset trains as one replica.
const MAIN_JOB_REPLICAS: usize = 2;
/// `--precise-bn` when not given, for the bundled digits (the main job):
/// batch norm recalibrated on 2,048 clean training images after every
/// epoch (chosen on the validation split, docs/training.md); other data
/// trains without unless asked (not measured there yet).
const MAIN_JOB_PRECISE_BN: usize = 2048;
/// `--out` when not given.
const DEFAULT_OUT: &str = "runs/mnist";
/// `--log-every` when not given.
const DEFAULT_LOG_EVERY: u64 = 20;

fn config(
    a: &Args,
    data: &DataArgs,
    transforms: Vec<residual_train::data::Transform>,
    steps_per_epoch: u64,
    dev: &Device,
) -> Result<TrainConfig, Error> {
    let (optimizer, default_lr) = match a.optimizer.as_deref().unwrap_or(DEFAULT_OPTIMIZER) {
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
    let optimizer = match a.weight_decay {
        Some(wd) if !(wd.is_finite() && wd >= 0.0) => {
            return Err(Error::arg(
                "--weight-decay",
                format!("must be a finite number >= 0, got {wd}"),
            ))
        }
        Some(wd) => optimizer.with_weight_decay(wd),
        None => optimizer,
    };
    let model = a.model.as_deref().unwrap_or(DEFAULT_MODEL);
    let mut model_config = residual_zoo::resolve(model, &a.model_options())?;
    if a.freeze_bn {
        // Freezing applies to batch norm: refuse it over group norm, whether
        // --norm or the model's own config chose it.
        if setting(&model_config, "norm").as_deref() == Some("group") {
            return Err(Error::arg(
                "train",
                format!("--freeze-bn applies to batch norm; {model} would use group norm"),
            ));
        }
        model_config.set("norm", "frozen_batch".into())?;
    }
    let label_smoothing = a.label_smoothing.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::arg(
            "train",
            format!("--label-smoothing must be in [0, 1], got {label_smoothing}"),
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
    let main_job = data.spec() == "mnist" && model == DEFAULT_MODEL;
    let min_steps = match main_job {
        true => MAIN_JOB_MIN_STEPS,
        false => DEFAULT_MIN_STEPS,
    };
    let epochs = a
        .epochs
        .unwrap_or_else(|| default_epochs(steps_per_epoch, min_steps));
    if a.epochs.is_none() && epochs > DEFAULT_MIN_EPOCHS {
        let which = match main_job {
            true => " of ResNet-20 on the bundled digits",
            false => "",
        };
        eprintln!(
            "epochs: {epochs} (by default a run{which} takes at least {min_steps} steps, \
             and an epoch here is {steps_per_epoch}; --epochs N to choose)"
        );
    }
    let total_steps = epochs.checked_mul(steps_per_epoch).ok_or_else(|| {
        Error::arg(
            "--epochs",
            format!("{epochs} epochs of {steps_per_epoch} steps overflow the step counter"),
        )
    })?;
    let batch_size = a.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if let Some(n) = a.precise_bn.filter(|&n| n > 0 && n < batch_size) {
        return Err(Error::arg(
            "--precise-bn",
            format!(
                "{n} images is less than one batch ({batch_size}): recalibration reads whole \
                 batches; give at least {batch_size}, or 0 for none"
            ),
        ));
    }
    Ok(TrainConfig {
        model: model.to_string(),
        model_config,
        epochs,
        batch_size,
        lr,
        optimizer,
        schedule: Schedule::parse(
            a.schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE),
            total_steps,
        )?,
        clip_grad_norm: a.clip_grad_norm,
        label_smoothing,
        seed: a.seed.unwrap_or(0),
        no_decay_norm_bias: true,
        transforms,
        log_every: a.log_every.unwrap_or(DEFAULT_LOG_EVERY),
        amp: a.amp_dtype(dev),
        data: Some(data.source()?),
        sync_bn: a.sync_bn,
        precise_bn: a.precise_bn.unwrap_or(if data.spec() == "mnist" {
            MAIN_JOB_PRECISE_BN
        } else {
            0
        }),
    })
}

/// A run folder must be a folder: `--out FILE` names the problem.
fn check_run_folder(out: &Path) -> Result<(), Error> {
    match std::fs::metadata(out) {
        Ok(m) if !m.is_dir() => Err(Error::arg(
            "--out",
            format!(
                "{} is a file, not a folder: a run folder holds the checkpoint, the log and the plots",
                out.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Estimates the run's memory and, on the CPU, refuses a run whose estimate
/// exceeds the memory available now.
fn check_memory(
    config: &TrainConfig,
    shape: [usize; 3],
    classes: usize,
    dev: &Device,
) -> Result<MemoryEstimate, Error> {
    let estimate = estimate_training(config, shape, classes, dev)?;
    if let Some(available) = available_memory().filter(|_| dev.is_cpu()) {
        let [c, h, w] = shape;
        let what = format!(
            "{} at batch {} on {c}x{h}x{w} inputs",
            config.model, config.batch_size
        );
        estimate.check_fits(available, &what)?;
    }
    Ok(estimate)
}

/// Trains, checkpointing and evaluating after every epoch. Under an MPI
/// launcher (binary built with `--features mpi`) every process runs this
/// with the same flags: rank 0 leads (console, run folder, metrics) and the
/// others follow ([`follower::follow`]).
pub fn run(a: Args) -> Result<(), Error> {
    let timeout = a.collective_timeout.map_or(
        residual_train::distributed::DEFAULT_TIMEOUT,
        std::time::Duration::from_secs,
    );
    let world = world::join(timeout)?;
    // Set when the ranks' agreement checks failed: every rank errs alike.
    let mut every_rank = false;
    let result = train(a, &world, timeout, &mut every_rank);
    if let Err(e) = &result {
        if world.world_size() > 1 && !every_rank {
            // The other ranks would wait for this one until their timeout.
            eprintln!(
                "error: rank {} of {}: {e}",
                world.rank(),
                world.world_size()
            );
            world.abort(1);
        }
    }
    result
}

/// [`run`] on this rank of `world`.
fn train(
    a: Args,
    world: &Arc<dyn Collective>,
    timeout: std::time::Duration,
    every_rank: &mut bool,
) -> Result<(), Error> {
    let lead = world.rank() == 0;
    let dev = a.device.open()?;
    let resumed: Option<(PathBuf, CheckpointMeta)> = match &a.resume {
        Some(dir) => Some((dir.clone(), checkpoint::read_meta(dir)?)),
        None => None,
    };
    let out = match &resumed {
        Some((dir, _)) => dir.clone(),
        None => a.out.clone().unwrap_or_else(|| DEFAULT_OUT.into()),
    };
    check_run_folder(&out)?;
    let data = match &resumed {
        Some((dir, meta)) => {
            let conflicts = resume::resume_conflicts(&a, &meta.config, dir, &dev);
            if !conflicts.is_empty() {
                return Err(Error::arg(
                    "--resume",
                    format!(
                        "a resumed run keeps the configuration it was started with, and these flags \
                         disagree with the run in {}: {}; leave them out (--epochs may extend the run)",
                        dir.display(),
                        conflicts.join("; ")
                    ),
                ));
            }
            resume::resumed_data(&a.data, &meta.config)
        }
        None => a.data.clone(),
    };
    let splits = data.splits()?;
    let (train, test) = (splits.train.clone(), splits.test.clone());
    if let Some(recipe) = splits.recipe.as_ref().filter(|_| lead) {
        eprintln!("images: {}", recipe.describe());
    }
    if let Some(note) = splits.test_note.as_ref().filter(|_| lead) {
        eprintln!("{note}");
    }
    if test.is_empty() {
        return Err(Error::arg(
            "--data",
            format!(
                "{} has no held-out images to evaluate on (its test split is empty)",
                data.spec()
            ),
        ));
    }
    let batch_size = match &resumed {
        Some((_, meta)) => meta.config.batch_size,
        None => a.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
    };
    if batch_size == 0 || batch_size > train.len() {
        return Err(Error::arg(
            "train",
            format!(
                "--batch-size must be in 1..={} (the training set), got {batch_size}",
                train.len(),
            ),
        ));
    }
    let steps = (train.len() / batch_size) as u64;
    let run_config = match &resumed {
        Some((_, meta)) => meta.config.clone(),
        None => config(&a, &data, splits.transforms.clone(), steps, &dev)?,
    };
    // Each process holds its share of the global batch.
    let mut per_process = run_config.clone();
    per_process.batch_size = (per_process.batch_size / world.world_size()).max(1);
    let memory = check_memory(&per_process, train.shape(), train.classes(), &dev)?;
    let mut trainer = match &resumed {
        Some((dir, meta)) => Trainer::resume(dir, train.clone(), a.epochs, &dev).map_err(|e| {
            if meta.config.data.is_none() && a.data.data.is_none() {
                Error::arg(
                    "--resume",
                    format!(
                        "{e} (this checkpoint was written before runs recorded their data, \
                         and {} was assumed: pass the --data it was trained on)",
                        data.spec()
                    ),
                )
            } else {
                e
            }
        })?,
        None => Trainer::new(run_config.clone(), train.clone(), &dev)?,
    };
    let stop = interrupt_flag()?;
    let replicas = a.replicas.or_else(|| {
        // The main job's recipe: two replicas, when the batch allows and no
        // launcher started several processes.
        let main_job = data.spec() == "mnist" && world.world_size() == 1;
        (main_job && trainer.config.batch_size.is_multiple_of(MAIN_JOB_REPLICAS))
            .then_some(MAIN_JOB_REPLICAS)
    });
    // This thread's kernel threads (itself and its share of the cores),
    // held until the run ends.
    let _kernel_pool;
    let world = match replicas.filter(|&n| n > 1) {
        Some(_) if a.replicas.is_some() && world.world_size() > 1 => {
            return Err(Error::arg(
                "--replicas",
                "under an MPI launcher each process is one replica: leave --replicas out \
                 (or run one process with --replicas)",
            ))
        }
        Some(n) => {
            let start = match &resumed {
                Some((dir, _)) => replicas::Start::Resume(dir.clone(), a.epochs),
                None => replicas::Start::New(Box::new(run_config.clone())),
            };
            // Before the other replicas start: a failure leaves none waiting.
            _kernel_pool = replicas::kernel_pool(n)?;
            replicas::start(
                n,
                timeout,
                start,
                train.clone(),
                test.clone(),
                &dev,
                stop.clone(),
            )
        }
        None => {
            _kernel_pool = replicas::kernel_pool(1)?;
            world.clone()
        }
    };
    if world.world_size() > 1 {
        trainer
            .distribute(world.clone())
            .inspect_err(|_| *every_rank = true)?;
    }
    if !lead {
        if follower::follow(trainer, test, &stop)? == follower::Ended::Interrupted {
            std::process::exit(130);
        }
        return Ok(());
    }
    // Before the folder is touched: an address that cannot be served costs nothing.
    let metrics = match &a.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, &out, &trainer, &dev)?),
        None => None,
    };
    // One writer per run folder, held until the process ends.
    let _lock = crate::run_lock::lock(&out)?;
    let stale = residual_nn::weights::remove_stale_temporaries(&out)?;
    if !stale.is_empty() {
        eprintln!(
            "removed {} temporary file(s) a killed run left in {}",
            stale.len(),
            out.display()
        );
    }
    let log_path = out.join("log.jsonl");
    if resumed.is_some() {
        let dropped =
            runlog::cut_to_checkpoint(&log_path, trainer.epoch, trainer.optimizer.steps())?;
        if dropped > 0 {
            eprintln!(
                "log: dropped {dropped} record(s) written after the checkpoint (epoch {}), which this run redoes",
                trainer.epoch
            );
        }
        if trainer.repair_exports(&out)? {
            eprintln!(
                "model.safetensors was behind state.safetensors (a run killed between the two writes): rewritten from the state"
            );
        }
    } else {
        // A new run starts a new log, even in a folder an earlier run used.
        residual_nn::weights::atomic_write(&log_path, b"")?;
    }
    let mut log = RunLog::open(&log_path)?;
    // A new events file per process; TensorBoard merges a folder's files.
    let mut board = Board::open(&out, resumed.as_ref().map(|_| trainer.optimizer.steps()))?;
    if resumed.is_some() {
        log_missing_epoch_record(
            &trainer,
            &mut log,
            &mut board,
            test.clone(),
            splits.test_name,
        )?;
        board.flush()?;
    }
    let cfg = &trainer.config;
    eprintln!(
        "training {} on {} ({} train / {} {}) for {} epochs, batch {}, lr {}, {:?}, {}{}{} -> {}{}",
        cfg.model,
        data.spec(),
        train.len(),
        test.len(),
        splits.test_name,
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        cfg.schedule,
        match cfg.amp {
            Some(AmpDtype::Bf16) => "mixed precision bf16",
            Some(AmpDtype::F16) => "mixed precision f16 (dynamic loss scaling)",
            None => "f32",
        },
        match residual_train::precise_bn::images_read(
            &*trainer.model,
            cfg.precise_bn,
            train.len(),
            cfg.batch_size
        ) {
            0 => String::new(),
            n => format!(", batch norm recalibrated on {n} clean training images after each epoch"),
        },
        match world.world_size() {
            1 => String::new(),
            n => format!(
                ", {}, {} images each a step{}",
                world.describe(),
                cfg.batch_size / n,
                if cfg.sync_bn {
                    ", synchronised batch norm"
                } else {
                    ""
                }
            ),
        },
        out.display(),
        match &resumed {
            Some(_) => format!(", resumed after epoch {}", trainer.epoch),
            None => String::new(),
        }
    );
    if a.amp_falls_back_to_f32(&dev) && resumed.is_none() {
        eprintln!(
            "note: --amp computes in f32 here: this CPU has no native bf16 products (AVX512-BF16), \
             so bf16 GEMMs would upcast to f32 and train slower than f32 does \
             (--amp-dtype bf16 to use bf16 anyway)"
        );
    }
    eprintln!(
        "memory: about {} at the peak (estimate: {} per sample x batch {}, {} for parameters, gradients, optimizer state, runtime and per-step copies)",
        human(memory.total()),
        human(memory.per_sample),
        memory.batch,
        human(memory.fixed)
    );
    if trainer.epoch >= trainer.config.epochs {
        eprintln!(
            "the run has completed its {} epochs; pass --epochs N (N > {}) to extend it",
            trainer.config.epochs, trainer.config.epochs
        );
    }
    let steps_per_epoch = trainer.train.batches() as u64;
    let steps_left = (trainer.config.epochs * steps_per_epoch)
        .saturating_sub(trainer.epoch * steps_per_epoch + trainer.batch_in_epoch as u64);
    eprintln!(
        "cost: {} images in {} steps per epoch, {} step(s) to run; the time follows after {} steps",
        train.len(),
        steps_per_epoch,
        steps_left,
        forecast::FORECAST_AFTER
    );
    let mut forecast = forecast::Forecast::new(steps_per_epoch, steps_left);
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
        bar.set_position(trainer.batch_in_epoch as u64);
        let mut write_err = None;
        let trainer_batch = trainer.config.batch_size;
        // A run resumed mid-epoch counts the epoch's earlier steps from its log.
        let (mut loss_sum, mut acc_sum, mut n) = epoch_sums_so_far(&log_path, &trainer)?;
        let t_epoch = Instant::now();
        let end = trainer.train_epoch_until(&stop, &mut |s: &StepStats| {
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
            if write_err.is_none() {
                write_err = log.append(s).err();
                crash_point("step-logged");
            }
            board.step(s);
            if let Some((m, _)) = &metrics {
                m.step(s, trainer_batch);
            }
            if let Some(line) = forecast.step() {
                // Above the bar on a terminal; a hidden bar's println prints nothing.
                bar.suspend(|| eprintln!("{line}"));
            }
        });
        bar.finish_and_clear();
        let end = end?;
        if let Some(e) = write_err {
            return Err(e);
        }
        // The checkpoint comes before the evaluation: a held-out sample that
        // fails to load costs no training.
        trainer.save(&out)?;
        crash_point("epoch-saved");
        if end == EpochEnd::Stopped {
            board.flush()?;
            // The other ranks wait until the checkpoint is whole.
            trainer.collective().barrier()?;
            interrupted(&trainer, &out);
        }
        let ev = trainer.evaluate(test.clone(), 256)?;
        crash_point("epoch-evaluated");
        let secs = t_epoch.elapsed().as_secs_f32();
        let ips = (trainer.train.batches() * trainer.config.batch_size) as f32 / secs;
        eprintln!(
            "epoch {}/{}: train loss {:.4} acc {:.4} | {} loss {:.4} acc {:.4} | {:.1} s, {:.0} img/s",
            epoch + 1, trainer.config.epochs, loss_sum / n, acc_sum / n, splits.test_name, ev.loss, ev.acc, secs, ips
        );
        log.append(
            &serde_json::json!({"epoch": epoch + 1, "train_loss": loss_sum / n,
            "train_acc": acc_sum / n, "test_loss": ev.loss, "test_acc": ev.acc,
            "epoch_seconds": secs, "img_per_s": ips}),
        )?;
        let figures = EpochFigures {
            train_loss: loss_sum / n,
            train_acc: acc_sum / n,
            test_loss: ev.loss,
            test_acc: ev.acc,
        };
        board.epoch(trainer.optimizer.steps(), &figures);
        board.flush()?;
        if let Some((m, _)) = &metrics {
            m.epoch(&EpochMetrics {
                epoch: epoch + 1,
                train_loss: figures.train_loss,
                train_acc: figures.train_acc,
                eval_loss: ev.loss,
                eval_acc: ev.acc,
            });
        }
        if trainer.export_best(&out, ev.acc)? {
            eprintln!(
                "best so far ({} accuracy): model_best.safetensors",
                splits.test_name
            );
        }
        residual_train::plots::render_run(&out)?;
        if trainer.any_rank_stopping(&stop)? {
            interrupted(&trainer, &out);
        }
    }
    let n_test = test.len();
    let ev = trainer.evaluate(test, 256)?;
    println!(
        "done in {:.1} s: {} accuracy {:.2}% ({} images), loss {:.4}; weights {}, state {}, log {}, plots {}",
        t_start.elapsed().as_secs_f32(),
        splits.test_name,
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

/// Starts the `--metrics-addr` endpoint for the run in `out` (its `run`
/// label), set to where the trainer stands, and says where it serves.
fn serve_metrics(
    addr: &str,
    out: &Path,
    trainer: &Trainer,
    dev: &Device,
) -> Result<(TrainMetrics, MetricsServer), Error> {
    let run = out.display().to_string();
    let (m, registry) = TrainMetrics::new(&run, &trainer.config.model, &dev.to_string());
    let per_epoch = trainer.train.batches() as u64;
    m.start(
        trainer.config.epochs * per_epoch,
        trainer.optimizer.steps(),
        trainer.epoch,
    );
    let server = MetricsServer::start(addr, registry)?;
    eprintln!(
        "metrics: http://{}/metrics (Prometheus text format; label run=\"{run}\")",
        server.addr()
    );
    Ok((m, server))
}

/// The flag Ctrl-C (SIGINT) and SIGTERM raise: the run finishes its step,
/// saves and exits (see [`interrupted`]). A second signal exits at once;
/// the last checkpoint is whole either way.
fn interrupt_flag() -> Result<Arc<AtomicBool>, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond interrupt: exiting now (the last checkpoint is kept)");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing this step and saving a checkpoint (interrupt again to exit at once)");
    })
    .map_err(|e| Error::arg("train", format!("cannot install the Ctrl-C handler: {e}")))?;
    Ok(stop)
}

/// Ends a run stopped by a signal, after its checkpoint: one line saying
/// where it stopped and how to resume, exit status 130.
fn interrupted(trainer: &Trainer, out: &Path) -> ! {
    eprintln!(
        "interrupted at step {} (epoch {}, batch {} of {}): checkpoint saved in {}; resume with: residual train --resume {}",
        trainer.optimizer.steps(),
        trainer.epoch + 1,
        trainer.batch_in_epoch,
        trainer.train.batches(),
        out.display(),
        out.display()
    );
    std::process::exit(130);
}

/// The sums of training loss and accuracy, and the step count, of the
/// current epoch's steps already in the log (a run resumed mid-epoch).
fn epoch_sums_so_far(log_path: &Path, trainer: &Trainer) -> Result<(f32, f32, f32), Error> {
    if trainer.batch_in_epoch == 0 {
        return Ok((0.0, 0.0, 0.0));
    }
    let records = runlog::read(log_path)?.records;
    Ok(runlog::epoch_step_sums(&records, trainer.epoch))
}

/// After a run was killed between its checkpoint and that epoch's
/// evaluation, the log lacks the checkpoint's epoch record: evaluate the
/// resumed model and write it (to the log and the events file), its
/// training figures from the epoch's step records.
fn log_missing_epoch_record(
    trainer: &Trainer,
    log: &mut RunLog,
    board: &mut Board,
    test: std::sync::Arc<dyn residual_train::data::Dataset>,
    test_name: &str,
) -> Result<(), Error> {
    let epoch = trainer.epoch;
    if epoch == 0 {
        return Ok(());
    }
    let records = runlog::read(log.path())?.records;
    let logged = records
        .iter()
        .any(|v| runlog::is_epoch_record(v) && v["epoch"].as_u64() == Some(epoch));
    if logged {
        return Ok(());
    }
    // Rank 0 alone: the other ranks of a data-parallel run do not come here.
    let ev = trainer.evaluate_here(test, 256)?;
    let (loss_sum, acc_sum, n) = runlog::epoch_step_sums(&records, epoch - 1);
    let (train_loss, train_acc) = match n > 0.0 {
        true => (loss_sum / n, acc_sum / n),
        false => (f32::NAN, f32::NAN),
    };
    eprintln!(
        "epoch {epoch} (checkpointed before the run stopped): {test_name} loss {:.4} acc {:.4}",
        ev.loss, ev.acc
    );
    let figures = EpochFigures {
        train_loss,
        train_acc,
        test_loss: ev.loss,
        test_acc: ev.acc,
    };
    board.epoch(trainer.optimizer.steps(), &figures);
    log.append(
        &serde_json::json!({"epoch": epoch, "train_loss": train_loss,
        "train_acc": train_acc, "test_loss": ev.loss, "test_acc": ev.acc}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_epochs_are_eight_or_enough_for_960_steps() {
        let d = DEFAULT_MIN_STEPS;
        assert_eq!(default_epochs(124, d), 8, "7,996 digits at batch 64");
        assert_eq!(default_epochs(781, d), 8, "CIFAR-10 at batch 64");
        assert_eq!(default_epochs(20, d), 48, "1,292 images at batch 64");
        assert_eq!(default_epochs(1, d), 960);
    }

    #[test]
    fn the_main_job_trains_twelve_epochs_and_its_validation_runs_as_many_steps() {
        let m = MAIN_JOB_MIN_STEPS;
        assert_eq!(default_epochs(124, m), 12, "7,996 digits at batch 64");
        assert_eq!(
            default_epochs(99, m),
            15,
            "--val-fraction 0.2: 6,398 digits at batch 64"
        );
    }
}
