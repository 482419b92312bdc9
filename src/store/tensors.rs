//! Reading and writing named tensors as safetensors, with validation: a missing,
//! truncated or corrupt file, an unsupported dtype, or a NaN/Inf value is an error that
//! names the file (and the tensor).

use super::atomic;
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

/// Checks that every value of `t` is finite; the error names `file` and `name`.
pub fn check_finite(file: &Path, name: &str, t: &Tensor) -> Result<()> {
    let flat = t.flatten_all()?.to_dtype(DType::F64)?;
    let bad = flat.to_vec1::<f64>()?.iter().position(|v| !v.is_finite());
    if let Some(i) = bad {
        return Err(Error::checkpoint(
            file,
            format!("tensor {name} holds a non-finite value (NaN or Inf) at flat index {i}"),
        ));
    }
    Ok(())
}

/// Reads every tensor of a safetensors file as F32 on `device`, rejecting unreadable or
/// corrupt files, dtypes other than floating point, and non-finite values.
pub fn load_safetensors(path: &Path, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::checkpoint(
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        use safetensors::Dtype as D;
        if !matches!(view.dtype(), D::F32 | D::F64 | D::F16 | D::BF16) {
            return Err(Error::checkpoint(
                path,
                format!(
                    "tensor {name} has dtype {:?}; expected a floating-point dtype (F32)",
                    view.dtype()
                ),
            ));
        }
        let t = candle_core::safetensors::Load::load(&view, device)
            .map_err(|e| Error::checkpoint(path, format!("tensor {name}: {e}")))?
            .to_dtype(DType::F32)?;
        check_finite(path, &name, &t)?;
        out.insert(name, t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
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
        let err = load_safetensors(&dir.path().join("missing.safetensors"), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.safetensors"), "{err}");
        Ok(())
    }
}
