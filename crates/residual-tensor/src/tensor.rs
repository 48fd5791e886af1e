//! The [`Tensor`] handle: construction, read-back, casts and the op plumbing.

use crate::backend::{HostData, Storage};
use crate::grad_mode;
use crate::{rng, DType, Device, Error, Result, Shape};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static NEXT_TENSOR_ID: AtomicU64 = AtomicU64::new(1);

/// Identity of a tensor, stable across clones of its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub(crate) u64);

/// The backward rule of one op: gradient of the output to gradients of the
/// inputs (`None` for inputs that need none).
pub type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// A recorded op in the graph.
pub struct Node {
    pub(crate) op: &'static str,
    pub(crate) inputs: Vec<Edge>,
    /// Taken (and with it what it keeps, freed) when the backward sweep has
    /// run it, as PyTorch frees a graph's saved tensors during `backward`.
    backward: std::sync::Mutex<Option<BackwardFn>>,
    /// The bytes of the output that `backward` keeps, counted in
    /// [`crate::saved`] (0 if it keeps none or they were not counted).
    kept_bytes: AtomicU64,
}

impl Node {
    /// Runs the backward rule once, then frees it and what it keeps.
    pub(crate) fn run_backward_once(&self, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let rule = self
            .backward
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| {
                Error::Autograd(format!(
                    "backward through the graph of {} a second time: its saved tensors \
                     were freed by the first backward (run the forward again)",
                    self.op
                ))
            })?;
        let grads = rule(grad);
        drop(rule);
        self.release_kept_bytes();
        grads
    }

    /// Takes the kept output's bytes back from [`crate::saved`] (once: the
    /// rule that kept the output is gone, or the node is).
    fn release_kept_bytes(&self) {
        let kept = self.kept_bytes.swap(0, Ordering::Relaxed);
        if kept > 0 {
            crate::saved::remove(kept);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.release_kept_bytes();
    }
}

/// The graph's link from a [`Node`] to one of its inputs: what the backward
/// sweep needs of the input (its identity, shape, and the node that made it),
/// not its elements. An op's output is freed as soon as no handle and no
/// backward rule (which captures what it uses) holds it, as in PyTorch: a
/// batch norm's output that only a ReLU reads lives until the ReLU has run,
/// not until backward.
#[derive(Clone)]
pub(crate) struct Edge {
    pub(crate) id: TensorId,
    pub(crate) shape: Shape,
    pub(crate) requires_grad: bool,
    pub(crate) node: Option<Arc<Node>>,
}

/// An n-dimensional array on a [`Device`]: a cheap-to-clone handle to immutable,
/// dense row-major storage, plus the op that made it when it takes part in autograd.
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

struct Inner {
    id: TensorId,
    storage: Storage,
    shape: Shape,
    device: Device,
    requires_grad: bool,
    node: Option<Arc<Node>>,
    /// The bytes this output added to [`crate::saved`]'s tally (0 if none),
    /// taken back when it is freed.
    saved_bytes: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.saved_bytes > 0 {
            crate::saved::remove(self.saved_bytes);
        }
    }
}

impl Tensor {
    // ---- plumbing -----------------------------------------------------

    /// Wraps backend storage as a tensor (a leaf that does not require grad).
    pub fn from_storage(
        storage: Storage,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Self> {
        let shape = shape.into();
        if storage.len() != shape.numel() {
            return Err(Error::shape(
                "from_storage",
                format!(
                    "storage holds {} elements but shape {shape} needs {}",
                    storage.len(),
                    shape.numel()
                ),
            ));
        }
        Ok(Self::leaf(storage, shape, device.clone(), false))
    }

    fn leaf(storage: Storage, shape: Shape, device: Device, requires_grad: bool) -> Self {
        Tensor(Arc::new(Inner {
            id: TensorId(NEXT_TENSOR_ID.fetch_add(1, Ordering::Relaxed)),
            storage,
            shape,
            device,
            requires_grad,
            node: None,
            saved_bytes: 0,
        }))
    }

    /// The result of an op: records `backward` when grad is enabled and an input requires grad.
    pub(crate) fn from_op(
        storage: Storage,
        shape: Shape,
        device: &Device,
        op: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Self {
        Self::recorded(
            storage,
            shape,
            device,
            op,
            inputs,
            Box::new(backward),
            false,
        )
    }

    /// [`Tensor::from_op`], saying whether `backward` keeps (a handle to)
    /// the output's storage: its bytes are then counted as saved while the
    /// node lives, not while the output's handles do.
    pub(crate) fn recorded(
        storage: Storage,
        shape: Shape,
        device: &Device,
        op: &'static str,
        inputs: &[&Tensor],
        backward: BackwardFn,
        backward_keeps_output: bool,
    ) -> Self {
        debug_assert_eq!(storage.len(), shape.numel(), "{op}: kernel output size");
        let track = grad_mode::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        let bytes = (storage.len() * storage.dtype().size_in_bytes()) as u64;
        let counted = if track && crate::saved::add(bytes) {
            bytes
        } else {
            0
        };
        let (saved_bytes, kept_bytes) = if backward_keeps_output {
            (0, counted)
        } else {
            (counted, 0)
        };
        let node = track.then(|| {
            Arc::new(Node {
                op,
                inputs: inputs.iter().map(|t| t.edge()).collect(),
                backward: std::sync::Mutex::new(Some(backward)),
                kept_bytes: AtomicU64::new(kept_bytes),
            })
        });
        Tensor(Arc::new(Inner {
            id: TensorId(NEXT_TENSOR_ID.fetch_add(1, Ordering::Relaxed)),
            storage,
            shape,
            device: device.clone(),
            requires_grad: track,
            node,
            saved_bytes,
        }))
    }

    /// Whether the elements are half precision (f16 or bf16).
    pub fn is_half(&self) -> bool {
        self.dtype() != DType::F32
    }

    /// The tensor an f32 op computes on: `self`, or its differentiable upcast
    /// when it is half precision (see [`crate::autocast`]).
    pub(crate) fn to_f32(&self) -> Result<Tensor> {
        self.cast(DType::F32)
    }

    /// Checks that `self` and `other` are on one device.
    pub(crate) fn expect_same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device() != other.device() {
            return Err(Error::Device {
                op,
                a: self.device().to_string(),
                b: other.device().to_string(),
            });
        }
        Ok(())
    }

    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_deref()
    }

    /// This tensor as the input of a recorded op (see [`Edge`]).
    pub(crate) fn edge(&self) -> Edge {
        Edge {
            id: self.id(),
            shape: self.shape().clone(),
            requires_grad: self.requires_grad(),
            node: self.0.node.clone(),
        }
    }

    // ---- accessors ----------------------------------------------------

    /// Identity of this tensor (shared by clones of the handle).
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }
    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.shape.numel()
    }
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }
    /// The device holding the storage.
    pub fn device(&self) -> &Device {
        &self.0.device
    }
    /// The backend storage.
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }
    /// Whether gradients flow to this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }
    /// Whether this tensor was made by a recorded op (not a leaf).
    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }
    /// A new leaf sharing this storage that requires grad (a trainable parameter).
    pub fn requires_grad_(&self) -> Tensor {
        Self::leaf(
            self.0.storage.clone(),
            self.shape().clone(),
            self.device().clone(),
            true,
        )
    }
    /// A new leaf sharing this storage, cut from the graph.
    pub fn detach(&self) -> Tensor {
        Self::leaf(
            self.0.storage.clone(),
            self.shape().clone(),
            self.device().clone(),
            false,
        )
    }

    // ---- construction -------------------------------------------------

    /// A tensor from f32 values in row-major order.
    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>, device: &Device) -> Result<Self> {
        Self::from_host(HostData::F32(data), shape, device)
    }

    /// A tensor from host data of any dtype.
    pub fn from_host(data: HostData, shape: impl Into<Shape>, device: &Device) -> Result<Self> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(Error::shape(
                "from_vec",
                format!(
                    "got {} values for shape {shape}, which needs {}",
                    data.len(),
                    shape.numel()
                ),
            ));
        }
        let s = device.backend().upload(data)?;
        Ok(Self::leaf(s, shape, device.clone(), false))
    }

    /// A tensor from an ndarray array (any layout; read in logical order).
    pub fn from_ndarray<D: ndarray::Dimension>(
        a: &ndarray::Array<f32, D>,
        device: &Device,
    ) -> Result<Self> {
        let shape = Shape::new(a.shape().to_vec());
        Self::from_vec(a.iter().copied().collect(), shape, device)
    }

    /// A one-element tensor of shape `[]`.
    pub fn scalar(value: f32, device: &Device) -> Result<Self> {
        Self::full(value, Shape::new(vec![]), device)
    }

    /// Every element `value`.
    pub fn full(value: f32, shape: impl Into<Shape>, device: &Device) -> Result<Self> {
        let shape = shape.into();
        let s = device.backend().full(shape.numel(), value)?;
        Ok(Self::leaf(s, shape, device.clone(), false))
    }
    /// Zeros.
    pub fn zeros(shape: impl Into<Shape>, device: &Device) -> Result<Self> {
        Self::full(0.0, shape, device)
    }
    /// Ones.
    pub fn ones(shape: impl Into<Shape>, device: &Device) -> Result<Self> {
        Self::full(1.0, shape, device)
    }
    /// Zeros with the shape and device of `t`.
    pub fn zeros_like(t: &Tensor) -> Result<Self> {
        Self::zeros(t.shape().clone(), t.device())
    }
    /// Ones with the shape and device of `t`.
    pub fn ones_like(t: &Tensor) -> Result<Self> {
        Self::ones(t.shape().clone(), t.device())
    }
    /// `[start, start + step, ...]` below `end` (f32 values), as `torch.arange`.
    pub fn arange(start: f32, end: f32, step: f32, device: &Device) -> Result<Self> {
        if step == 0.0 || !step.is_finite() || ((end - start) / step) < 0.0 {
            return Err(Error::arg(
                "arange",
                format!("step {step} cannot go from {start} to {end}"),
            ));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v: Vec<f32> = (0..n).map(|i| start + step * i as f32).collect();
        Self::from_vec(v, [n], device)
    }
    /// Normal samples from a seeded generator (the same seed gives the same tensor).
    pub fn randn(
        shape: impl Into<Shape>,
        mean: f32,
        std: f32,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let shape = shape.into();
        Self::from_vec(rng::normal(seed, shape.numel(), mean, std), shape, device)
    }
    /// Uniform samples in `[low, high)` from a seeded generator.
    pub fn rand_uniform(
        shape: impl Into<Shape>,
        low: f32,
        high: f32,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let shape = shape.into();
        Self::from_vec(rng::uniform(seed, shape.numel(), low, high), shape, device)
    }

    // ---- read-back and casts -----------------------------------------

    /// The elements as f32 in row-major order (converting half storage).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        Ok(self.device().backend().download(self.storage())?.into_f32())
    }
    /// Calls `f` with the elements as f32 in row-major order: the storage
    /// itself for an f32 tensor on the CPU (no copy), a host copy otherwise.
    /// For reads over a whole tensor (norms, finiteness checks) on a hot path.
    pub fn with_f32s<T>(&self, f: impl FnOnce(&[f32]) -> T) -> Result<T> {
        let host = self
            .storage()
            .as_any()
            .downcast_ref::<crate::cpu::CpuStorage>();
        if let Some(crate::cpu::CpuStorage::F32(v)) = host {
            return Ok(f(v));
        }
        Ok(f(&self.to_vec()?))
    }
    /// The elements in their own dtype.
    pub fn to_host(&self) -> Result<HostData> {
        self.device().backend().download(self.storage())
    }
    /// The value of a one-element tensor.
    pub fn to_scalar(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "to_scalar",
                format!("expected one element, got shape {}", self.shape()),
            ));
        }
        Ok(self.to_vec()?[0])
    }
    /// The elements as an ndarray array of this shape.
    pub fn to_ndarray(&self) -> Result<ndarray::ArrayD<f32>> {
        ndarray::ArrayD::from_shape_vec(self.dims().to_vec(), self.to_vec()?)
            .map_err(|e| Error::shape("to_ndarray", e.to_string()))
    }
    /// Copies to another device (the only way tensors change device).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        Self::from_host(self.to_host()?, self.shape().clone(), device)
    }
    /// Converts the element type. Differentiable: the gradient is cast back.
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let from = self.dtype();
        let s = self.device().backend().cast(self.storage(), dtype)?;
        Ok(Tensor::from_op(
            s,
            self.shape().clone(),
            self.device(),
            "cast",
            &[self],
            move |g| Ok(vec![Some(g.cast(from)?)]),
        ))
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({}, {}, {}",
            self.shape(),
            self.dtype(),
            self.device()
        )?;
        if let Some(n) = self.node() {
            write!(f, ", op={}", n.op)?;
        } else if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        write!(f, ")")
    }
}
