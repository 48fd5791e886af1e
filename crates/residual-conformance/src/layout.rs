//! Layout ops: reshape, permute, transpose, narrow, concat, index_select,
//! broadcast_to.

use crate::assert::check_gradients;
use crate::inputs::{randn, t};
use residual_tensor::{Device, Tensor};

/// reshape, permute, transpose, narrow, concat, index_select, broadcast_to.
pub fn layout_forward(dev: &Device) {
    let x = t(dev, (0..24).map(|v| v as f32).collect(), &[2, 3, 4]);
    let p = x.permute(&[2, 0, 1]).unwrap();
    assert_eq!(p.dims(), [4, 2, 3]);
    let pv = p.to_vec().unwrap();
    for k in 0..4 {
        for i in 0..2 {
            for j in 0..3 {
                assert_eq!(
                    pv[k * 6 + i * 3 + j],
                    (i * 12 + j * 4 + k) as f32,
                    "permute"
                );
            }
        }
    }
    let tr = x.transpose(0, -1).unwrap();
    assert_eq!(tr.dims(), [4, 3, 2]);
    assert_eq!(tr.to_vec().unwrap()[1], 12.0, "transpose");
    let n = x.narrow(2, 1, 2).unwrap();
    assert_eq!(n.dims(), [2, 3, 2]);
    assert_eq!(n.to_vec().unwrap()[..4], [1.0, 2.0, 5.0, 6.0], "narrow");
    let c = Tensor::concat(&[&x, &n], 2).unwrap();
    assert_eq!(c.dims(), [2, 3, 6]);
    assert_eq!(
        c.to_vec().unwrap()[..8],
        [0.0, 1.0, 2.0, 3.0, 1.0, 2.0, 4.0, 5.0],
        "concat"
    );
    let s = x.index_select(1, &[2, 0, 2]).unwrap();
    assert_eq!(s.dims(), [2, 3, 4]);
    assert_eq!(
        s.to_vec().unwrap()[..8],
        [8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0],
        "index_select"
    );
    let b = t(dev, vec![1.0, 2.0, 3.0], &[3, 1])
        .broadcast_to(&[2, 3, 2])
        .unwrap();
    assert_eq!(
        b.to_vec().unwrap(),
        [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
        "broadcast_to"
    );
    let r = x.reshape(&[4, usize::MAX]).unwrap();
    assert_eq!(r.dims(), [4, 6]);
    assert_eq!(r.to_vec().unwrap(), x.to_vec().unwrap(), "reshape");
    // A permuted-then-sliced (non-contiguous in PyTorch terms) input behaves as its values.
    let nc = x
        .permute(&[0, 2, 1])
        .unwrap()
        .narrow(1, 1, 2)
        .unwrap()
        .contiguous()
        .unwrap();
    assert_eq!(nc.dims(), [2, 2, 3]);
    assert_eq!(
        nc.to_vec().unwrap()[..6],
        [1.0, 5.0, 9.0, 2.0, 6.0, 10.0],
        "permute+narrow"
    );
}

/// Backward of the layout ops.
pub fn layout_backward(dev: &Device) {
    let x = randn(dev, &[2, 3, 4], 21);
    check_gradients("permute", dev, vec![x.clone()], 1e-2, |v| {
        v[0].permute(&[1, 2, 0])
    });
    check_gradients("narrow", dev, vec![x.clone()], 1e-2, |v| {
        v[0].narrow(1, 1, 2)
    });
    check_gradients(
        "concat",
        dev,
        vec![x.clone(), x.narrow(2, 0, 3).unwrap()],
        1e-2,
        |v| Tensor::concat(&[&v[0], &v[1]], 2),
    );
    check_gradients("index_select (repeats)", dev, vec![x.clone()], 1e-2, |v| {
        v[0].index_select(2, &[3, 0, 3, 1])
    });
    check_gradients(
        "broadcast_to",
        dev,
        vec![randn(dev, &[3, 1], 22)],
        1e-2,
        |v| v[0].broadcast_to(&[2, 3, 5]),
    );
    check_gradients("reshape", dev, vec![x], 1e-2, |v| {
        v[0].reshape(&[6, 4])?.transpose(0, 1)
    });
}
