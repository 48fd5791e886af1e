//! Which threads run the CPU kernels: a thread that calls them from outside
//! rayon's pool hands every kernel to the pool and sleeps until it is done,
//! a wake-up and a sleep per kernel that small kernels feel (two replicas of
//! ResNet-20 training on 28x28 digits ran 1.7x as fast once each ran its
//! kernels on a pool of its own). [`kernel_pool`]
//! makes the calling thread a worker of a pool of its own, so that its
//! kernels start on it and split with the pool's other workers from there.

use crate::{Error, Result};

/// Makes the calling thread worker 0 of a new rayon pool of `threads`
/// threads (at least one; it starts `threads - 1` more) and returns the
/// pool: the kernels this thread calls then run on it and on those
/// workers, without a hand-off to rayon's global pool. With `threads` = 1
/// they run inline on this thread (one of several replicas each owning a
/// core). The thread stays the pool's worker while the handle lives, and
/// rayon keeps it registered with the pool after that: once the handle is
/// dropped, the thread's kernels run on it alone, and it cannot join another
/// pool. Hold the handle for as long as the thread computes, and call this
/// once per thread.
///
/// Errors when the calling thread already is a worker of a rayon pool.
///
/// ```
/// let _pool = residual_tensor::cpu::kernel_pool(rayon::current_num_threads())?;
/// // ... tensors computed on this thread from here run on the pool ...
/// # Ok::<(), residual_tensor::Error>(())
/// ```
pub fn kernel_pool(threads: usize) -> Result<rayon::ThreadPool> {
    let threads = threads.max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .use_current_thread()
        .build()
        .map_err(|e| {
            Error::arg(
                "kernel_pool",
                format!(
                    "could not make this thread a worker of a pool of {threads} thread(s): {e}"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Device, Tensor};

    #[test]
    fn a_thread_of_its_own_pool_computes_as_one_outside_it() {
        std::thread::spawn(|| {
            let dev = Device::cpu();
            let a = Tensor::randn([64, 96], 0.0, 1.0, 1, &dev).unwrap();
            let b = Tensor::randn([96, 80], 0.0, 1.0, 2, &dev).unwrap();
            let outside = a.matmul(&b).unwrap().to_vec().unwrap();
            let pool = kernel_pool(2).unwrap();
            assert_eq!(pool.current_num_threads(), 2);
            assert_eq!(
                rayon::current_thread_index(),
                Some(0),
                "the caller is the pool's worker 0"
            );
            let inside = a.matmul(&b).unwrap().to_vec().unwrap();
            assert_eq!(inside, outside);
            let again = kernel_pool(1).unwrap_err().to_string();
            assert!(again.contains("worker"), "{again}");
        })
        .join()
        .unwrap();
    }
}
