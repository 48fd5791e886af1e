//! Data-parallel training on ranks that are threads ([`ThreadCollective`]):
//! N ranks train the model one process trains with the same global batch,
//! an overflow on one rank skips the step on all, a run resumes on another
//! number of ranks, a rank that dies or disagrees stops the others.

mod common;

use common::Subset;
use residual_nn::named_tensors;
use residual_tensor::Device;
use residual_train::config::{AmpDtype, TrainConfig};
use residual_train::data::{Dataset, Mnist, Transform};
use residual_train::distributed::{Collective, ThreadCollective};
use residual_train::optim::OptimizerConfig;
use residual_train::scaler::GradScaler;
use residual_train::schedule::Schedule;
use residual_train::step::{train_step, StepSettings};
use residual_train::trainer::Trainer;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// ResNet-20 on 128 digits, global batch 16 (8 steps an epoch), with `norm`.
fn config(norm: &str, sync_bn: bool, epochs: u64) -> TrainConfig {
    let mut model_config = residual_zoo::resolve("resnet20", &Default::default()).unwrap();
    model_config.set("norm", norm.into()).unwrap();
    TrainConfig {
        model: "resnet20".into(),
        model_config,
        epochs,
        batch_size: 16,
        lr: 0.05,
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 5e-4,
        },
        schedule: Schedule::OneCycle {
            total: epochs * 8,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
        },
        clip_grad_norm: Some(5.0),
        label_smoothing: 0.0,
        seed: 11,
        no_decay_norm_bias: true,
        transforms: vec![
            Transform::RandomCrop { padding: 2 },
            Transform::Normalize {
                mean: vec![0.13],
                std: vec![0.33],
            },
        ],
        log_every: 0,
        amp: None,
        data: None,
        sync_bn,
        precise_bn: 0,
    }
}

fn digits() -> Arc<dyn Dataset> {
    Arc::new(Subset(Mnist::bundled(true).unwrap(), 128))
}

/// Every parameter and buffer of a trainer, by name.
type State = Vec<(String, Vec<f32>)>;

fn state(t: &Trainer) -> State {
    named_tensors(&*t.model)
        .into_iter()
        .map(|(n, p)| (n, p.get().to_vec().unwrap()))
        .collect()
}

/// Runs `f(rank's trainer-to-be collective)` on `world` threads, results in rank order.
///
/// With the Winograd convolutions off: these tests hold the ranks to the
/// rounding of summing a batch in another order (1e-6 of the scale, see
/// [`ONE_STEP`]), which Winograd's own rounding, re-drawn by any change of
/// the weights' last bits, would swamp from the second step on (1e-5 of the
/// scale, for 10% of the values; `residual_tensor::cpu::set_winograd`).
fn on_ranks<T: Send>(world: usize, f: impl Fn(Arc<dyn Collective>) -> T + Sync) -> Vec<T> {
    residual_tensor::cpu::set_winograd(false);
    let group = ThreadCollective::group(world, TIMEOUT);
    std::thread::scope(|s| {
        let handles: Vec<_> = group
            .into_iter()
            .map(|c| {
                let f = &f;
                s.spawn(move || f(Arc::new(c)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// `config` trained for its epochs on `world` ranks (one process when 1):
/// every rank's final state.
fn train(world: usize, config: &TrainConfig) -> Vec<State> {
    on_ranks(world, |c| {
        let mut t = Trainer::new(config.clone(), digits(), &Device::cpu()).unwrap();
        if world > 1 {
            t.distribute(c).unwrap();
        }
        while t.epoch < t.config.epochs {
            t.train_epoch(&mut |_| {}).unwrap();
        }
        state(&t)
    })
}

/// How two states differ, relative to the largest magnitude in the first.
#[derive(Debug)]
struct Difference {
    /// The largest difference over the largest magnitude.
    max: f32,
    /// The fraction of values that differ by more than [`ONE_STEP`] of it.
    beyond_one_step: f64,
}

fn difference(a: &State, b: &State) -> Difference {
    let scale = a
        .iter()
        .flat_map(|(_, x)| x)
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let (mut max, mut beyond, mut total) = (0.0f32, 0usize, 0usize);
    for ((n, x), (m, y)) in a.iter().zip(b) {
        assert_eq!(n, m);
        for (p, q) in x.iter().zip(y) {
            let d = (p - q).abs() / scale;
            max = max.max(d);
            beyond += (d > ONE_STEP) as usize;
            total += 1;
        }
    }
    Difference {
        max,
        beyond_one_step: beyond as f64 / total as f64,
    }
}

/// Whether `d` is f32 rounding: every value within [`ONE_STEP`] but for at
/// most 0.1% of them, which a kink may move (a ReLU whose input rounding
/// moves across zero), none by more than [`KINK`].
fn is_rounding(d: &Difference) -> bool {
    d.beyond_one_step <= 1e-3 && d.max <= KINK
}

/// Every rank ends with rank 0's state, bit for bit.
fn ranks_agree(states: &[State]) {
    for (r, s) in states.iter().enumerate().skip(1) {
        assert!(s == &states[0], "rank {r}'s state differs from rank 0's");
    }
}

/// One step of `config` from the checkpoint in `from` (a fresh run when
/// `None`) on `world` ranks; rank 0 saves the result to `save` when given.
/// Every rank's state after the step.
fn one_step(
    world: usize,
    config: &TrainConfig,
    from: Option<&Path>,
    save: Option<&Path>,
) -> Vec<State> {
    on_ranks(world, |c| {
        let dev = Device::cpu();
        let mut t = match from {
            Some(dir) => Trainer::resume(dir, digits(), None, &dev).unwrap(),
            None => Trainer::new(config.clone(), digits(), &dev).unwrap(),
        };
        if world > 1 {
            t.distribute(c.clone()).unwrap();
        }
        let stop = AtomicBool::new(false);
        let steps = t.optimizer.steps();
        t.train_epoch_until(&stop, &mut |_| stop.store(true, Ordering::SeqCst))
            .unwrap();
        assert_eq!(t.optimizer.steps(), steps + 1);
        if let (Some(dir), 0) = (save, c.rank()) {
            t.save(dir).unwrap();
        }
        state(&t)
    })
}

/// Training is chaotic (a learning rate nudged by 2^-22 moves ResNet-20's
/// weights by 1e-3 of their scale within 8 steps), so runs are compared one
/// step at a time: from the same checkpoint, one step on N ranks and one on
/// one process agree to f32 rounding (the ranks sum their shards' gradients
/// in another order than one process sums its batch's): within 1e-6 of the
/// largest magnitude ...
const ONE_STEP: f32 = 1e-6;
/// ... but where the step crosses a kink. Measured on the sync batch norm
/// run's step 2: 4 ranks moved 91 of its 273,775 values (in conv1, layer2's
/// downsample and layer3.1.conv1) by up to 4.7e-6 of the scale, and so did
/// one process alone when its weights were nudged by one ulp (the same 91
/// values, to 2e-9), while a wrong average or per-rank statistics move most
/// values by far more (see the per-rank batch norm test).
const KINK: f32 = 1e-4;

/// Steps 1-3 of `config`, each from the one-process checkpoint of the step
/// before, on 2 and 4 ranks against one process (`reference`, whose
/// checkpoints they start from); each rank agrees with rank 0 bit for bit.
fn step_by_step(config: &TrainConfig, reference: &TrainConfig, what: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let mut from: Option<std::path::PathBuf> = None;
    for step in 1..=3 {
        let save = scratch.path().join(format!("step{step}"));
        let one = one_step(1, reference, from.as_deref(), Some(&save)).remove(0);
        for world in [2, 4] {
            let ranks = one_step(world, config, from.as_deref(), None);
            ranks_agree(&ranks);
            let d = difference(&one, &ranks[0]);
            eprintln!("{what}, step {step}, {world} ranks vs one process: {d:?}");
            assert!(is_rounding(&d), "{what}, step {step}, {world} ranks: {d:?}");
        }
        from = Some(save);
    }
}

#[test]
fn group_norm_ranks_take_the_step_one_process_takes() {
    let c = config("group", false, 1);
    step_by_step(&c, &c, "group norm");
    // Whole runs are reproducible bit for bit.
    let whole = |world| train(world, &config("group", false, 1)).remove(0);
    assert!(whole(2) == whole(2), "2 ranks twice: the same bits");
}

#[test]
fn sync_bn_ranks_take_the_step_one_process_takes() {
    // The run's config records sync_bn; the checkpoints of one process
    // (plain batch norm: the global batch is its batch) resume as sync runs.
    step_by_step(
        &config("batch", true, 1),
        &config("batch", true, 1),
        "sync batch norm",
    );
}

#[test]
fn per_rank_batch_norm_keeps_the_ranks_equal_and_differs_from_sync() {
    let params = |s: &State| -> State {
        s.iter()
            .filter(|(n, _)| !n.contains("running_") && !n.contains("num_batches"))
            .cloned()
            .collect()
    };
    let per_rank = one_step(2, &config("batch", false, 1), None, None);
    assert!(
        params(&per_rank[0]) == params(&per_rank[1]),
        "the ranks' parameters agree"
    );
    let synced = one_step(2, &config("batch", true, 1), None, None).remove(0);
    let d = difference(&synced, &per_rank[0]);
    eprintln!("per-rank vs synchronised batch statistics, 2 ranks, one step: {d:?}");
    assert!(
        d.beyond_one_step > 0.5,
        "per-rank statistics are not the global ones: {d:?}"
    );
}

/// `config` for one epoch on `first` ranks, saved, then resumed on `second`
/// ranks to its end: rank 0's state.
fn train_resumed(first: usize, second: usize, config: &TrainConfig, dir: &Path) -> State {
    on_ranks(first, |c| {
        let mut t = Trainer::new(config.clone(), digits(), &Device::cpu()).unwrap();
        t.distribute(c.clone()).unwrap();
        t.train_epoch(&mut |_| {}).unwrap();
        if c.rank() == 0 {
            t.save(dir).unwrap();
        }
    });
    on_ranks(second, |c| {
        let mut t = Trainer::resume(dir, digits(), None, &Device::cpu()).unwrap();
        if second > 1 {
            t.distribute(c).unwrap();
        }
        assert_eq!((t.epoch, t.optimizer.steps()), (1, 8));
        while t.epoch < t.config.epochs {
            t.train_epoch(&mut |_| {}).unwrap();
        }
        state(&t)
    })
    .remove(0)
}

#[test]
fn a_run_resumed_on_another_number_of_ranks_continues_it() {
    let c = config("group", false, 2);
    let straight = train(2, &c).remove(0);
    let scratch = tempfile::tempdir().unwrap();
    let same = train_resumed(2, 2, &c, &scratch.path().join("same"));
    assert!(same == straight, "resumed on the same ranks: bit for bit");
    // Resumed on 4 ranks or on one process, the run goes on from its
    // checkpoint (epoch 1, step 8, the schedule's step 9 next): its next
    // step is the one 2 ranks take from there.
    let dir = scratch.path().join("epoch1");
    train_resumed(2, 2, &config("group", false, 2), &dir);
    let dir = dir.as_path();
    let two = one_step(2, &c, Some(dir), None).remove(0);
    for world in [1, 4] {
        let d = difference(&two, &one_step(world, &c, Some(dir), None)[0]);
        eprintln!("resumed on {world} rank(s) vs 2: {d:?}");
        assert!(is_rounding(&d), "resumed on {world}: {d:?}");
    }
}

#[test]
fn an_overflow_on_one_rank_skips_the_step_on_every_rank() {
    let mut c = config("batch", false, 1);
    c.amp = Some(AmpDtype::F16);
    let out = on_ranks(2, |col| {
        let dev = Device::cpu();
        let mut t = Trainer::new(c.clone(), digits(), &dev).unwrap();
        t.distribute(col.clone()).unwrap();
        let batch = t.train.batch(&t.train.order(0), 0, 0, &dev).unwrap();
        // Rank 1's 2^24 times the loss overflows its f16 backward; rank 0's 256 does not.
        let mut scaler = GradScaler {
            scale: if col.rank() == 1 {
                (1u32 << 24) as f32
            } else {
                256.0
            },
            ..GradScaler::default()
        };
        let before = state(&t);
        let settings = StepSettings::from(&t.config);
        let out = train_step(
            &*t.model,
            &mut t.optimizer,
            Some(&mut scaler),
            &batch,
            &settings,
            0.05,
            false,
            &*col,
        )
        .unwrap();
        let params_kept = t.optimizer.params().iter().all(|(n, p)| {
            before
                .iter()
                .any(|(m, v)| m == n && *v == p.get().to_vec().unwrap())
        });
        (out.skipped, params_kept, scaler.scale)
    });
    assert_eq!(
        out[0],
        (true, true, 128.0),
        "rank 0 skipped too and backed off"
    );
    assert_eq!(out[1], (true, true, (1u32 << 23) as f32));
}

#[test]
fn a_rank_that_dies_stops_the_others_with_an_error() {
    let c = config("group", false, 1);
    let out = on_ranks(2, |col| {
        let mut t = Trainer::new(c.clone(), digits(), &Device::cpu()).unwrap();
        t.distribute(col.clone()).unwrap();
        if col.rank() == 1 {
            return Ok(()); // rank 1 dies: its collective goes with it
        }
        drop(col);
        t.train_epoch(&mut |_| {})
    });
    let e = out[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("rank 1 has left the group"), "{e}");
}

#[test]
fn ranks_started_with_different_settings_refuse_to_train() {
    let out = on_ranks(2, |col| {
        let mut c = config("group", false, 1);
        if col.rank() == 1 {
            c.lr = 0.1;
        }
        let mut t = Trainer::new(c, digits(), &Device::cpu()).unwrap();
        t.distribute(col).map(|_| ())
    });
    let e1 = out[1].as_ref().unwrap_err().to_string();
    assert!(
        e1.contains("lr (0.10000000149011612 here, 0.05000000074505806 on rank 0)"),
        "{e1}"
    );
    assert!(out[0].is_err(), "rank 0 refuses too");
    let odd = on_ranks(3, |col| {
        let mut t = Trainer::new(config("group", false, 1), digits(), &Device::cpu()).unwrap();
        t.distribute(col).map(|_| ())
    });
    let e = odd[0].as_ref().unwrap_err().to_string();
    assert!(
        e.contains(
            "global batch (16) must be a multiple of the number of ranks (3 processes or replicas)"
        ),
        "{e}"
    );
}

#[test]
fn sharded_evaluation_counts_every_held_out_digit_once() {
    let test: Arc<dyn Dataset> = Arc::new(Subset(Mnist::bundled(false).unwrap(), 101));
    let c = config("batch", false, 1);
    let one = {
        let t = Trainer::new(c.clone(), digits(), &Device::cpu()).unwrap();
        t.evaluate(test.clone(), 16).unwrap()
    };
    let ranks = on_ranks(3, |col| {
        let mut c = c.clone();
        c.batch_size = 15;
        let mut t = Trainer::new(c, digits(), &Device::cpu()).unwrap();
        t.distribute(col).unwrap();
        t.evaluate(test.clone(), 16).unwrap()
    });
    for ev in ranks {
        assert_eq!(ev.acc, one.acc);
        assert!(
            (ev.loss - one.loss).abs() <= 1e-6 * one.loss,
            "{} vs {}",
            ev.loss,
            one.loss
        );
    }
}
