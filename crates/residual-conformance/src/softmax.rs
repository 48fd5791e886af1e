//! Softmax, log-softmax and the cross-entropy loss.

use crate::assert::{assert_close, check_gradients};
use crate::fixtures::{check, fixture, load, BWD, FWD};
use crate::inputs::randn;
use residual_tensor::Device;

/// Softmax, log-softmax and cross-entropy backward against finite differences.
pub fn softmax_cross_entropy_finite_differences(dev: &Device) {
    let x = randn(dev, &[3, 4, 2], 36);
    check_gradients("softmax axis 1", dev, vec![x.clone()], 1e-2, |v| {
        v[0].softmax(1)
    });
    check_gradients("log_softmax axis -1", dev, vec![x.clone()], 1e-2, |v| {
        v[0].log_softmax(-1)
    });
    let logits = randn(dev, &[4, 5], 37);
    check_gradients("cross_entropy", dev, vec![logits.clone()], 1e-2, |v| {
        v[0].cross_entropy(&[1, 0, 4, 2], 0.0)
    });
    check_gradients("cross_entropy smoothed", dev, vec![logits], 1e-2, |v| {
        v[0].cross_entropy(&[3, 3, 0, 1], 0.2)
    });
}

/// Cross-entropy with and without label smoothing.
pub fn torch_cross_entropy(dev: &Device) {
    for case in ["plain", "smooth"] {
        let p = |n: &str| format!("cross_entropy.{case}.{n}");
        let logits = load(dev, &p("logits")).requires_grad_();
        let targets: Vec<usize> = fixture(&p("targets"))
            .0
            .iter()
            .map(|&v| v as usize)
            .collect();
        let eps = fixture(&p("smoothing")).0[0];
        let loss = logits.cross_entropy(&targets, eps).unwrap();
        assert_close(
            &p("loss"),
            &loss.to_vec().unwrap(),
            &fixture(&p("loss")).0,
            FWD,
        );
        let g = loss.backward().unwrap();
        check(&p("dlogits"), g.get(&logits).unwrap(), &p("dlogits"), BWD);
    }
}
