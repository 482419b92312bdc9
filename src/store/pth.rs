//! PyTorch state dicts (`torch.save(model.state_dict(), "x.pth")`) for the built-in
//! architectures, read with candle's pickle reader. PyTorch's `num_batches_tracked`
//! counters are dropped (latentflow keeps no such buffer); everything else must match the
//! tensor names of docs/checkpoint-format.md.

use super::tensors::check_finite;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads a PyTorch state dict (optionally nested under a `state_dict` key) as F32
/// tensors on `device`.
pub fn load_pth(path: &Path, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    if !path.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let read = |key| candle_core::pickle::read_all_with_key(path, key);
    let entries = match read(None) {
        Ok(e) if !e.is_empty() => e,
        _ => read(Some("state_dict")).map_err(|e| {
            Error::checkpoint(path, format!("not a readable PyTorch state dict: {e}"))
        })?,
    };
    let mut out = BTreeMap::new();
    for (name, t) in entries {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
        let t = t.to_device(device)?.to_dtype(DType::F32)?;
        check_finite(path, &name, &t)?;
        out.insert(name, t);
    }
    if out.is_empty() {
        return Err(Error::checkpoint(path, "the state dict holds no tensors"));
    }
    Ok(out)
}
