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
    #[arg(long, default_value = "3x224x224", value_parser = parse_chw)]
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

/// Parses `3x224x224` as `[3, 224, 224]`.
fn parse_chw(s: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = s.split('x').collect();
    let nums: Option<Vec<usize>> = parts
        .iter()
        .map(|p| p.trim().parse().ok().filter(|&n| n > 0))
        .collect();
    match nums.as_deref() {
        Some(&[c, h, w]) => Ok([c, h, w]),
        _ => Err(format!(
            "expected CxHxW with positive integers (e.g. 3x224x224), got {s:?}"
        )),
    }
}
