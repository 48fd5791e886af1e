//! The backend conformance suite on the CPU device.

residual_tensor::conformance_tests!(Some(residual_tensor::Device::cpu()));
