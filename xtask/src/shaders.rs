//! `cargo xtask shaders`: parses and validates every WGSL file of the wgpu
//! backend with naga (all validation flags, the capabilities a shader
//! declares), reports errors with their source spans, lists each shader's
//! entry points, bindings and workgroup sizes, and checks the typed
//! host/shader contract (`residual_wgpu::contract`) against naga's
//! reflection: every parameter struct's size and member offsets, every
//! binding's group, number and access, every entry point's parameter block.

use residual_wgpu::contract::{Access, ShaderContract};
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

/// Parses and validates one shader: its module and naga's analysis of it.
fn parse(name: &str, source: &str) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| e.emit_to_string_with_path(source, name))?;
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities(source));
    let info = validator
        .validate(&module)
        .map_err(|e| e.emit_to_string_with_path(source, name))?;
    Ok((module, info))
}

/// Validates one shader; on success returns its listing.
pub fn validate(path: &Path, source: &str) -> Result<String, String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let (module, info) = parse(&name, source)?;
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

/// The global variable named `name`.
fn global<'m>(
    module: &'m naga::Module,
    name: &str,
) -> Option<(naga::Handle<naga::GlobalVariable>, &'m naga::GlobalVariable)> {
    module
        .global_variables
        .iter()
        .find(|(_, v)| v.name.as_deref() == Some(name))
}

/// A 4-byte scalar type as Rust names it (`u32`, `f32`, `i32`); anything
/// else as naga prints it, which no Rust field matches.
fn scalar_name(ty: &naga::TypeInner) -> String {
    match ty {
        naga::TypeInner::Scalar(naga::Scalar { kind, width: 4 }) => match kind {
            naga::ScalarKind::Uint => "u32".into(),
            naga::ScalarKind::Float => "f32".into(),
            naga::ScalarKind::Sint => "i32".into(),
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    }
}

/// How naga says a global is bound, in the contract's terms.
fn access(space: naga::AddressSpace) -> Option<Access> {
    match space {
        naga::AddressSpace::Uniform => Some(Access::Uniform),
        naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => {
            Some(Access::ReadWrite)
        }
        naga::AddressSpace::Storage { .. } => Some(Access::Read),
        _ => None,
    }
}

/// Compares one shader's contract with naga's reflection of its module:
/// every mismatch, one line each (empty when they agree).
pub fn check_contract(
    c: &ShaderContract,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
) -> Vec<String> {
    let file = format!("{}.wgsl", c.stem);
    let mut errors = Vec::new();
    for s in &c.structs {
        let found = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(s.name));
        let Some((handle, ty)) = found else {
            errors.push(format!(
                "{file}: no struct {} (the Rust side declares one)",
                s.name
            ));
            continue;
        };
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            errors.push(format!("{file}: {} is not a struct", s.name));
            continue;
        };
        if *span as usize != s.size {
            errors.push(format!(
                "{file}: struct {}: WGSL size {span} bytes, Rust size_of {} bytes",
                s.name, s.size
            ));
        }
        if span % 16 != 0 {
            errors.push(format!(
                "{file}: struct {}: {span} bytes, not a multiple of 16 (a uniform block; add _pad fields)",
                s.name
            ));
        }
        let wgsl: Vec<(&str, usize, String)> = members
            .iter()
            .map(|m| {
                let name = m.name.as_deref().unwrap_or("?");
                (
                    name,
                    m.offset as usize,
                    scalar_name(&module.types[m.ty].inner),
                )
            })
            .collect();
        let rust: Vec<(&str, usize, String)> = s
            .fields
            .iter()
            .map(|&(name, offset, ty)| (name, offset, ty.to_string()))
            .collect();
        if wgsl != rust {
            errors.push(format!(
                "{file}: struct {}: WGSL members (name, offset, type) {wgsl:?}, Rust fields {rust:?}",
                s.name
            ));
        }
        match global(module, s.global) {
            Some((_, var)) if var.ty == handle => {}
            Some(_) => errors.push(format!(
                "{file}: {} is not of type {} (the Rust side binds {} there)",
                s.global, s.name, s.name
            )),
            None => errors.push(format!("{file}: no global {} holding {}", s.global, s.name)),
        }
    }
    for b in &c.bindings {
        let Some((_, var)) = global(module, b.name) else {
            errors.push(format!(
                "{file}: no global {} (the Rust side binds it)",
                b.name
            ));
            continue;
        };
        match &var.binding {
            Some(rb) if (rb.group, rb.binding) == (b.group, b.binding) => {}
            Some(rb) => errors.push(format!(
                "{file}: {}: WGSL @group({}) @binding({}), Rust @group({}) @binding({})",
                b.name, rb.group, rb.binding, b.group, b.binding
            )),
            None => errors.push(format!("{file}: {} has no @binding", b.name)),
        }
        let got = access(var.space);
        if got != Some(b.access) {
            errors.push(format!(
                "{file}: {}: WGSL access {got:?}, Rust {:?}",
                b.name, b.access
            ));
        }
    }
    for (_, var) in module.global_variables.iter() {
        let name = var.name.as_deref().unwrap_or("?");
        if var.binding.is_some() && !c.bindings.iter().any(|b| b.name == name) {
            errors.push(format!(
                "{file}: {name} is bound in WGSL but has no Rust binding constant"
            ));
        }
    }
    for (entry, params) in &c.entries {
        let Some(i) = module.entry_points.iter().position(|e| e.name == *entry) else {
            errors.push(format!("{file}: no entry point {entry}"));
            continue;
        };
        let uses = info.get_entry_point(i);
        let uniforms: Vec<&str> = module
            .global_variables
            .iter()
            .filter(|(h, v)| v.space == naga::AddressSpace::Uniform && !uses[*h].is_empty())
            .map(|(_, v)| v.name.as_deref().unwrap_or("?"))
            .collect();
        if uniforms != [*params] {
            errors.push(format!(
                "{file}: entry point {entry} reads the uniform blocks {uniforms:?}, Rust gives it {params}"
            ));
        }
    }
    for ep in &module.entry_points {
        if !c.entries.iter().any(|(e, _)| *e == ep.name) {
            errors.push(format!("{file}: entry point {} has no Rust Entry", ep.name));
        }
    }
    errors
}

/// Checks every shader's contract (`residual_wgpu::contract::all()`)
/// against the files in `dir`: a one-line summary, or every mismatch.
pub fn check_contracts(dir: &Path) -> Result<String, String> {
    let contracts = residual_wgpu::contract::all();
    let mut errors = Vec::new();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for stem in &files {
        if !contracts.iter().any(|c| c.stem == stem) {
            errors.push(format!(
                "{stem}.wgsl: no contract in residual_wgpu::contract::all()"
            ));
        }
    }
    for c in &contracts {
        let path = dir.join(format!("{}.wgsl", c.stem));
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match parse(&format!("{}.wgsl", c.stem), &source) {
            Ok((module, info)) => errors.extend(check_contract(c, &module, &info)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(format!(
            "shader contract mismatches:\n  {}\n",
            errors.join("\n  ")
        ));
    }
    let count = |f: fn(&ShaderContract) -> usize| contracts.iter().map(f).sum::<usize>();
    Ok(format!(
        "contract: {} shaders, {} parameter structs, {} bindings, {} entry points agree with naga\n",
        contracts.len(),
        count(|c| c.structs.len()),
        count(|c| c.bindings.len()),
        count(|c| c.entries.len()),
    ))
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

    /// `fill.wgsl` as parsed by naga, and its Rust contract.
    fn fill() -> (ShaderContract, naga::Module, naga::valid::ModuleInfo) {
        let source = std::fs::read_to_string(shader_dir().join("fill.wgsl")).unwrap();
        let (module, info) = parse("fill.wgsl", &source).unwrap();
        (residual_wgpu::contract::fill::contract(), module, info)
    }

    #[test]
    fn every_shader_agrees_with_its_contract() {
        if let Err(e) = check_contracts(&shader_dir()) {
            panic!("{e}");
        }
    }

    #[test]
    fn a_wrong_struct_size_fails_the_check() {
        let (mut c, module, info) = fill();
        assert_eq!(check_contract(&c, &module, &info), Vec::<String>::new());
        c.structs[0].size = 20;
        assert_eq!(
            check_contract(&c, &module, &info),
            ["fill.wgsl: struct FillParams: WGSL size 16 bytes, Rust size_of 20 bytes"]
        );
    }

    #[test]
    fn a_wrong_field_offset_fails_the_check() {
        let (mut c, module, info) = fill();
        c.structs[0].fields.swap(0, 1);
        let errors = check_contract(&c, &module, &info);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("fill.wgsl: struct FillParams: WGSL members"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_wrong_field_type_fails_the_check() {
        let (mut c, module, info) = fill();
        c.structs[0].fields[1].2 = "u32";
        assert_eq!(
            check_contract(&c, &module, &info),
            [
                "fill.wgsl: struct FillParams: WGSL members (name, offset, type) \
                 [(\"n\", 0, \"u32\"), (\"value\", 4, \"f32\"), (\"_pad0\", 8, \"u32\"), (\"_pad1\", 12, \"u32\")], \
                 Rust fields \
                 [(\"n\", 0, \"u32\"), (\"value\", 4, \"u32\"), (\"_pad0\", 8, \"u32\"), (\"_pad1\", 12, \"u32\")]"
            ]
        );
    }

    #[test]
    fn a_wrong_binding_number_fails_the_check() {
        let (mut c, module, info) = fill();
        c.bindings[1].binding = 2;
        assert_eq!(
            check_contract(&c, &module, &info),
            ["fill.wgsl: out: WGSL @group(0) @binding(1), Rust @group(0) @binding(2)"]
        );
    }

    #[test]
    fn a_wrong_access_fails_the_check() {
        let (mut c, module, info) = fill();
        c.bindings[1].access = Access::Read;
        assert_eq!(
            check_contract(&c, &module, &info),
            ["fill.wgsl: out: WGSL access Some(ReadWrite), Rust Read"]
        );
    }

    #[test]
    fn a_binding_missing_on_either_side_fails_the_check() {
        let (mut c, module, info) = fill();
        c.bindings[1].name = "output";
        assert_eq!(
            check_contract(&c, &module, &info),
            [
                "fill.wgsl: no global output (the Rust side binds it)",
                "fill.wgsl: out is bound in WGSL but has no Rust binding constant",
            ]
        );
    }

    #[test]
    fn an_entry_point_without_its_parameters_fails_the_check() {
        let (mut c, module, info) = fill();
        c.entries[0].1 = "out";
        c.entries.push(("fill_twice", "params"));
        assert_eq!(
            check_contract(&c, &module, &info),
            [
                "fill.wgsl: entry point fill reads the uniform blocks [\"params\"], Rust gives it out",
                "fill.wgsl: no entry point fill_twice",
            ]
        );
    }

    #[test]
    fn a_shader_edited_without_its_contract_fails_the_check() {
        let source = std::fs::read_to_string(shader_dir().join("fill.wgsl")).unwrap();
        let edited = source.replace("    _pad1: u32,\n", "").replace(
            "@binding(1) var<storage, read_write> out",
            "@binding(3) var<storage, read_write> out",
        );
        assert_ne!(edited, source);
        let (module, info) = parse("fill.wgsl", &edited).unwrap();
        let errors = check_contract(&residual_wgpu::contract::fill::contract(), &module, &info);
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].contains("WGSL size 12 bytes, Rust size_of 16 bytes"),
            "{errors:?}"
        );
        assert!(errors[1].contains("not a multiple of 16"), "{errors:?}");
        assert!(errors[2].contains("WGSL members"), "{errors:?}");
        assert!(
            errors[3].contains("WGSL @group(0) @binding(3), Rust @group(0) @binding(1)"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_broken_shader_is_reported_with_its_span() {
        let err = validate(Path::new("broken.wgsl"), "fn f() -> u32 { return 1.5; }").unwrap_err();
        assert!(err.contains("broken.wgsl:1:"), "{err}");
    }
}
