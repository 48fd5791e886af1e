//! The backend conformance suite on the wgpu device (lavapipe on CPU-only
//! machines). Without an adapter each test says it was skipped, except in CI.

residual_conformance::conformance_tests!(residual_wgpu::test_device());
