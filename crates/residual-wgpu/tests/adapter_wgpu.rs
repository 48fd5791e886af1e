//! Adapter selection by environment variable (its own test binary: it sets
//! WGPU_ADAPTER_NAME for the process).

use residual_wgpu::Context;

#[test]
fn an_unknown_adapter_name_is_an_error_listing_the_adapters() {
    if residual_wgpu::test_device().is_none() {
        return;
    }
    std::env::set_var("WGPU_ADAPTER_NAME", "no-such-adapter-xyz");
    let err = Context::new().unwrap_err().to_string();
    std::env::remove_var("WGPU_ADAPTER_NAME");
    assert!(
        err.contains("WGPU_ADAPTER_NAME=no-such-adapter-xyz") && err.contains("adapters found"),
        "{err}"
    );
}
