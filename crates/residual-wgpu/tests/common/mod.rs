//! What the whole-model wgpu tests share.

/// Asserts `max |got - want| <= tol * max |want|` (relative to the tensor's scale).
pub fn assert_rel(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(
            0.0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        );
    assert!(
        worst <= tol * scale,
        "{what}: max |diff| {worst:e} exceeds {tol:e} x max |ref| {scale:e}"
    );
}
