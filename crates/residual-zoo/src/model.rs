//! The one model interface of the zoo: what the trainer, the bench and the
//! CLI hold, whatever the family.

use crate::model_config::ModelConfig;
use residual_nn::summary::{summarize, Summary, MAX_SUMMARY_INPUT};
use residual_nn::{Mode, Module};
use residual_tensor::{autocast_cached, no_grad, CastCache, DType, Device, Error, Result, Tensor};
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
    /// [`crate::fuse`]), a snapshot of the current weights with its
    /// convolutions' weights cast once to `dtype` (f32, or bf16 for
    /// [`Precision::Bf16`]); `None` (the default) runs the model itself.
    /// Callers use [`inference`] or [`inference_at`]. A rewrite must compute
    /// in `dtype` or return `None`: [`InferenceModel::precision`] reports it.
    fn fused_for_inference(&self, dtype: DType) -> Result<Option<Box<dyn Module>>> {
        let _ = dtype;
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

/// The arithmetic of an inference pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 throughout: the parity path (within 1e-4 of PyTorch's logits).
    #[default]
    F32,
    /// The convolutions' and linear layers' products on bf16 operands with
    /// f32 accumulation (`vdpbf16ps` / AMX where the CPU has them), the
    /// weights cast to bf16 once when the pass is built; norms computed in f32
    /// (a norm of a bf16 input stores its output in bf16, as under
    /// autocast), softmax and the logits in f32. Faster and lighter, at bf16's precision (8
    /// significant bits): the logits move by about 1% of their range.
    Bf16,
}

impl Precision {
    /// The name the CLI takes (`f32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(Error::arg(
                "--precision",
                format!("unknown precision {other:?}: expected f32 or bf16"),
            )),
        }
    }
}

/// A model ready for evaluation-mode forwards: the model's rewrite for
/// inference where it has one, the model itself elsewhere, at a
/// [`Precision`]. Its forward always evaluates, whatever mode it is given,
/// and returns f32 logits.
pub struct InferenceModel<'a> {
    inner: Inner<'a>,
    precision: Precision,
}

enum Inner<'a> {
    /// The model itself; under bf16, run under autocast with its tensors'
    /// bf16 copies made once.
    Plain(&'a dyn Model, Option<CastCache>),
    Fused(Box<dyn Module>),
}

impl InferenceModel<'_> {
    /// Whether the model was rewritten (folded norms, fused epilogues).
    pub fn is_fused(&self) -> bool {
        matches!(self.inner, Inner::Fused(_))
    }

    /// The precision it computes at.
    pub fn precision(&self) -> Precision {
        self.precision
    }
}

/// The inference pass over `model` ([`Model::fused_for_inference`]) in f32.
/// The rewrite is a snapshot of the weights: run the pass again after they
/// change (a weight load, an optimizer step).
pub fn inference(model: &dyn Model) -> Result<InferenceModel<'_>> {
    inference_at(model, Precision::F32)
}

/// The inference pass over `model` at `precision`. With [`Precision::Bf16`]
/// a model with a rewrite (a ResNet with batch norm) folds its norms in f32
/// and casts the folded weights to bf16 once, and its activations stay bf16
/// from convolution to convolution; any other model (group norm, the ViT
/// hybrids) runs under bf16 autocast with a [`residual_tensor::CastCache`]
/// of its weights (tensors of rank >= 2): each is cast to bf16 the first time
/// a GEMM multiplies it and kept, so its GEMMs do not cast their weights at
/// every forward (a weight-standardised convolution caches its standardised
/// weight in bf16 itself). Like the f32 rewrite it is a snapshot of the
/// weights.
pub fn inference_at(model: &dyn Model, precision: Precision) -> Result<InferenceModel<'_>> {
    let dtype = match precision {
        Precision::F32 => DType::F32,
        Precision::Bf16 => DType::BF16,
    };
    let inner = match model.fused_for_inference(dtype)? {
        Some(fused) => Inner::Fused(fused),
        None if precision == Precision::F32 => Inner::Plain(model, None),
        None => {
            let mut tensors = Vec::new();
            // The weights of the GEMM ops (rank >= 2; norms' parameters and
            // statistics are vectors, which the f32 ops read as they are).
            model.visit(&mut |_, p| {
                let t = p.get();
                if t.rank() >= 2 {
                    tensors.push(t);
                }
            });
            Inner::Plain(model, Some(CastCache::new(&tensors, dtype)?))
        }
    };
    Ok(InferenceModel { inner, precision })
}

impl Module for InferenceModel<'_> {
    /// The evaluation-mode forward, whatever `mode` says.
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let y = match &self.inner {
            Inner::Plain(m, None) => m.forward(x, Mode::Eval)?,
            Inner::Plain(m, Some(cache)) => {
                no_grad(|| autocast_cached(DType::BF16, cache, || m.forward(x, Mode::Eval)))??
            }
            Inner::Fused(f) => f.forward(x, Mode::Eval)?,
        };
        y.cast(DType::F32)
    }
    /// No tensors of its own: a rewritten model holds derived weights, not
    /// the model's parameters.
    fn visit(&self, _f: &mut residual_nn::Visitor<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::Precision;

    #[test]
    fn precision_names_parse_and_bad_ones_say_what_is_expected() {
        for p in [Precision::F32, Precision::Bf16] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        let err = "fp16".parse::<Precision>().unwrap_err().to_string();
        assert!(
            err.contains("\"fp16\"") && err.contains("f32 or bf16"),
            "{err}"
        );
    }
}
