//! Layout ops: reshape, permute / transpose, concat, narrow, index_select,
//! broadcast_to, contiguous. Every result is dense row-major storage; views
//! are materialised by one strided-copy kernel, so no kernel ever has to infer
//! a layout from strides.

use crate::backend::AxisView;
use crate::{Error, Result, Shape, Tensor};

impl Tensor {
    /// Same elements, new shape (one dimension may be `usize::MAX` to infer it).
    /// Shares storage: no copy.
    pub fn reshape(&self, dims: &[usize]) -> Result<Tensor> {
        let mut dims = dims.to_vec();
        let infer: Vec<usize> = (0..dims.len()).filter(|&i| dims[i] == usize::MAX).collect();
        if infer.len() > 1 {
            return Err(Error::arg(
                "reshape",
                "at most one dimension can be inferred",
            ));
        }
        if let Some(&i) = infer.first() {
            let known: usize = dims
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &d)| d)
                .product();
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(Error::shape(
                    "reshape",
                    format!(
                        "cannot infer a dimension to reshape {} into {dims:?}",
                        self.shape()
                    ),
                ));
            }
            dims[i] = self.numel() / known;
        }
        let shape = Shape::new(dims);
        if shape.numel() != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "cannot reshape {} ({} elements) into {shape} ({} elements)",
                    self.shape(),
                    self.numel(),
                    shape.numel()
                ),
            ));
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        let in_shape = self.shape().clone();
        Ok(Tensor::from_op(
            self.storage().clone(),
            shape,
            self.device(),
            "reshape",
            &[self],
            move |g| Ok(vec![Some(g.reshape(in_shape.dims())?)]),
        ))
    }

    /// Flattens dimensions `from..` into one (`x.flatten(1)` turns `[n,c,h,w]` into `[n, c*h*w]`).
    pub fn flatten(&self, from: usize) -> Result<Tensor> {
        if from > self.rank() {
            return Err(Error::arg(
                "flatten",
                format!("start dim {from} beyond rank of {}", self.shape()),
            ));
        }
        let mut d = self.dims()[..from].to_vec();
        d.push(self.dims()[from..].iter().product());
        self.reshape(&d)
    }

    /// Inserts a dimension of size 1 at `axis`.
    pub fn unsqueeze(&self, axis: usize) -> Result<Tensor> {
        if axis > self.rank() {
            return Err(Error::arg(
                "unsqueeze",
                format!("axis {axis} beyond rank of {}", self.shape()),
            ));
        }
        let mut d = self.dims().to_vec();
        d.insert(axis, 1);
        self.reshape(&d)
    }

    /// Reorders dimensions: output dimension `i` is input dimension `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let r = self.rank();
        let mut seen = vec![false; r];
        if perm.len() != r
            || perm
                .iter()
                .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::arg(
                "permute",
                format!(
                    "{perm:?} is not a permutation of the {r} dimensions of {}",
                    self.shape()
                ),
            ));
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        if self.is_half() {
            return self.to_f32()?.permute(perm);
        }
        let src = self.shape().strides();
        let out = Shape::new(perm.iter().map(|&p| self.dims()[p]).collect::<Vec<_>>());
        let strides: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
        let s = self
            .device()
            .backend()
            .strided_copy(self.storage(), &out, &strides, 0)?;
        let mut inverse = vec![0; r];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(Tensor::from_op(
            s,
            out,
            self.device(),
            "permute",
            &[self],
            move |g| Ok(vec![Some(g.permute(&inverse)?)]),
        ))
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let a = self.shape().axis("transpose", a)?;
        let b = self.shape().axis("transpose", b)?;
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Dense row-major storage. Every tensor already is (views are copied when
    /// made), so this returns `self`; it exists for code ported from PyTorch.
    pub fn contiguous(&self) -> Result<Tensor> {
        Ok(self.clone())
    }

    /// Elements `start .. start + len` along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let a = self.shape().axis("narrow", axis)?;
        let d = self.dims()[a];
        if start.checked_add(len).is_none_or(|e| e > d) {
            return Err(Error::arg(
                "narrow",
                format!(
                    "range {start}..{} is out of bounds for axis {a} of size {d} in {}",
                    start.saturating_add(len),
                    self.shape()
                ),
            ));
        }
        if start == 0 && len == d {
            return Ok(self.clone());
        }
        if self.is_half() {
            return self.to_f32()?.narrow(axis, start, len);
        }
        let strides = self.shape().strides();
        let mut out = self.dims().to_vec();
        out[a] = len;
        let out = Shape::new(out);
        let s = self.device().backend().strided_copy(
            self.storage(),
            &out,
            &strides,
            start * strides[a],
        )?;
        let in_shape = self.shape().clone();
        Ok(Tensor::from_op(
            s,
            out,
            self.device(),
            "narrow",
            &[self],
            move |g| {
                // Pad the gradient back with zeros on both sides of the slice.
                let mut before = in_shape.dims().to_vec();
                before[a] = start;
                let mut after = in_shape.dims().to_vec();
                after[a] = in_shape.dims()[a] - start - len;
                let z0 = Tensor::zeros(before, g.device())?;
                let z1 = Tensor::zeros(after, g.device())?;
                Ok(vec![Some(Tensor::concat(&[&z0, g, &z1], a as isize)?)])
            },
        ))
    }

    /// Concatenates tensors along `axis`; all other dimensions must agree.
    pub fn concat(parts: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first = parts
            .first()
            .ok_or_else(|| Error::arg("concat", "no tensors to concatenate"))?;
        let a = first.shape().axis("concat", axis)?;
        if parts.iter().any(|p| p.is_half()) {
            let wide: Vec<Tensor> = parts.iter().map(|p| p.to_f32()).collect::<Result<_>>()?;
            return Tensor::concat(&wide.iter().collect::<Vec<_>>(), axis);
        }
        for p in parts {
            first.expect_same_device("concat", p)?;
            let same_rank = p.rank() == first.rank();
            if !same_rank || (0..p.rank()).any(|i| i != a && p.dims()[i] != first.dims()[i]) {
                let shapes: Vec<String> = parts.iter().map(|t| t.shape().to_string()).collect();
                return Err(Error::shape(
                    "concat",
                    format!("shapes {} differ outside axis {a}", shapes.join(", ")),
                ));
            }
        }
        let mut out = first.dims().to_vec();
        out[a] = parts.iter().map(|p| p.dims()[a]).sum();
        let out = Shape::new(out);
        let view = AxisView::new(&out, a);
        let lens: Vec<usize> = parts.iter().map(|p| p.dims()[a]).collect();
        let pieces: Vec<_> = parts
            .iter()
            .zip(&lens)
            .map(|(p, &l)| (p.storage(), l))
            .collect();
        let s = first
            .device()
            .backend()
            .concat(&pieces, view.outer, view.inner)?;
        Ok(Tensor::from_op(
            s,
            out,
            first.device(),
            "concat",
            parts,
            move |g| {
                let mut start = 0;
                lens.iter()
                    .map(|&l| {
                        let piece = g.narrow(a as isize, start, l);
                        start += l;
                        piece.map(Some)
                    })
                    .collect()
            },
        ))
    }

    /// Rows `index[j]` along `axis`, in that order (repeats allowed).
    pub fn index_select(&self, axis: isize, index: &[usize]) -> Result<Tensor> {
        if self.is_half() {
            return self.to_f32()?.index_select(axis, index);
        }
        let a = self.shape().axis("index_select", axis)?;
        let d = self.dims()[a];
        if let Some(&bad) = index.iter().find(|&&i| i >= d) {
            return Err(Error::arg(
                "index_select",
                format!(
                    "index {bad} is out of bounds for axis {a} of size {d} in {}",
                    self.shape()
                ),
            ));
        }
        let view = AxisView::new(self.shape(), a);
        let mut out = self.dims().to_vec();
        out[a] = index.len();
        let s = self
            .device()
            .backend()
            .index_select(self.storage(), view, index)?;
        let index = index.to_vec();
        Ok(Tensor::from_op(
            s,
            Shape::new(out),
            self.device(),
            "index_select",
            &[self],
            move |g| {
                let dx = g.device().backend().index_add(g.storage(), view, &index)?;
                let in_shape = {
                    let mut d = g.dims().to_vec();
                    d[a] = view.len;
                    d
                };
                Ok(vec![Some(Tensor::from_storage(dx, in_shape, g.device())?)])
            },
        ))
    }

    /// Repeats size-1 (or missing leading) dimensions to reach `dims` (NumPy rules).
    pub fn broadcast_to(&self, dims: &[usize]) -> Result<Tensor> {
        let target = Shape::new(dims.to_vec());
        let ok = Shape::broadcast("broadcast_to", self.shape(), &target).is_ok_and(|s| s == target);
        if !ok {
            return Err(Error::shape(
                "broadcast_to",
                format!("cannot broadcast {} to {target}", self.shape()),
            ));
        }
        if &target == self.shape() {
            return Ok(self.clone());
        }
        if self.is_half() {
            return self.to_f32()?.broadcast_to(dims);
        }
        let strides = self.shape().broadcast_strides(&target);
        let s = self
            .device()
            .backend()
            .strided_copy(self.storage(), &target, &strides, 0)?;
        let in_shape = self.shape().clone();
        Ok(Tensor::from_op(
            s,
            target,
            self.device(),
            "broadcast_to",
            &[self],
            move |g| Ok(vec![Some(g.sum_to(&in_shape)?)]),
        ))
    }
}
