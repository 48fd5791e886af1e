//! `residual eval`: accuracy and loss of saved weights on a dataset's test split.

use crate::data::DataArgs;
use residual_tensor::Error;
use residual_train::precision::compare_precision;
use residual_train::trainer::{evaluate, EvalStats};
use residual_zoo::{create, ModelOptions, Precision};
use std::path::PathBuf;

/// Arguments of `residual eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The model the weights belong to: a registered name (e.g. resnet20) or a
    /// .json / .toml model config file.
    #[arg(long)]
    model: String,
    /// Weights as safetensors (e.g. runs/mnist/model.safetensors); strict load.
    #[arg(long)]
    weights: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: crate::device::DeviceArg,
    #[command(flatten)]
    precision: crate::precision::PrecisionArg,
    /// Samples per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

/// Loads the weights and prints accuracy and loss.
pub fn run(a: Args) -> Result<(), Error> {
    let dev = a.device.open()?;
    let splits = a.data.splits()?;
    if let Some(note) = &splits.test_note {
        eprintln!("{note}");
    }
    let test = splits.test;
    if a.batch_size == 0 {
        return Err(Error::arg("eval", "--batch-size must be at least 1"));
    }
    let [c, _, _] = test.shape();
    let opts = ModelOptions {
        num_classes: Some(test.classes()),
        in_channels: Some(c),
        ..Default::default()
    };
    let model = create(&a.model, &opts, 0, &dev)?;
    let input = format!("the {} data", a.data.spec());
    crate::load::load_for_input(&*model, &a.weights, c, &input)?;
    let n = test.len();
    let transforms = [a.data.normalize()];
    let precision = a.precision.resolve(&dev)?;
    let report = |ev: &EvalStats, what: &str| {
        println!(
            "{} on {} ({n} {} samples){what}: accuracy {:.2}%, loss {:.4}",
            a.model,
            a.data.spec(),
            splits.test_name,
            ev.acc * 100.0,
            ev.loss
        )
    };
    if precision == Precision::F32 {
        report(
            &evaluate(&*model, test, &transforms, a.batch_size, &dev)?,
            "",
        );
        return Ok(());
    }
    let c = compare_precision(&*model, precision, test, &transforms, a.batch_size, &dev)?;
    report(&c.reduced, &format!(" at {}", precision.name()));
    println!(
        "against f32 (accuracy {:.2}%, loss {:.4}): top-1 agrees on {} of {} samples ({:.2}%), \
         max |logit difference| {:.3e} ({:.2}% of max |logit| {:.3e})",
        c.f32.acc * 100.0,
        c.f32.loss,
        c.agree,
        c.samples,
        c.agreement() * 100.0,
        c.max_logit_diff,
        100.0 * c.max_logit_diff / c.max_logit.max(f32::MIN_POSITIVE),
        c.max_logit
    );
    if c.non_finite > 0 {
        println!(
            "warning: {} logits are NaN or infinite at {} but finite in f32",
            c.non_finite,
            precision.name()
        );
    }
    Ok(())
}
