//! Datasets, transforms and the batch loader.

mod cifar;
mod dataset;
mod image_folder;
mod loader;
mod mnist;
mod resized_crop;
mod transform;

pub use cifar::{Cifar, CifarKind};
pub use dataset::Dataset;
pub use image_folder::{
    image_header, load_image, load_random_resized_crop, show_path, ImageFolder, SkipReason, Skipped,
};
pub use loader::{Batch, DataLoader};
pub use mnist::Mnist;
pub use resized_crop::{CropBox, ResizedCrop};
pub use transform::Transform;
