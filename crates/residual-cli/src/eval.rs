//! `residual eval`: accuracy and loss of saved weights on a dataset's test split.

use crate::data::DataArgs;
use residual_tensor::Error;
use residual_train::trainer::evaluate;
use residual_zoo::{create, ModelOptions};
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
    let ev = evaluate(&*model, test, &[a.data.normalize()], a.batch_size, &dev)?;
    println!(
        "{} on {} ({n} {} samples): accuracy {:.2}%, loss {:.4}",
        a.model,
        a.data.spec(),
        splits.test_name,
        ev.acc * 100.0,
        ev.loss
    );
    Ok(())
}
