//! `residual`: the command-line front end.

mod board;
mod data;
mod device;
mod eval;
mod experiment;
mod load;
mod precision;
mod predict;
mod report;
mod run_lock;
mod summary;
mod train;

use clap::{Parser, Subcommand};

/// mimalloc keeps freed tensor buffers for reuse instead of returning them to
/// the kernel, which saves a page fault per page of every fresh activation
/// (see [`keep_freed_memory`]).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (index 15 of `mi_option_t` in the
/// bundled mimalloc 2.x and 3.x headers; `libmimalloc-sys` names no constant).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to hand freed memory back to the kernel. A training
/// step frees and reallocates the same large activation buffers every step;
/// with mimalloc's default 10 ms purge delay the kernel takes those pages back
/// and zeroes them again on the next touch, which cost a quarter of a
/// ResNet-50 step at 224x224. The price is that the process keeps its peak
/// footprint until it exits.
fn keep_freed_memory() {
    // SAFETY: sets one integer option; mimalloc reads it at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}
use residual_tensor::Error;
use std::process::ExitCode;

/// residual: ResNets in Rust, on the CPU or any GPU.
#[derive(Parser)]
#[command(name = "residual", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model's layers, output shapes, parameters and multiply-accumulates.
    Summary(summary::Args),
    /// Run a model in evaluation mode on a tensor stored in a safetensors file.
    Predict(predict::Args),
    /// Accuracy and loss of saved weights on a dataset's test split (with
    /// --precision bf16, also how often bf16 and f32 agree on the top-1 class).
    Eval(eval::Args),
    /// Train a model (default: ResNet-20 on the MNIST digits shipped in the repository).
    Train(Box<train::Args>),
    /// Experiments on the bundled digits (degradation: plain vs residual nets).
    Experiment(experiment::Args),
    /// Write a self-contained HTML report of a run folder (curves, gradient flow, weights, dead units).
    Report(report::Args),
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Summary(a) => summary::run(a),
        Command::Predict(a) => on_kernel_pool(|| predict::run(a)),
        // Training chooses its threads itself (replicas, MPI ranks).
        Command::Train(a) => train::run(*a),
        Command::Eval(a) => on_kernel_pool(|| eval::run(a)),
        Command::Experiment(a) => on_kernel_pool(|| experiment::run(a)),
        Command::Report(a) => report::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `f` with this thread as worker 0 of a pool of every core
/// ([`residual_tensor::cpu::kernel_pool`]): its kernels start here instead
/// of being handed to rayon's pool one by one.
fn on_kernel_pool(f: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    let _pool = residual_tensor::cpu::kernel_pool(rayon::current_num_threads())?;
    f()
}
