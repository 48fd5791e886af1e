//! The backend conformance suite on the CPU device.

residual_conformance::conformance_tests!(Some(residual_tensor::Device::cpu()));
