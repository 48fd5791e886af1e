//! `residual predict`: a model in evaluation mode on a safetensors tensor, or
//! on image files with the model's evaluation preprocessing, printing the
//! top-k classes: torchvision's (resize 256, center crop 224, bilinear,
//! ImageNet mean / std; small images center-cropped at their size, as
//! `residual train` evaluates them) or, for timm's ViT hybrids, timm's
//! (bicubic, mean / std 0.5, crop 0.9 at 224 and 1.0 at 384).

use crate::load::load_for_input;
use residual_nn::weights::{read_tensors, write_tensors};
use residual_nn::{Mode, Module};
use residual_tensor::{Device, Error, Tensor};
use residual_train::data::{image_header, load_image_with, ImageRecipe, Transform};
use residual_zoo::{create, eval_preprocess, inference_at, ModelOptions, Preprocess};
use std::path::Path;
use std::path::PathBuf;

/// Arguments of `residual predict`.
#[derive(clap::Args)]
pub struct Args {
    /// The model: a registered name (e.g. resnet50) or a .json / .toml model config file.
    #[arg(long)]
    model: String,
    /// Weights as safetensors with torchvision's key names (strict load).
    #[arg(long)]
    weights: PathBuf,
    /// A safetensors file holding a tensor named `input`: [N, C, H, W], f32 (or f16 / bf16 / f64).
    #[arg(long, requires = "output", conflicts_with = "image")]
    input: Option<PathBuf>,
    /// Where to write a safetensors file holding the tensor `output`: [N, classes] logits.
    #[arg(long, requires = "input")]
    output: Option<PathBuf>,
    /// An image file (JPEG or PNG) to classify; repeat for several.
    #[arg(long)]
    image: Vec<PathBuf>,
    /// With --image: a text file of class names, one per line in class order
    /// (e.g. ImageNet's 1000 names).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// With --image: how many of the most probable classes to print.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// With --image: side of the center crop (the model's input size by default: 224, or 384 for
    /// the *_384 hybrids); the shorter side is first resized to size / the model's crop fraction
    /// (torchvision's recipe: 0.875, 256 for 224; timm's hybrids: 0.9 for the *_224 and 1.0 for
    /// the *_384 models, whatever the size), or to size for a small image (shorter side <= 64 px)
    /// with torchvision's recipe, as `residual train` evaluates.
    #[arg(long)]
    image_size: Option<u32>,
    #[command(flatten)]
    device: crate::device::DeviceArg,
    #[command(flatten)]
    precision: crate::precision::PrecisionArg,
    /// Number of classes of the weights (the preset's default otherwise).
    #[arg(long)]
    classes: Option<usize>,
}

/// Loads, runs and writes.
pub fn run(a: Args) -> Result<(), Error> {
    let dev = a.device.open()?;
    let (input, output) = match (&a.input, &a.output) {
        (Some(i), Some(o)) => (i.clone(), o.clone()),
        _ if !a.image.is_empty() => return classify_images(&a, &dev),
        _ => {
            return Err(Error::arg(
                "predict",
                "give --input FILE --output FILE (tensors) or one or more --image FILE",
            ))
        }
    };
    // Writing the output over a file the command reads would lose it.
    for (flag, path) in [("--weights", &a.weights), ("--input", &input)] {
        if same_file(path, &output) {
            return Err(Error::arg(
                "--output",
                format!(
                    "{} is also the {flag} file; writing the output there would overwrite it",
                    output.display()
                ),
            ));
        }
    }
    let inputs = read_tensors(&input, &dev)?;
    let x = inputs.get("input").ok_or_else(|| {
        let names: Vec<&str> = inputs.keys().map(String::as_str).collect();
        Error::arg(
            "predict",
            format!(
                "{} has no tensor named \"input\" (it has: {})",
                input.display(),
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
    let model = create(&a.model, &opts, 0, &dev)?;
    load_for_input(&*model, &a.weights, x.dims()[1], "the input tensor")?;
    let model = inference_at(&*model, a.precision.resolve(&dev)?)?;
    let y = residual_tensor::no_grad(|| model.forward(x, Mode::Eval))?;
    write_tensors(&output, &[("output".to_string(), y.clone())])?;
    eprintln!("wrote output {} to {}", y.shape(), output.display());
    Ok(())
}

/// Class names from a label file: one per non-empty line.
fn read_labels(path: &Path, classes: usize) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != classes {
        return Err(Error::arg(
            "--labels",
            format!(
                "{} has {} class names; the model has {classes} classes",
                path.display(),
                names.len()
            ),
        ));
    }
    Ok(names)
}

/// Preprocesses each image, runs the model once on the batch and prints the
/// top-k classes of each with their probabilities.
fn classify_images(a: &Args, dev: &Device) -> Result<(), Error> {
    if a.top_k == 0 {
        return Err(Error::arg("--top-k", "must be at least 1"));
    }
    let pre = eval_preprocess(&a.model);
    let size = a.image_size.unwrap_or(pre.input_size);
    ImageRecipe::choose(1, Some(size), None)?;
    let norm = Transform::Normalize {
        mean: pre.mean.to_vec(),
        std: pre.std.to_vec(),
    };
    let shape = [3, size as usize, size as usize];
    let mut pixels = Vec::new();
    for path in &a.image {
        let (w, h) = image_header(path, size)?;
        let resize = if pre == Preprocess::TORCHVISION {
            // As `residual train` evaluated: a small image is center-cropped
            // at `size`, a large one resized to size * 256 / 224 first.
            ImageRecipe::choose(w.min(h), Some(size), None)?.resize
        } else {
            pre.resize_for(size)
        };
        let mut img = load_image_with(path, resize, size, pre.interpolation)?;
        norm.apply(&mut img, shape, 0);
        pixels.extend(img);
    }
    let x = Tensor::from_vec(
        pixels,
        [a.image.len(), 3, size as usize, size as usize],
        dev,
    )?;
    let opts = ModelOptions {
        num_classes: a.classes,
        ..Default::default()
    };
    let model = create(&a.model, &opts, 0, dev)?;
    load_for_input(&*model, &a.weights, 3, "an RGB image")?;
    let model = inference_at(&*model, a.precision.resolve(dev)?)?;
    let logits = residual_tensor::no_grad(|| model.forward(&x, Mode::Eval))?;
    let classes = logits.dims()[1];
    let labels = a
        .labels
        .as_deref()
        .map(|p| read_labels(p, classes))
        .transpose()?;
    let probs = logits.softmax(1)?.to_vec()?;
    for (i, path) in a.image.iter().enumerate() {
        let row = &probs[i * classes..(i + 1) * classes];
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&p, &q| row[q].total_cmp(&row[p]).then(p.cmp(&q)));
        println!("{}:", path.display());
        for &c in order.iter().take(a.top_k) {
            let name = labels
                .as_ref()
                .map_or_else(|| format!("class {c}"), |l| l[c].clone());
            println!("  {:6.2}%  {name} ({c})", 100.0 * row[c]);
        }
    }
    Ok(())
}

/// Whether `a` and `b` name the same file (the same path, or one existing
/// file reached by two paths).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
