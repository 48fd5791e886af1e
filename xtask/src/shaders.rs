//! `cargo xtask shaders`: parses and validates every WGSL file of the wgpu
//! backend with naga (all validation flags, the capabilities a shader
//! declares), reports errors with their source spans, and lists each
//! shader's entry points, bindings and workgroup sizes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The directory holding the backend's shaders.
pub fn shader_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/residual-wgpu/shaders")
}

/// Capabilities a shader declares: `enable f16;` asks for 16-bit floats.
fn capabilities(source: &str) -> naga::valid::Capabilities {
    let mut caps = naga::valid::Capabilities::empty();
    if source
        .lines()
        .any(|l| l.trim_start().starts_with("enable f16"))
    {
        caps |= naga::valid::Capabilities::SHADER_FLOAT16;
    }
    caps
}

/// Validates one shader; on success returns its listing.
pub fn validate(path: &Path, source: &str) -> Result<String, String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| e.emit_to_string_with_path(source, &name))?;
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities(source));
    let info = validator
        .validate(&module)
        .map_err(|e| e.emit_to_string_with_path(source, &name))?;
    let mut out = String::new();
    writeln!(out, "{name}").unwrap();
    for (handle, o) in module.overrides.iter() {
        let _ = handle;
        writeln!(out, "  override {}", o.name.as_deref().unwrap_or("?")).unwrap();
    }
    for (i, ep) in module.entry_points.iter().enumerate() {
        let [x, y, z] = ep.workgroup_size;
        writeln!(
            out,
            "  {:?} {} @workgroup_size({x}, {y}, {z})",
            ep.stage, ep.name
        )
        .unwrap();
        let uses = info.get_entry_point(i);
        let mut bindings: Vec<(u32, u32, String)> = module
            .global_variables
            .iter()
            .filter(|(h, _)| !uses[*h].is_empty())
            .filter_map(|(_, var)| {
                let b = var.binding.as_ref()?;
                let space = match var.space {
                    naga::AddressSpace::Storage { access } => {
                        if access.contains(naga::StorageAccess::STORE) {
                            "storage, read_write"
                        } else {
                            "storage, read"
                        }
                    }
                    naga::AddressSpace::Uniform => "uniform",
                    _ => "other",
                };
                Some((
                    b.group,
                    b.binding,
                    format!("{} <{space}>", var.name.as_deref().unwrap_or("?")),
                ))
            })
            .collect();
        bindings.sort();
        for (g, b, desc) in bindings {
            writeln!(out, "    @group({g}) @binding({b}) {desc}").unwrap();
        }
    }
    Ok(out)
}

/// Validates every `.wgsl` file in `dir`, sorted by name: the listing, or
/// every error found.
pub fn validate_all(dir: &Path) -> Result<String, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .wgsl files in {}", dir.display()));
    }
    let (mut listing, mut errors) = (String::new(), String::new());
    for path in &files {
        let source =
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        match validate(path, &source) {
            Ok(l) => listing.push_str(&l),
            Err(e) => errors.push_str(&e),
        }
    }
    if errors.is_empty() {
        Ok(listing)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shader_validates_and_matches_the_listing() {
        match validate_all(&shader_dir()) {
            Ok(listing) => insta::assert_snapshot!("shader_listing", listing),
            Err(e) => panic!("shader validation failed:\n{e}"),
        }
    }

    #[test]
    fn a_broken_shader_is_reported_with_its_span() {
        let err = validate(Path::new("broken.wgsl"), "fn f() -> u32 { return 1.5; }").unwrap_err();
        assert!(err.contains("broken.wgsl:1:"), "{err}");
    }
}
