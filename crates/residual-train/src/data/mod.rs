//! Datasets, transforms and the batch loader.

mod affine;
mod cifar;
mod dataset;
mod elastic;
mod image_folder;
mod loader;
mod mnist;
mod recipe;
mod resized_crop;
mod split;
mod transform;

pub use affine::Affine;
pub use cifar::{Cifar, CifarKind};
pub use dataset::Dataset;
pub use elastic::{gaussian_kernel, Elastic};
pub use image_folder::{
    image_header, load_image, load_image_with, load_random_resized_crop, show_path, ImageFolder,
    SkipReason, Skipped,
};
pub use loader::{Batch, DataLoader, Shard};
pub use mnist::Mnist;
pub use recipe::{
    Augment, ImageRecipe, LARGE_IMAGE_SIZE, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, SMALL_IMAGE_MAX_SIDE,
};
pub use resized_crop::{CropBox, ResizedCrop};
pub use split::{
    last_of_each_class, stratified_indices, validation_split, validation_split_last, Subset,
};
pub use transform::Transform;
