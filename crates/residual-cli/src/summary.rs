//! `residual summary MODEL`.

use residual_tensor::{Device, Error};
use residual_zoo::{create, names, ModelOptions};

/// Arguments of `residual summary`.
#[derive(clap::Args)]
pub struct Args {
    /// A registered model name or a .json / .toml model config file.
    #[arg(
        value_name = "MODEL",
        help = format!("A registered model, one of: {}; or a .json / .toml model config file", names().join(", "))
    )]
    model: String,
    /// Input size as CxHxW.
    #[arg(long, default_value = "3x224x224", value_parser = crate::parse_chw)]
    input: [usize; 3],
    /// Number of classes (the model's default otherwise).
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
    let model = create(&a.model, &opts, 0, &Device::cpu())?;
    println!("{}", model.summary(&a.model, a.input)?);
    Ok(())
}
