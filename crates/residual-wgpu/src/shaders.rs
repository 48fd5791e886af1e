//! The WGSL sources of every kernel, compiled into the crate. `cargo xtask
//! shaders` validates the same files with naga.

/// `(file stem, source)` of every shader in `crates/residual-wgpu/shaders/`.
pub const SHADERS: &[(&str, &str)] = &[
    ("cast", include_str!("../shaders/cast.wgsl")),
    ("elementwise", include_str!("../shaders/elementwise.wgsl")),
    ("fill", include_str!("../shaders/fill.wgsl")),
    ("gemm", include_str!("../shaders/gemm.wgsl")),
    ("layout", include_str!("../shaders/layout.wgsl")),
    ("norm", include_str!("../shaders/norm.wgsl")),
    ("optim", include_str!("../shaders/optim.wgsl")),
    ("pool", include_str!("../shaders/pool.wgsl")),
    ("reduce", include_str!("../shaders/reduce.wgsl")),
    ("softmax", include_str!("../shaders/softmax.wgsl")),
];

/// The source of the shader named `stem`.
pub fn source(stem: &str) -> Option<&'static str> {
    SHADERS
        .iter()
        .find(|(s, _)| *s == stem)
        .map(|(_, src)| *src)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shader_file_is_compiled_in() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "wgsl")
                    .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
            })
            .collect();
        files.sort();
        let listed: Vec<String> = super::SHADERS.iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(files, listed, "shaders/ and SHADERS differ");
    }
}
