//! Loading weights for an input: a strict load whose failure, when it comes
//! from the input's channel count, says so instead of blaming the weights.

use residual_nn::weights::{load_safetensors, read_regular_file};
use residual_nn::{named_tensors, Module};
use residual_tensor::Error;
use safetensors::SafeTensors;
use std::path::Path;

/// Loads `weights` into `model` (strict). `model` was built for inputs of
/// `channels` channels, which `input` names (e.g. "the input tensor", "the
/// mnist data"). When the load fails and the weights' first convolution
/// expects another channel count, the error says that the input and the
/// weights disagree on channels, naming both.
pub fn load_for_input(
    model: &dyn Module,
    weights: &Path,
    channels: usize,
    input: &str,
) -> Result<(), Error> {
    let err = match load_safetensors(model, weights, true) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let Some((name, want)) = first_conv_channels(model, weights) else {
        return Err(err);
    };
    if want == channels {
        return Err(err);
    }
    Err(Error::shape(
        "weights",
        format!(
            "{input} has {channels} channel(s), but the weights {} were trained on {want}-channel \
             inputs (their first convolution {name} takes {want}); give inputs with {want} \
             channel(s), or weights for {channels}",
            weights.display()
        ),
    ))
}

/// The name of the model's first convolution weight (its first rank-4
/// tensor) and the input channels the file's tensor of that name takes.
fn first_conv_channels(model: &dyn Module, weights: &Path) -> Option<(String, usize)> {
    let name = named_tensors(model)
        .into_iter()
        .find(|(_, t)| t.get().rank() == 4)?
        .0;
    let bytes = read_regular_file(weights).ok()?;
    let st = SafeTensors::deserialize(&bytes).ok()?;
    let view = st
        .tensor(&name)
        .or_else(|_| st.tensor(&format!("module.{name}")))
        .ok()?;
    let shape = view.shape();
    (shape.len() == 4).then(|| (name, shape[1]))
}
