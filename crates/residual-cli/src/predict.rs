//! `residual predict`: a model in evaluation mode on a safetensors tensor.

use residual_nn::weights::{load_safetensors, read_tensors, write_tensors};
use residual_nn::{Mode, Module};
use residual_tensor::Error;
use residual_zoo::{build, ModelOptions};
use std::path::PathBuf;

/// Arguments of `residual predict`.
#[derive(clap::Args)]
pub struct Args {
    /// Model name (e.g. resnet50).
    #[arg(long)]
    model: String,
    /// Weights as safetensors with torchvision's key names (strict load).
    #[arg(long)]
    weights: PathBuf,
    /// A safetensors file holding a tensor named `input`: [N, C, H, W], f32 (or f16 / bf16 / f64).
    #[arg(long)]
    input: PathBuf,
    /// Where to write a safetensors file holding the tensor `output`: [N, classes] logits.
    #[arg(long)]
    output: PathBuf,
    /// Device: cpu, or wgpu (the GPU adapter wgpu picks; lavapipe without a GPU).
    #[arg(long, default_value = "cpu", value_parser = crate::device::CHOICES)]
    device: String,
    /// Number of classes of the weights (the preset's default otherwise).
    #[arg(long)]
    classes: Option<usize>,
}

/// Loads, runs and writes.
pub fn run(a: Args) -> Result<(), Error> {
    let dev = crate::device::parse(&a.device)?;
    let inputs = read_tensors(&a.input, &dev)?;
    let x = inputs.get("input").ok_or_else(|| {
        let names: Vec<&str> = inputs.keys().map(String::as_str).collect();
        Error::arg(
            "predict",
            format!(
                "{} has no tensor named \"input\" (it has: {})",
                a.input.display(),
                names.join(", ")
            ),
        )
    })?;
    if x.rank() != 4 {
        return Err(Error::shape(
            "predict",
            format!("input must be [N, C, H, W], got {}", x.shape()),
        ));
    }
    let opts = ModelOptions {
        num_classes: a.classes,
        in_channels: Some(x.dims()[1]),
        ..Default::default()
    };
    let model = build(&a.model, opts, 0, &dev)?;
    load_safetensors(&model, &a.weights, true)?;
    let y = residual_tensor::no_grad(|| model.forward(x, Mode::Eval))?;
    write_tensors(&a.output, &[("output".to_string(), y.clone())])?;
    eprintln!("wrote output {} to {}", y.shape(), a.output.display());
    Ok(())
}
