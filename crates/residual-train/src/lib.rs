//! # residual-train
//!
//! Training for residual models: [`optim`] (SGD, AdamW, as fused backend
//! kernels), [`schedule`] (step, multi-step, warmup + cosine, one-cycle),
//! [`scaler`] (PyTorch's GradScaler semantics), [`clip`] (by global norm or
//! value), [`data`] (MNIST IDX, CIFAR, ImageFolder, a seeded parallel loader,
//! transforms), [`checkpoint`] (atomic, resumable bit for bit), [`plots`] and
//! [`trainer`] (the loop, with mixed precision: `TrainConfig::amp`).

pub mod checkpoint;
pub mod clip;
pub mod data;
pub mod optim;
pub mod plots;
pub mod scaler;
pub mod schedule;
pub mod trainer;
