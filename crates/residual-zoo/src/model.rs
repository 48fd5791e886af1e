//! The one model interface of the zoo: what the trainer, the bench and the
//! CLI hold, whatever the family.

use crate::model_config::ModelConfig;
use residual_nn::summary::{summarize, Summary, MAX_SUMMARY_INPUT};
use residual_nn::{Mode, Module};
use residual_tensor::{no_grad, Device, Error, Result, Tensor};
use std::any::Any;

/// A model's final feature map and the intermediate outputs the monitors read.
#[derive(Debug, Clone)]
pub struct Intermediates {
    /// What [`Model::forward_features`] returns.
    pub features: Tensor,
    /// `(name, output)` after the stem and after every block, input to
    /// output (timm's `forward_intermediates`); names are the modules' own
    /// (`conv1`, `layer2.0`).
    pub taps: Vec<(String, Tensor)>,
}

/// A model of the zoo: a [`Module`] whose forward is
/// `forward_head(forward_features(x))`, with its intermediates, its summary
/// and its config.
///
/// A family implements the three forwards and [`Module::children`] (which
/// also names its tensors); the summary, the monitors, training, checkpoints
/// and the CLI come for free.
pub trait Model: Module + Any {
    /// The config it was built from (rebuilds it with [`ModelConfig::build`]).
    fn config(&self) -> ModelConfig;

    /// The final feature map before pooling and the classifier.
    fn forward_features(&self, x: &Tensor, mode: Mode) -> Result<Tensor>;

    /// The classifier on the features: pooling, head.
    fn forward_head(&self, features: &Tensor, mode: Mode) -> Result<Tensor>;

    /// [`Model::forward_features`] with the outputs of the stem and of every
    /// block along the way.
    fn forward_intermediates(&self, x: &Tensor, mode: Mode) -> Result<Intermediates>;

    /// The model rewritten for evaluation-mode forwards (folded norms, fused
    /// epilogues: the inference pass a family opts into, see
    /// [`crate::fuse`]), a snapshot of the current weights; `None` (the
    /// default) runs the model itself. Callers use [`inference`].
    fn fused_for_inference(&self) -> Result<Option<Box<dyn Module>>> {
        Ok(None)
    }

    /// The rows of the model's summary: sub-modules, input to output. By
    /// default its children.
    fn summary_rows(&self) -> Vec<(String, &dyn Module)> {
        self.children()
    }

    /// Per-row output shapes, parameters and multiply-accumulates for one
    /// sample of shape `input` (`[c, h, w]`), computed by a traced
    /// evaluation-mode forward on zeros (see [`residual_nn::summary`]).
    fn summary(&self, name: &str, input: [usize; 3]) -> Result<Summary> {
        let [c, h, w] = input;
        let numel = c.checked_mul(h).and_then(|n| n.checked_mul(w));
        if numel.is_none_or(|n| n > MAX_SUMMARY_INPUT) {
            return Err(Error::arg(
                "summary",
                format!(
                    "input {c}x{h}x{w} is too large: a summary runs the model on one sample, at most {MAX_SUMMARY_INPUT} values"
                ),
            ));
        }
        let mut dev = None;
        self.visit(&mut |_, p| {
            dev.get_or_insert_with(|| p.get().device().clone());
        });
        let dev = dev.unwrap_or_else(Device::cpu);
        let x = Tensor::zeros([1, c, h, w], &dev)?;
        summarize(name, input, &self.summary_rows(), || {
            no_grad(|| self.forward(&x, Mode::Eval))
        })
    }
}

impl std::fmt::Debug for dyn Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// A boxed model is the model (so a `Box<dyn Model>` goes wherever a
/// `&dyn Module` does).
impl Module for Box<dyn Model> {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        (**self).forward(x, mode)
    }
    /// The model's children (a model is never a leaf, so a summary finds
    /// every layer of a boxed model through them).
    fn children(&self) -> Vec<(String, &dyn Module)> {
        (**self).children()
    }
    fn kind(&self) -> String {
        (**self).kind()
    }
}

/// A model ready for evaluation-mode forwards: the model's rewrite for
/// inference where it has one, the model itself elsewhere. Its forward always
/// evaluates, whatever mode it is given.
pub struct InferenceModel<'a>(Inner<'a>);

enum Inner<'a> {
    Plain(&'a dyn Model),
    Fused(Box<dyn Module>),
}

impl InferenceModel<'_> {
    /// Whether the model was rewritten (folded norms, fused epilogues).
    pub fn is_fused(&self) -> bool {
        matches!(self.0, Inner::Fused(_))
    }
}

/// The inference pass over `model` ([`Model::fused_for_inference`]). The
/// rewrite is a snapshot of the weights: run the pass again after they change
/// (a weight load, an optimizer step).
pub fn inference(model: &dyn Model) -> Result<InferenceModel<'_>> {
    Ok(InferenceModel(match model.fused_for_inference()? {
        Some(fused) => Inner::Fused(fused),
        None => Inner::Plain(model),
    }))
}

impl Module for InferenceModel<'_> {
    /// The evaluation-mode forward, whatever `mode` says.
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        match &self.0 {
            Inner::Plain(m) => m.forward(x, Mode::Eval),
            Inner::Fused(f) => f.forward(x, Mode::Eval),
        }
    }
    /// No tensors of its own: a rewritten model holds derived weights, not
    /// the model's parameters.
    fn visit(&self, _f: &mut residual_nn::Visitor<'_>) {}
}
