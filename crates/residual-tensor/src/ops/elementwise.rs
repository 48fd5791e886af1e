//! Elementwise arithmetic with broadcasting, unary math and activations.

use crate::backend::{BinaryOp, Storage, UnaryOp};
use crate::{Result, Shape, Tensor};

/// Whether `a op b` runs in the operands' half dtype instead of f32: the
/// residual additions of a network under mixed precision, as in PyTorch,
/// where adding two bf16 tensors gives bf16. Other ops, and operands of two
/// dtypes, compute in f32 (see [`crate::autocast`]).
fn keeps_half_binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> bool {
    op == BinaryOp::Add && a.dtype() == b.dtype()
}

impl Tensor {
    fn binary(&self, op: BinaryOp, name: &'static str, rhs: &Tensor) -> Result<Tensor> {
        self.expect_same_device(name, rhs)?;
        if (self.is_half() || rhs.is_half()) && !keeps_half_binary(op, self, rhs) {
            return self.to_f32()?.binary(op, name, &rhs.to_f32()?);
        }
        let out = Shape::broadcast(name, self.shape(), rhs.shape())?;
        let s = self.device().backend().binary(
            op,
            (self.storage(), self.shape()),
            (rhs.storage(), rhs.shape()),
            &out,
        )?;
        // Add and Sub need only the operands' shapes: their values (a
        // residual block's last batch-norm output) are freed after the
        // forward, as in PyTorch.
        let operands =
            matches!(op, BinaryOp::Mul | BinaryOp::Div).then(|| (self.clone(), rhs.clone()));
        let (a_shape, b_shape) = (self.shape().clone(), rhs.shape().clone());
        let (a_grad, b_grad) = (self.requires_grad(), rhs.requires_grad());
        Ok(Tensor::from_op(
            s,
            out,
            self.device(),
            name,
            &[self, rhs],
            move |g| {
                let (ga, gb) = match op {
                    BinaryOp::Add => (g.clone(), g.clone()),
                    BinaryOp::Sub => (g.clone(), g.neg()?),
                    BinaryOp::Mul | BinaryOp::Div => {
                        let (a, b) = operands.as_ref().expect("Mul and Div keep their operands");
                        if op == BinaryOp::Mul {
                            (g.mul(b)?, g.mul(a)?)
                        } else {
                            // d(a/b)/db = -a / b^2
                            let gb = g.mul(a)?.div(&b.mul(b)?)?.neg()?;
                            (g.div(b)?, gb)
                        }
                    }
                };
                Ok(vec![
                    a_grad.then(|| ga.sum_to(&a_shape)).transpose()?,
                    b_grad.then(|| gb.sum_to(&b_shape)).transpose()?,
                ])
            },
        ))
    }

    /// `self + rhs` with NumPy broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, "add", rhs)
    }
    /// `self - rhs` with NumPy broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, "sub", rhs)
    }
    /// `self * rhs` with NumPy broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, "mul", rhs)
    }
    /// `self / rhs` with NumPy broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, "div", rhs)
    }

    /// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
    pub fn sum_to(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let off = self.rank() - shape.rank();
        let axes: Vec<isize> = (0..self.rank())
            .filter(|&i| i < off || (shape.dims()[i - off] == 1 && self.dims()[i] != 1))
            .map(|i| i as isize)
            .collect();
        let summed = if axes.is_empty() {
            self.clone()
        } else {
            self.sum(&axes, true)?
        };
        summed.reshape(shape.dims())
    }

    fn unary(&self, op: UnaryOp, name: &'static str) -> Result<Tensor> {
        /// What a unary op's backward reads `f'` off.
        enum Kept {
            Input(Tensor),
            Output(Storage),
        }
        // The activations of the zoo's models keep a half input's dtype (as
        // PyTorch's under autocast); the other unary ops compute in f32.
        if self.is_half() && !matches!(op, UnaryOp::Relu | UnaryOp::Gelu) {
            return self.to_f32()?.unary(op, name);
        }
        let s = self.device().backend().unary(op, self.storage())?;
        let dtype = self.dtype();
        // ReLU's derivative reads as well off its output (y <= 0 exactly
        // where x <= 0, NaN where x is NaN), which the next op keeps anyway:
        // its input (often a batch norm's output) is then freed after the
        // forward, as PyTorch's in-place ReLU does.
        let keeps_output = op == UnaryOp::Relu;
        let kept = if keeps_output {
            Kept::Output(s.clone())
        } else {
            Kept::Input(self.clone())
        };
        let (shape, dev) = (self.shape().clone(), self.device().clone());
        Ok(Tensor::recorded(
            s,
            self.shape().clone(),
            self.device(),
            name,
            &[self],
            Box::new(move |g| {
                let read = match &kept {
                    Kept::Output(y) => y,
                    Kept::Input(x) => x.storage(),
                };
                // The gradient of a half output is taken in its dtype.
                let g = g.cast(dtype)?;
                let dx = dev.backend().unary_backward(op, read, g.storage())?;
                Ok(vec![Some(Tensor::from_storage(dx, shape.clone(), &dev)?)])
            }),
            keeps_output,
        ))
    }

    /// Applies any elementwise [`UnaryOp`] (differentiable).
    pub fn unary_op(&self, op: UnaryOp) -> Result<Tensor> {
        let name = match op {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Powf(_) => "powf",
            UnaryOp::AddScalar(_) => "add_scalar",
            UnaryOp::MulScalar(_) => "mul_scalar",
            UnaryOp::Clamp(lo, hi) => return self.clamp(lo, hi),
            UnaryOp::Relu => "relu",
            UnaryOp::Gelu => "gelu",
            UnaryOp::Silu => "silu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
        };
        self.unary(op, name)
    }

    /// `-x`
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg, "neg")
    }
    /// `e^x`
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp, "exp")
    }
    /// Natural logarithm.
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log, "log")
    }
    /// Square root.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt, "sqrt")
    }
    /// `1 / sqrt(x)`
    pub fn rsqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Rsqrt, "rsqrt")
    }
    /// `|x|` (gradient 0 at 0, as PyTorch).
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs, "abs")
    }
    /// `x^p`
    pub fn powf(&self, p: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(p), "powf")
    }
    /// `x + c`
    pub fn add_scalar(&self, c: f32) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar(c), "add_scalar")
    }
    /// `x * c`
    pub fn mul_scalar(&self, c: f32) -> Result<Tensor> {
        self.unary(UnaryOp::MulScalar(c), "mul_scalar")
    }
    /// Clamps to `[lo, hi]`; the gradient passes where `lo <= x <= hi` (as PyTorch).
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Tensor> {
        if lo > hi || lo.is_nan() || hi.is_nan() {
            return Err(crate::Error::arg(
                "clamp",
                format!("needs lo <= hi, got lo={lo} hi={hi}"),
            ));
        }
        self.unary(UnaryOp::Clamp(lo, hi), "clamp")
    }
    /// `max(x, 0)`
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu, "relu")
    }
    /// GELU, exact erf form (PyTorch's default `approximate='none'`).
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu, "gelu")
    }
    /// SiLU / swish: `x * sigmoid(x)`.
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu, "silu")
    }
    /// Logistic sigmoid.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid, "sigmoid")
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh, "tanh")
    }
}
