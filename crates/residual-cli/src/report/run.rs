//! A run folder read back for the report: the records of `log.jsonl` sorted
//! into step records, epoch records and the per-layer snapshots, and the
//! checkpoint's configuration when `state.safetensors` can be read.

use crate::report::split::EvalSplit;
use residual_tensor::Error;
use residual_train::checkpoint::{self, CheckpointMeta};
use residual_train::runlog;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One step record of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Optimizer step (from 1).
    pub step: u64,
    /// Batches per epoch.
    pub batches: u64,
    /// The batch's training loss.
    pub loss: f32,
    /// The batch's training accuracy.
    pub acc: f32,
    /// The learning rate the step used.
    pub lr: f32,
    /// Global gradient norm.
    pub grad_norm: f32,
    /// Training throughput over the step.
    pub img_per_s: f32,
    /// The loss scale (f16 mixed precision).
    pub loss_scale: Option<f32>,
    /// Whether the optimizer skipped the step (a gradient overflowed).
    pub skipped: bool,
}

/// One epoch record of the log (figures a record lacks are `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Epoch {
    /// Epoch, counted from 1.
    pub epoch: u64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: Option<f32>,
    /// Mean training accuracy over the epoch's steps.
    pub train_acc: Option<f32>,
    /// Loss on the evaluation split ([`Run::eval`]).
    pub test_loss: Option<f32>,
    /// Accuracy on the evaluation split ([`Run::eval`]).
    pub test_acc: Option<f32>,
    /// Wall-clock seconds of the epoch's training.
    pub seconds: Option<f32>,
    /// Training images per second over the epoch.
    pub img_per_s: Option<f32>,
}

/// Per-layer figures at the monitored steps: `(step, [(layer, values)])`,
/// layers shallow to deep.
pub type Snapshots<const N: usize> = Vec<(u64, Vec<(String, [f32; N])>)>;

/// What the report shows of a run folder.
#[derive(Debug)]
pub struct Run {
    /// The run folder.
    pub dir: PathBuf,
    /// Step records, in log order.
    pub steps: Vec<Step>,
    /// Epoch records, in log order.
    pub epochs: Vec<Epoch>,
    /// Per-layer gradient norms.
    pub grad_norms: Snapshots<1>,
    /// Per-layer weight mean and standard deviation.
    pub weight_stats: Snapshots<2>,
    /// Fraction of zero outputs after the stem and each block.
    pub zero_fractions: Snapshots<1>,
    /// Lines of the log that were not whole records (skipped).
    pub torn_lines: usize,
    /// The checkpoint's metadata (configuration, epochs done).
    pub meta: Option<CheckpointMeta>,
    /// Why the checkpoint's metadata could not be read, when it could not.
    pub meta_error: Option<String>,
    /// `model.json` (the model's config), when present and valid JSON.
    pub model_json: Option<Value>,
    /// The split the epoch records' `test_*` figures come from.
    pub eval: EvalSplit,
}

fn bad_dir(dir: &Path, msg: impl std::fmt::Display) -> Error {
    Error::arg("report", format!("{}: {msg}", dir.display()))
}

fn f32_of(v: &Value) -> Option<f32> {
    v.as_f64().map(|x| x as f32)
}

/// A number the log holds, or NaN (a non-finite value is logged as `null`).
fn num(v: &Value) -> f32 {
    f32_of(v).unwrap_or(f32::NAN)
}

/// `[[name, x, ...], ...]` as `(name, [x, ...])` pairs; malformed entries skipped.
fn layers<const N: usize>(v: &Value) -> Option<Vec<(String, [f32; N])>> {
    let list = v.as_array()?;
    let parsed = list
        .iter()
        .filter_map(|p| {
            let name = p.get(0)?.as_str()?.to_string();
            let mut vals = [f32::NAN; N];
            for (i, x) in vals.iter_mut().enumerate() {
                *x = num(p.get(i + 1)?);
            }
            Some((name, vals))
        })
        .collect();
    Some(parsed)
}

impl Run {
    /// Reads the run folder `dir`. A missing folder, a folder without
    /// `log.jsonl` and a log without a single whole record are errors that
    /// name the problem; torn lines are skipped (and counted), as
    /// [`runlog::read`] does; an unreadable checkpoint only leaves the
    /// configuration out.
    pub fn load(dir: &Path) -> Result<Run, Error> {
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad_dir(dir, "no such run folder"))
            }
            Err(e) => return Err(bad_dir(dir, e)),
            Ok(m) if !m.is_dir() => {
                return Err(bad_dir(
                    dir,
                    "is a file, not a run folder (give the folder `residual train --out` wrote)",
                ))
            }
            Ok(_) => {}
        }
        let log = dir.join("log.jsonl");
        if !log.exists() {
            return Err(bad_dir(
                dir,
                "no log.jsonl here: not a run folder written by `residual train` (or the run has not started)",
            ));
        }
        let records = runlog::read(&log)?;
        if records.records.is_empty() {
            return Err(bad_dir(
                dir,
                format!(
                    "log.jsonl holds no records ({} torn line(s) skipped): the run has not logged a step yet",
                    records.skipped
                ),
            ));
        }
        let (meta, meta_error) = match checkpoint::read_meta(dir) {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let model_json = std::fs::read(dir.join("model.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let eval = EvalSplit::of(meta.as_ref());
        let mut run = Run {
            dir: dir.to_path_buf(),
            steps: Vec::new(),
            epochs: Vec::new(),
            grad_norms: Vec::new(),
            weight_stats: Vec::new(),
            zero_fractions: Vec::new(),
            torn_lines: records.skipped,
            meta,
            meta_error,
            model_json,
            eval,
        };
        for v in &records.records {
            run.add(v);
        }
        Ok(run)
    }

    fn add(&mut self, v: &Value) {
        if runlog::is_epoch_record(v) {
            if let Some(epoch) = v["epoch"].as_u64() {
                self.epochs.push(Epoch {
                    epoch,
                    train_loss: f32_of(&v["train_loss"]),
                    train_acc: f32_of(&v["train_acc"]),
                    test_loss: f32_of(&v["test_loss"]),
                    test_acc: f32_of(&v["test_acc"]),
                    seconds: f32_of(&v["epoch_seconds"]),
                    img_per_s: f32_of(&v["img_per_s"]),
                });
            }
            return;
        }
        let Some(step) = v["step"].as_u64() else {
            return;
        };
        self.steps.push(Step {
            step,
            batches: v["batches"].as_u64().unwrap_or(0),
            loss: num(&v["loss"]),
            acc: num(&v["acc"]),
            lr: num(&v["lr"]),
            grad_norm: num(&v["grad_norm"]),
            img_per_s: num(&v["img_per_s"]),
            loss_scale: f32_of(&v["loss_scale"]),
            skipped: v["skipped"].as_bool().unwrap_or(false),
        });
        if let Some(l) = layers(&v["layer_grad_norms"]) {
            self.grad_norms.push((step, l));
        }
        if let Some(l) = layers(&v["layer_weight_stats"]) {
            self.weight_stats.push((step, l));
        }
        if let Some(l) = layers(&v["zero_activations"]) {
            self.zero_fractions.push((step, l));
        }
    }

    /// Batches per epoch, as the last step record says (0 without steps).
    pub fn steps_per_epoch(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.batches)
    }

    /// The epoch record with the best evaluation accuracy (the first of ties).
    pub fn best_epoch(&self) -> Option<&Epoch> {
        self.epochs
            .iter()
            .filter(|e| e.test_acc.is_some_and(f32::is_finite))
            .fold(None, |best: Option<&Epoch>, e| match best {
                Some(b) if b.test_acc >= e.test_acc => Some(b),
                _ => Some(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_sorts_into_steps_epochs_and_snapshots() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let log = concat!(
            "{\"epoch\":0,\"step\":1,\"batches\":2,\"loss\":2.0,\"acc\":0.25,\"lr\":0.1,\"grad_norm\":1.0,\"img_per_s\":10,",
            "\"layer_grad_norms\":[[\"conv1\",0.5],[\"fc\",null]],\"zero_activations\":[[\"stem\",0.4]]}\n",
            "{\"epoch\":0,\"step\":2,\"batches\":2,\"loss\":1.0,\"acc\":0.5,\"lr\":0.1,\"grad_norm\":1.0,\"img_per_s\":10}\n",
            "{\"epoch\":1,\"train_loss\":1.5,\"test_acc\":0.5,\"test_loss\":1.2}\n",
            "{\"epoch\":2,\"train_loss\":1.0,\"test_acc\":0.75,\"test_loss\":0.9}\n",
            "{\"epoch\":3,\"train_loss\":0.9,\"test_acc\":0.75,\"test_loss\":0.8}\n",
            "{\"epoch\":1,\"step\":3,\"lo"
        );
        std::fs::write(dir.join("log.jsonl"), log).unwrap();
        let run = Run::load(dir).unwrap();
        assert_eq!(
            (run.steps.len(), run.epochs.len(), run.torn_lines),
            (2, 3, 1)
        );
        assert_eq!(run.grad_norms[0].1[0], ("conv1".to_string(), [0.5]));
        assert!(run.grad_norms[0].1[1].1[0].is_nan(), "null is NaN");
        assert_eq!(run.zero_fractions.len(), 1);
        assert_eq!(run.best_epoch().unwrap().epoch, 2, "the first of ties");
        assert_eq!(run.steps_per_epoch(), 2);
        assert!(run.meta.is_none() && run.meta_error.is_some());
        assert_eq!(run.eval, EvalSplit::HeldOut, "no checkpoint: held-out");

        std::fs::write(dir.join("log.jsonl"), "{\"step\": 1, \"lo").unwrap();
        let err = Run::load(dir).unwrap_err().to_string();
        assert!(err.contains("no records"), "{err}");
    }
}
