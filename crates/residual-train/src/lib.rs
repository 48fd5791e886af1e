//! # residual-train
//!
//! Training for residual models: [`optim`] (SGD, AdamW, as fused backend
//! kernels), [`schedule`] (step, multi-step, warmup + cosine, one-cycle),
//! [`scaler`] (PyTorch's GradScaler semantics), [`clip`] (by global norm or
//! value), [`data`] (MNIST IDX, CIFAR, ImageFolder, a seeded parallel loader,
//! transforms), [`checkpoint`] (atomic, resumable bit for bit), [`memory`] (a run's
//! memory, estimated before it starts), [`runlog`] (the
//! JSON-lines log, whole records, torn lines skipped), [`plots`],
//! [`config`] (what defines a run, with mixed precision: `TrainConfig::amp`),
//! [`step`] (the one training step), [`monitor`] (gradient flow, weights,
//! dead units, histograms), [`precise_bn`] (batch-norm recalibration after
//! an epoch), [`tensorboard`] (TensorBoard event files),
//! [`metrics`] (Prometheus gauges and their `/metrics` endpoint) and
//! [`trainer`] (the loop) for any model of the zoo, on one process or data
//! parallel over a [`distributed::Collective`] (MPI with the `mpi` feature).
//! [`fuzz`] holds the fuzz targets' entry points, one per file parser.

pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod data;
pub mod distributed;
pub mod fuzz;
pub mod memory;
pub mod metrics;
pub mod monitor;
pub mod optim;
pub mod plots;
pub mod precise_bn;
pub mod precision;
pub mod runlog;
pub mod scaler;
pub mod schedule;
pub mod step;
pub mod tensorboard;
pub mod trainer;
