//! Scaled dot-product attention, `matmul_nt` (the right operand read
//! transposed) and constant padding: forward against host references,
//! backward against finite differences.

use crate::assert::{assert_close, check_gradients};
use crate::inputs::randn;
use residual_tensor::{Device, Tensor};

/// Attention on the host in f64: `q: [b, tq, d]`, `k: [b, tk, d]`, `v: [b, tk, dv]`.
fn host_attention(q: &[f32], k: &[f32], v: &[f32], dims: [usize; 5], scale: f64) -> Vec<f32> {
    let [b, tq, tk, d, dv] = dims;
    let mut out = vec![0.0; b * tq * dv];
    for n in 0..b {
        for i in 0..tq {
            let s: Vec<f64> = (0..tk)
                .map(|j| {
                    scale
                        * (0..d)
                            .map(|p| {
                                q[(n * tq + i) * d + p] as f64 * k[(n * tk + j) * d + p] as f64
                            })
                            .sum::<f64>()
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..dv {
                out[(n * tq + i) * dv + c] = (0..tk)
                    .map(|j| e[j] / z * v[(n * tk + j) * dv + c] as f64)
                    .sum::<f64>() as f32;
            }
        }
    }
    out
}

/// Attention on `[batch, heads, tokens, head_dim]` with odd sizes and
/// `tq != tk`, `d != dv`, against the host reference.
pub fn attention_forward(dev: &Device) {
    let (b, h, tq, tk, d, dv) = (2, 3, 5, 7, 4, 3);
    let q = randn(dev, &[b, h, tq, d], 61);
    let k = randn(dev, &[b, h, tk, d], 62);
    let v = randn(dev, &[b, h, tk, dv], 63);
    let scale = (d as f32).powf(-0.5);
    let y = q.scaled_dot_product_attention(&k, &v, scale).unwrap();
    assert_eq!(y.dims(), [b, h, tq, dv]);
    let want = host_attention(
        &q.to_vec().unwrap(),
        &k.to_vec().unwrap(),
        &v.to_vec().unwrap(),
        [b * h, tq, tk, d, dv],
        scale as f64,
    );
    assert_close("attention", &y.to_vec().unwrap(), &want, 1e-5);
    // Mismatched shapes are refused with the three shapes named.
    let e = q
        .scaled_dot_product_attention(&v, &v, scale)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 3, 7, 3]"), "{e}");
}

/// Attention backward: gradients of q, k and v against finite differences.
pub fn attention_backward(dev: &Device) {
    let q = randn(dev, &[2, 2, 3, 4], 64);
    let k = randn(dev, &[2, 2, 5, 4], 65);
    let v = randn(dev, &[2, 2, 5, 3], 66);
    check_gradients("attention", dev, vec![q, k, v], 1e-2, |x| {
        x[0].scaled_dot_product_attention(&x[1], &x[2], 0.5)
    });
}

/// `a @ b^T` with `b` stored `[..., n, k]`: against `matmul` of a transposed
/// copy, forward and backward, with a batched and a shared right operand and
/// a shared left one.
pub fn matmul_nt_forward_backward(dev: &Device) {
    let a = randn(dev, &[2, 3, 5], 67);
    for (what, b) in [
        ("batched", randn(dev, &[2, 4, 5], 68)),
        ("shared", randn(dev, &[4, 5], 69)),
    ] {
        let want = a.matmul(&b.transpose(-2, -1).unwrap()).unwrap();
        let got = a.matmul_nt(&b).unwrap();
        assert_eq!(got.dims(), [2, 3, 4], "{what}");
        assert_close(
            &format!("matmul_nt {what}"),
            &got.to_vec().unwrap(),
            &want.to_vec().unwrap(),
            1e-6,
        );
        check_gradients(
            &format!("matmul_nt {what}"),
            dev,
            vec![a.clone(), b],
            1e-2,
            |x| x[0].matmul_nt(&x[1]),
        );
    }
    // A shared left operand: [3, 5] @ ([2, 4, 5])^T -> [2, 3, 4].
    let a1 = randn(dev, &[3, 5], 76);
    let b2 = randn(dev, &[2, 4, 5], 77);
    let want = a1.matmul(&b2.transpose(-2, -1).unwrap()).unwrap();
    let got = a1.matmul_nt(&b2).unwrap();
    assert_eq!(got.dims(), [2, 3, 4]);
    assert_close(
        "matmul_nt shared lhs",
        &got.to_vec().unwrap(),
        &want.to_vec().unwrap(),
        1e-6,
    );
    check_gradients("matmul_nt shared lhs", dev, vec![a1, b2], 1e-2, |x| {
        x[0].matmul_nt(&x[1])
    });
    let e = a
        .matmul_nt(&randn(dev, &[2, 4, 6], 70))
        .unwrap_err()
        .to_string();
    assert!(e.contains("5 vs 6"), "{e}");
}

/// Constant padding: values, shape and the gradient of the padded tensor.
pub fn pad_forward_backward(dev: &Device) {
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3], dev).unwrap();
    let y = x.pad(1, 1, 2, -7.0).unwrap();
    assert_eq!(y.dims(), [2, 6]);
    assert_eq!(
        y.to_vec().unwrap(),
        [-7.0, 1.0, 2.0, 3.0, -7.0, -7.0, -7.0, 4.0, 5.0, 6.0, -7.0, -7.0]
    );
    let y = x.pad(0, 0, 1, f32::NEG_INFINITY).unwrap();
    assert_eq!(y.dims(), [3, 3]);
    assert!(y.to_vec().unwrap()[6..]
        .iter()
        .all(|v| *v == f32::NEG_INFINITY));
    let x = randn(dev, &[2, 3, 4, 5], 71);
    check_gradients("pad", dev, vec![x], 1e-2, |v| {
        v[0].pad(2, 0, 1, 0.0)?.pad(3, 2, 1, 0.5)
    });
}

/// The backend's attention kernels (fused on the CPU) against their
/// composition from the GEMM and softmax kernels
/// (`Backend::attention_composed`): outputs and the three gradients, with
/// more query rows than one fused block (the CPU's blocks hold 64 query
/// rows when there are over 1024 keys) and `tq != tk`.
pub fn attention_kernels_match_composition(dev: &Device) {
    use residual_tensor::backend::AttentionSpec;
    let s = AttentionSpec {
        batch: 3,
        tq: 70,
        tk: 1100,
        d: 8,
        dv: 5,
        scale: 0.4,
    };
    let q = randn(dev, &[s.batch, s.tq, s.d], 72);
    let k = randn(dev, &[s.batch, s.tk, s.d], 73);
    let v = randn(dev, &[s.batch, s.tk, s.dv], 74);
    let d_o = randn(dev, &[s.batch, s.tq, s.dv], 75);
    let be = dev.backend();
    let host = |st: &residual_tensor::Storage, shape: &[usize]| {
        Tensor::from_storage(st.clone(), residual_tensor::Shape::new(shape.to_vec()), dev)
            .unwrap()
            .to_vec()
            .unwrap()
    };
    let (o, saved) = be
        .attention(q.storage(), k.storage(), v.storage(), s)
        .unwrap();
    let (o_ref, p) = be
        .attention_composed(q.storage(), k.storage(), v.storage(), s)
        .unwrap();
    let oshape = [s.batch, s.tq, s.dv];
    assert_close(
        "attention kernel vs composition",
        &host(&o, &oshape),
        &host(&o_ref, &oshape),
        1e-5,
    );
    let got = be
        .attention_backward(
            q.storage(),
            k.storage(),
            v.storage(),
            &o,
            &saved,
            d_o.storage(),
            s,
        )
        .unwrap();
    let want = be
        .attention_backward_composed(q.storage(), k.storage(), v.storage(), &p, d_o.storage(), s)
        .unwrap();
    for (i, (what, shape)) in [
        ("dq", [s.batch, s.tq, s.d]),
        ("dk", [s.batch, s.tk, s.d]),
        ("dv", [s.batch, s.tk, s.dv]),
    ]
    .into_iter()
    .enumerate()
    {
        assert_close(
            &format!("attention backward {what} vs composition"),
            &host(&got[i], &shape),
            &host(&want[i], &shape),
            1e-5,
        );
    }
}
