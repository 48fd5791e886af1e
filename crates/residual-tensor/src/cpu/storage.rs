//! The CPU backend's storage ([`CpuStorage`]: a `Vec` per dtype) and the
//! element types its kernels read and write ([`Float`]).

use crate::backend::{BackendStorage, Storage};
use crate::{DType, Error, Result};
use half::{bf16, f16};
use std::any::Any;
use std::sync::Arc;

/// Host storage of the CPU backend.
#[derive(Debug)]
pub enum CpuStorage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
}

impl BackendStorage for CpuStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
        }
    }
    fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
        }
    }
}

/// An element type of CPU storage that kernels computing in f32 read and write.
pub(crate) trait Float: Copy + Send + Sync + 'static {
    /// The value as f32 (exact).
    fn to_f32(self) -> f32;
    /// `v` rounded to this type (to nearest even).
    fn from_f32(v: f32) -> Self;
    /// A vector of this type as storage.
    fn into_storage(v: Vec<Self>) -> Storage;
}

impl Float for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    fn into_storage(v: Vec<Self>) -> Storage {
        Arc::new(CpuStorage::F32(v))
    }
}

/// [`Float`] for a `half` type stored in the CPU storage variant `$variant`.
macro_rules! half_float {
    ($t:ty, $variant:ident) => {
        impl Float for $t {
            #[inline(always)]
            fn to_f32(self) -> f32 {
                <$t>::to_f32(self)
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                <$t>::from_f32(v)
            }
            fn into_storage(v: Vec<Self>) -> Storage {
                Arc::new(CpuStorage::$variant(v))
            }
        }
    };
}
half_float!(f16, F16);

impl Float for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        bf16::from_bits(bf16_bits(v))
    }
    fn into_storage(v: Vec<Self>) -> Storage {
        Arc::new(CpuStorage::BF16(v))
    }
}

/// The bits of `v` rounded to bf16, to nearest even, as `half::bf16::from_f32`
/// rounds it (a NaN stays a NaN of the same sign, made quiet), but without
/// branches: `half`'s early return for NaN keeps the compiler from
/// vectorising a loop of conversions, and the rounding of every GEMM result
/// and every cast under mixed precision goes through here.
#[inline(always)]
pub(crate) fn bf16_bits(v: f32) -> u16 {
    let x = v.to_bits();
    // Adding 0x7fff plus the lowest kept bit carries into the kept bits
    // exactly when the dropped half is above one half, or equal to it with
    // an odd kept part.
    let rounded = x.wrapping_add(0x7fff + ((x >> 16) & 1)) >> 16;
    let quiet_nan = (x >> 16) | 0x40;
    let is_nan = x & 0x7fff_ffff > 0x7f80_0000;
    (if is_nan { quiet_nan } else { rounded }) as u16
}

/// Evaluates `$body` with `$x` bound to the elements of the `&CpuStorage`
/// `$s`, whichever float type it holds: one generic kernel call (over
/// [`Float`]) instead of a `match` arm per dtype at each call site.
macro_rules! on_float_slice {
    ($s:expr, $x:ident => $body:expr) => {
        match $s {
            $crate::cpu::CpuStorage::F32($x) => $body,
            $crate::cpu::CpuStorage::BF16($x) => $body,
            $crate::cpu::CpuStorage::F16($x) => $body,
        }
    };
}
pub(crate) use on_float_slice;

/// Evaluates `$body` with `$a` and `$b` bound to the elements of two
/// `&CpuStorage` of one float type; storage of two types is an
/// [`crate::Error::DType`] for op `$op`, naming `$b`'s type as the wrong one.
macro_rules! on_float_pair {
    ($op:expr, $sa:expr, $sb:expr, ($a:ident, $b:ident) => $body:expr) => {
        match ($sa, $sb) {
            ($crate::cpu::CpuStorage::F32($a), $crate::cpu::CpuStorage::F32($b)) => Ok($body),
            ($crate::cpu::CpuStorage::BF16($a), $crate::cpu::CpuStorage::BF16($b)) => Ok($body),
            ($crate::cpu::CpuStorage::F16($a), $crate::cpu::CpuStorage::F16($b)) => Ok($body),
            (a, b) => Err($crate::Error::DType {
                op: $op,
                got: b.dtype(),
                expected: format!("{}, the dtype of the first operand", a.dtype()),
            }),
        }
    };
}
pub(crate) use on_float_pair;

/// The CPU storage behind `s`; an error for another backend's storage.
pub(crate) fn host(s: &Storage) -> Result<&CpuStorage> {
    s.as_any()
        .downcast_ref::<CpuStorage>()
        .ok_or_else(|| Error::Backend {
            backend: "cpu".into(),
            msg: format!("storage {s:?} belongs to another backend"),
        })
}

/// The f32 slice of a CPU storage; an error for another backend's or dtype's storage.
pub(crate) fn f32s(s: &Storage) -> Result<&[f32]> {
    match host(s)? {
        CpuStorage::F32(v) => Ok(v),
        other => Err(Error::DType {
            op: "cpu kernel",
            got: other.dtype(),
            expected: "f32".into(),
        }),
    }
}

/// The f32 elements of a CPU storage to write in place, when `s` is the only
/// handle to it (no tensor holds it); `None` otherwise, or for another
/// backend's or dtype's storage.
pub(crate) fn sole_f32s(s: &mut Storage) -> Option<&mut [f32]> {
    let any: &mut dyn std::any::Any = Arc::get_mut(s)?;
    match any.downcast_mut::<CpuStorage>()? {
        CpuStorage::F32(v) => Some(v),
        _ => None,
    }
}

/// Wraps a result vector as storage.
pub(crate) fn store(v: Vec<f32>) -> Storage {
    Arc::new(CpuStorage::F32(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branch-free rounding gives `half`'s bits for every sign and
    /// exponent, with the dropped half of the mantissa at and around each
    /// rounding boundary (below, at and above one half, with even and odd
    /// kept parts), and for NaNs, infinities, zeros and subnormals.
    #[test]
    fn bf16_rounding_matches_half_at_every_boundary() {
        let lows = [0u32, 1, 0x7fff, 0x8000, 0x8001, 0xffff, 0x1234, 0xc000];
        let mut checked = 0;
        for sign in [0u32, 1 << 31] {
            for exp in 0..=0xffu32 {
                for kept in [0u32, 1, 2, 0x3f, 0x40, 0x41, 0x7e, 0x7f] {
                    for low in lows {
                        let x = sign | exp << 23 | kept << 16 | low;
                        let v = f32::from_bits(x);
                        assert_eq!(bf16_bits(v), bf16::from_f32(v).to_bits(), "bits {x:#010x}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 256 * 8 * 8);
    }
}
