//! Reading and writing named tensors as safetensors, with validation: a missing,
//! truncated or corrupt file, an unsupported dtype, or a NaN/Inf value is an error that
//! names the file (and the tensor).

use crate::files::{atomic, input};
use crate::limits::{self, MAX_RANK, MAX_TENSORS};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// Writes `tensors` to `path` atomically (F32, little-endian, sorted names).
pub fn save_safetensors(path: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        owned.push((
            name.as_str(),
            t.to_dtype(DType::F32)?
                .to_device(&Device::Cpu)?
                .contiguous()?,
        ));
    }
    let bytes = safetensors::tensor::serialize(owned.iter().map(|(n, t)| (*n, t)), None)
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise tensors: {e}")))?;
    atomic::write(path, &bytes)
}

fn non_finite(file: &Path, name: &str, index: usize) -> Error {
    Error::checkpoint(
        file,
        format!("tensor {name} holds a non-finite value (NaN or Inf) at flat index {index}"),
    )
}

/// The index of the first non-finite value in the little-endian bytes of a floating-point
/// tensor (checked on the bits: all exponent bits set), without converting anything.
pub(crate) fn first_non_finite(dtype: DType, data: &[u8]) -> Option<usize> {
    use DType as D;
    match dtype {
        D::F32 => data.chunks_exact(4).position(|b| {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x7F80_0000 == 0x7F80_0000
        }),
        D::F64 => data.chunks_exact(8).position(|b| {
            let bits = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            bits & 0x7FF0_0000_0000_0000 == 0x7FF0_0000_0000_0000
        }),
        D::F16 => data
            .chunks_exact(2)
            .position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7C00 == 0x7C00),
        D::BF16 => data
            .chunks_exact(2)
            .position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7F80 == 0x7F80),
        _ => None,
    }
}

/// The dtype names a manifest may list (safetensors' names): the floating-point ones.
pub const FLOAT_DTYPES: [&str; 4] = ["F32", "F64", "F16", "BF16"];

/// Tensors read from a weights file, with the dtype each was stored in.
#[derive(Debug, Default)]
pub struct ReadTensors {
    /// The tensors, as F32.
    pub tensors: BTreeMap<String, Tensor>,
    /// The stored dtype of each (safetensors' names: "F32", "F16", ...).
    pub dtypes: BTreeMap<String, String>,
}

/// Reads every tensor of a safetensors file as F32 on `device`, rejecting unreadable or
/// corrupt files, files larger than the memory budget allows, more than [`MAX_TENSORS`]
/// tensors or [`MAX_RANK`] dimensions, dtypes other than floating point, and non-finite
/// values.
pub fn read_safetensors(path: &Path, device: &Device) -> Result<ReadTensors> {
    parse_safetensors(path, &read_bytes(path)?, device)
}

/// The bytes of the weights file at `path` (a regular file small enough that it and the
/// F32 tensors made from it fit the memory budget).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let (file, size) = input::open_regular(path, u64::MAX, "weights file")?;
    // The file's bytes plus the F32 tensors made from them (twice the bytes for F16).
    limits::check_memory(
        &format!("loading {}", path.display()),
        size.saturating_mul(3),
    )?;
    input::read_limited(file, size, path, "weights file", size)
}

/// [`read_safetensors`] of bytes already read from `path`.
pub fn parse_safetensors(path: &Path, bytes: &[u8], device: &Device) -> Result<ReadTensors> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        Error::checkpoint(
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let views = st.tensors();
    if views.len() > MAX_TENSORS {
        return Err(Error::Limit(format!(
            "{}: {} tensors, above the limit of {MAX_TENSORS}",
            path.display(),
            views.len()
        )));
    }
    let mut out = ReadTensors::default();
    for (name, view) in views {
        let dtype = format!("{:?}", view.dtype());
        if !FLOAT_DTYPES.contains(&dtype.as_str()) {
            return Err(Error::checkpoint(
                path,
                format!("tensor {name} has dtype {dtype}; expected a floating-point dtype (F32)"),
            ));
        }
        if view.shape().len() > MAX_RANK {
            return Err(Error::Limit(format!(
                "{}: tensor {name} has {} dimensions, above the limit of {MAX_RANK}",
                path.display(),
                view.shape().len()
            )));
        }
        let candle_dtype = match view.dtype() {
            safetensors::Dtype::F64 => DType::F64,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            _ => DType::F32,
        };
        if let Some(i) = first_non_finite(candle_dtype, view.data()) {
            return Err(non_finite(path, &name, i));
        }
        let t = candle_core::safetensors::Load::load(&view, device)
            .map_err(|e| Error::checkpoint(path, format!("tensor {name}: {e}")))?
            .to_dtype(DType::F32)?;
        out.dtypes.insert(name.clone(), dtype);
        out.tensors.insert(name, t);
    }
    Ok(out)
}

/// A digest of named tensors (64-bit FNV-1a over each name, shape and F32 value in name
/// order), written `fnv1a64:` and 16 hex digits. It identifies a set of weights whatever
/// file format carried them; potentials record their generator's.
pub fn digest(tensors: &BTreeMap<String, Tensor>) -> Result<String> {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    for (name, t) in tensors {
        eat(name.as_bytes());
        eat(&[0]);
        for &d in t.dims() {
            eat(&(d as u64).to_le_bytes());
        }
        for v in t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()? {
            eat(&v.to_le_bytes());
        }
    }
    Ok(format!("fnv1a64:{h:016x}"))
}

/// [`read_safetensors`] without the dtypes.
pub fn load_safetensors(path: &Path, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    Ok(read_safetensors(path, device)?.tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn digests_tell_weights_apart() -> Result<()> {
        let mut a = BTreeMap::new();
        a.insert("w".to_string(), Tensor::new(&[1f32, 2.], &Device::Cpu)?);
        let d = digest(&a)?;
        assert!(d.starts_with("fnv1a64:") && d.len() == 8 + 16, "{d}");
        assert_eq!(d, digest(&a.clone())?);
        let mut b = a.clone();
        b.insert("w".to_string(), Tensor::new(&[1f32, 2.5], &Device::Cpu)?);
        assert_ne!(d, digest(&b)?);
        let mut c = BTreeMap::new();
        c.insert("v".to_string(), Tensor::new(&[1f32, 2.], &Device::Cpu)?);
        assert_ne!(d, digest(&c)?);
        Ok(())
    }

    #[test]
    fn roundtrip_preserves_names_shapes_and_values() -> Result<()> {
        let dir = tmp();
        let path = dir.path().join("w.safetensors");
        let mut m = BTreeMap::new();
        m.insert(
            "a.weight".to_string(),
            Tensor::arange(0f32, 6., &Device::Cpu)?.reshape((2, 3))?,
        );
        save_safetensors(&path, &m)?;
        let back = load_safetensors(&path, &Device::Cpu)?;
        assert_eq!(back["a.weight"].dims(), &[2, 3]);
        assert_eq!(
            back["a.weight"].to_vec2::<f32>()?,
            m["a.weight"].to_vec2::<f32>()?
        );
        Ok(())
    }

    #[test]
    fn nan_truncation_and_garbage_are_rejected_with_names() -> Result<()> {
        let dir = tmp();
        let path = dir.path().join("w.safetensors");
        let mut m = BTreeMap::new();
        m.insert("ok".to_string(), Tensor::ones(3, DType::F32, &Device::Cpu)?);
        m.insert(
            "bad".to_string(),
            Tensor::new(&[1f32, f32::NAN], &Device::Cpu)?,
        );
        save_safetensors(&path, &m)?;
        let err = load_safetensors(&path, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tensor bad") && err.contains("w.safetensors"),
            "{err}"
        );

        m.remove("bad");
        save_safetensors(&path, &m)?;
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let err = load_safetensors(&path, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated or corrupt"), "{err}");

        std::fs::write(&path, b"hello").unwrap();
        assert!(load_safetensors(&path, &Device::Cpu).is_err());

        // Non-finite values are found in every stored dtype, without conversion.
        for (dtype, bytes) in [
            (DType::F32, f32::INFINITY.to_le_bytes().to_vec()),
            (DType::F64, f64::NAN.to_le_bytes().to_vec()),
            (DType::F16, 0x7C00u16.to_le_bytes().to_vec()),
            (DType::BF16, 0xFFC0u16.to_le_bytes().to_vec()),
        ] {
            let mut data = vec![0u8; bytes.len()];
            data.extend_from_slice(&bytes);
            assert_eq!(first_non_finite(dtype, &data), Some(1), "{dtype:?}");
            assert_eq!(first_non_finite(dtype, &data[..bytes.len()]), None);
        }
        let err = load_safetensors(&dir.path().join("missing.safetensors"), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.safetensors"), "{err}");
        Ok(())
    }
}
