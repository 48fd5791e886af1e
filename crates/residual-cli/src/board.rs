//! The run's TensorBoard events: what `residual train` writes into the run
//! folder's `events.out.tfevents.*` file (the tags are listed in
//! docs/training.md, "Monitoring: TensorBoard").

use residual_tensor::Error;
use residual_train::tensorboard::EventWriter;
use residual_train::trainer::StepStats;
use std::path::Path;

/// An events file of one training process, keeping the first write error
/// (reported at the next [`Board::flush`]) so that the step callback stays
/// infallible.
pub struct Board {
    writer: EventWriter,
    error: Option<Error>,
}

/// A run's figures at the end of an epoch.
pub struct EpochFigures {
    /// Mean training loss over the epoch's steps.
    pub train_loss: f32,
    /// Mean training accuracy over the epoch's steps.
    pub train_acc: f32,
    /// Held-out loss.
    pub test_loss: f32,
    /// Held-out accuracy.
    pub test_acc: f32,
}

impl Board {
    /// A new events file in the run folder `out`. A run resumed after
    /// `resumed_after` optimizer steps marks a restart at the next step, so
    /// that TensorBoard drops what a killed run logged past its checkpoint.
    pub fn open(out: &Path, resumed_after: Option<u64>) -> Result<Self, Error> {
        let mut writer = EventWriter::create(out)?;
        if let Some(steps) = resumed_after {
            writer.session_start(steps + 1)?;
        }
        Ok(Board {
            writer,
            error: None,
        })
    }

    fn keep(&mut self, r: Result<(), Error>) {
        if let (Err(e), None) = (r, &self.error) {
            self.error = Some(e);
        }
    }

    /// A step's scalars, and on monitored steps its per-layer figures and
    /// the histograms of the weights and gradients.
    pub fn step(&mut self, s: &StepStats) {
        let mut scalars: Vec<(String, f32)> = vec![
            ("train/loss".into(), s.loss),
            ("train/acc".into(), s.acc),
            ("train/lr".into(), s.lr),
            ("train/img_per_s".into(), s.img_per_s),
            ("train/grad_norm".into(), s.grad_norm),
        ];
        if let Some(scale) = s.loss_scale {
            scalars.push(("train/loss_scale".into(), scale));
        }
        for (layer, norm) in s.layer_grad_norms.iter().flatten() {
            scalars.push((format!("grad_norm/{layer}"), *norm));
        }
        for (layer, mean, std) in s.layer_weight_stats.iter().flatten() {
            scalars.push((format!("weight_mean/{layer}"), *mean));
            scalars.push((format!("weight_std/{layer}"), *std));
        }
        for (block, zeros) in s.zero_activations.iter().flatten() {
            scalars.push((format!("zero_fraction/{block}"), *zeros));
        }
        let refs: Vec<(&str, f32)> = scalars.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        let r = self.writer.add_scalars(&refs, s.step);
        self.keep(r);
        for (tag, h) in s.histograms.iter().flatten() {
            let r = self.writer.add_histogram_of(tag, h, s.step);
            self.keep(r);
        }
    }

    /// The epoch's figures at optimizer step `step`.
    pub fn epoch(&mut self, step: u64, f: &EpochFigures) {
        let r = self.writer.add_scalars(
            &[
                ("train/epoch_loss", f.train_loss),
                ("train/epoch_acc", f.train_acc),
                ("test/loss", f.test_loss),
                ("test/acc", f.test_acc),
            ],
            step,
        );
        self.keep(r);
    }

    /// Puts the buffered events on disk; the first error since the last flush, if any.
    pub fn flush(&mut self) -> Result<(), Error> {
        let r = self.writer.flush();
        match self.error.take() {
            Some(e) => Err(e),
            None => r,
        }
    }
}
