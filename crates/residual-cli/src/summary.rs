//! `residual summary MODEL`.

use residual_tensor::{Device, Error};
use residual_zoo::{build, ModelOptions, PRESETS};

/// Arguments of `residual summary`.
#[derive(clap::Args)]
pub struct Args {
    /// Model name (resnet18/34/50/101/152, resnet20/32/44/56/110, plain20/...).
    #[arg(value_name = "MODEL", help = format!("Model name, one of: {}", PRESETS.join(", ")))]
    model: String,
    /// Input size as CxHxW.
    #[arg(long, default_value = "3x224x224", value_parser = crate::parse_chw)]
    input: [usize; 3],
    /// Number of classes (the preset's default otherwise).
    #[arg(long)]
    classes: Option<usize>,
}

/// Prints the summary.
pub fn run(a: Args) -> Result<(), Error> {
    let opts = ModelOptions {
        num_classes: a.classes,
        in_channels: Some(a.input[0]),
        ..Default::default()
    };
    let model = build(&a.model, opts, 0, &Device::cpu())?;
    println!("{}", model.summary(&a.model, a.input)?);
    Ok(())
}
