//! PyTorch state dicts (`torch.save(model.state_dict(), "x.pth")`) for the built-in
//! architectures. The file is a zip archive holding a pickle (`*/data.pkl`) that names each
//! tensor's storage (`*/data/KEY`), dtype, offset, shape and strides; the pickle is read by
//! latentflow's own bounded reader ([`super::pickle`]), never executed, and every storage
//! read is checked against the archive before any memory is taken for it.
//!
//! PyTorch's `num_batches_tracked` counters are dropped (latentflow keeps no such buffer)
//! and a `module.` prefix (DataParallel) is removed; everything else must match the tensor
//! names of docs/checkpoint-format.md. A dict holding the state dict under `state_dict`
//! (a training checkpoint) is read too.

use super::pickle::{self, Arena, Node};
use super::tensors::{ReadTensors, first_non_finite};
use crate::files::input;
use crate::limits::{self, MAX_PICKLE_BYTES, MAX_RANK, MAX_TENSORS};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::io::Read;
use std::path::Path;

/// Where one tensor's values are.
#[derive(Debug, Clone, PartialEq)]
struct TensorSpec {
    name: String,
    dtype: DType,
    /// The storage's entry name below `PREFIX/data/`.
    key: String,
    /// Elements the storage holds, as the pickle declares.
    storage_numel: u64,
    /// Offset into the storage, in elements.
    offset: u64,
    shape: Vec<usize>,
}

impl TensorSpec {
    fn numel(&self) -> u64 {
        self.shape
            .iter()
            .fold(1u64, |n, &d| n.saturating_mul(d as u64))
    }
}

/// The dtype of a PyTorch storage class.
fn storage_dtype(class: &str) -> Option<DType> {
    Some(match class {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        _ => return None,
    })
}

/// safetensors' name of a floating-point dtype; `None` for the others.
fn float_name(dtype: DType) -> Option<&'static str> {
    match dtype {
        DType::F32 => Some("F32"),
        DType::F64 => Some("F64"),
        DType::F16 => Some("F16"),
        DType::BF16 => Some("BF16"),
        _ => None,
    }
}

/// The `_rebuild_tensor_v2` arguments of a state-dict value, looking through the wrappers
/// PyTorch uses for parameters and tensor subclasses; `None` when the value is not a
/// tensor.
fn rebuild_args(a: &Arena, value: usize) -> Option<usize> {
    let Node::Call { callable, args, .. } = a.get(value)? else {
        return None;
    };
    match a.global(*callable)? {
        ("torch._utils", "_rebuild_tensor_v2") => Some(*args),
        ("torch._utils", "_rebuild_parameter") => rebuild_args(a, *a.tuple(*args)?.first()?),
        ("torch._tensor", "_rebuild_from_type_v2") => {
            // (func, type, args, state): func is _rebuild_tensor_v2.
            let t = a.tuple(*args)?;
            let (func, inner) = (*t.first()?, *t.get(2)?);
            (a.global(func)? == ("torch._utils", "_rebuild_tensor_v2")).then_some(inner)
        }
        _ => None,
    }
}

/// Reads a `_rebuild_tensor_v2(storage, offset, size, stride, ...)` argument tuple.
fn tensor_spec(a: &Arena, name: &str, args: usize) -> std::result::Result<TensorSpec, String> {
    let bad = |what: &str| format!("tensor {name}: {what}");
    let t = a
        .tuple(args)
        .ok_or_else(|| bad("arguments are not a tuple"))?;
    if t.len() < 4 {
        return Err(bad("too few arguments"));
    }
    let Some(Node::PersistentId(pid)) = a.get(t[0]) else {
        return Err(bad("the storage is not a persistent reference"));
    };
    // ('storage', torch.FloatStorage, key, location, numel)
    let st = a.tuple(*pid).ok_or_else(|| bad("bad storage reference"))?;
    if st.len() < 5 || a.str(st[0]) != Some("storage") {
        return Err(bad("bad storage reference"));
    }
    let (_, class) = a.global(st[1]).ok_or_else(|| bad("bad storage type"))?;
    let dtype =
        storage_dtype(class).ok_or_else(|| bad(&format!("unsupported storage type {class}")))?;
    let key = a.str(st[2]).ok_or_else(|| bad("bad storage key"))?;
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(bad("bad storage key"));
    }
    let nonneg = |i: usize, what: &str| -> std::result::Result<u64, String> {
        a.int(i)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| bad(&format!("{what} is not a non-negative integer")))
    };
    let storage_numel = nonneg(st[4], "the storage size")?;
    let offset = nonneg(t[1], "the offset")?;
    let dims = a
        .tuple(t[2])
        .ok_or_else(|| bad("the shape is not a tuple"))?;
    let strides = a
        .tuple(t[3])
        .ok_or_else(|| bad("the strides are not a tuple"))?;
    if dims.len() > MAX_RANK {
        return Err(bad(&format!(
            "{} dimensions, above the limit of {MAX_RANK}",
            dims.len()
        )));
    }
    if strides.len() != dims.len() {
        return Err(bad("shape and strides differ in length"));
    }
    let mut shape = Vec::with_capacity(dims.len());
    for &d in dims {
        let d = nonneg(d, "a dimension")?;
        shape.push(usize::try_from(d).map_err(|_| bad("a dimension is too large"))?);
    }
    // Only row-major (contiguous) tensors, as state dicts hold them.
    let mut expect = 1u64;
    for (i, &d) in shape.iter().enumerate().rev() {
        let s = nonneg(strides[i], "a stride")?;
        if d > 1 && s != expect {
            return Err(bad("is not contiguous (save it with .contiguous())"));
        }
        expect = expect.saturating_mul(d as u64);
    }
    let spec = TensorSpec {
        name: name.to_string(),
        dtype,
        key: key.to_string(),
        storage_numel,
        offset,
        shape,
    };
    if spec.offset.saturating_add(spec.numel()) > spec.storage_numel {
        return Err(bad("reaches beyond its storage"));
    }
    Ok(spec)
}

/// The tensors of the state dict in a parsed pickle.
fn tensor_specs(a: &Arena, root: usize) -> std::result::Result<Vec<TensorSpec>, String> {
    let Some(Node::Dict(mut items)) = a.get(root).cloned() else {
        return Err("the pickle does not hold a dict".into());
    };
    // A training checkpoint: {'state_dict': {...}, 'epoch': ...}.
    if let Some(&(_, inner)) = items.iter().find(|(k, _)| a.str(*k) == Some("state_dict"))
        && let Some(Node::Dict(inner)) = a.get(inner)
    {
        items = inner.clone();
    }
    if items.len() > MAX_TENSORS {
        return Err(format!(
            "{} entries, above the limit of {MAX_TENSORS}",
            items.len()
        ));
    }
    let mut specs = Vec::new();
    for (k, v) in items {
        let Some(name) = a.str(k) else { continue };
        if let Some(args) = rebuild_args(a, v) {
            specs.push(tensor_spec(a, name, args)?);
        }
    }
    Ok(specs)
}

/// Reads a PyTorch state dict as F32 tensors on `device`, with the dtype each was stored
/// in.
pub fn read_pth(path: &Path, device: &Device) -> Result<ReadTensors> {
    let bad = |msg: String| Error::checkpoint(path, msg);
    let (file, _) = input::open_regular(path, u64::MAX, "PyTorch file")?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        bad(format!(
            "not a PyTorch zip file ({e}); re-save it with torch.save in PyTorch 1.6 or newer"
        ))
    })?;
    let pkl_name = {
        let mut names: Vec<String> = zip
            .file_names()
            .flatten()
            .filter(|n| n.ends_with("data.pkl"))
            .map(|n| n.into_owned())
            .collect();
        names.sort_unstable();
        names
            .first()
            .cloned()
            .ok_or_else(|| bad("the archive holds no data.pkl".into()))?
    };
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    if let Ok(entry) = zip.by_name(&format!("{prefix}byteorder")) {
        let order = input::read_limited(entry, 16, path, "byte order entry", 16)?;
        if order.trim_ascii() != b"little" {
            return Err(bad(
                "the tensors are stored big-endian; save them on a little-endian machine".into(),
            ));
        }
    }
    let pickle_bytes = {
        let entry = zip
            .by_name(&pkl_name)
            .map_err(|e| bad(format!("cannot read {pkl_name}: {e}")))?;
        input::read_limited(entry, MAX_PICKLE_BYTES, path, "pickle", 0)?
    };
    let (arena, root) =
        pickle::parse(&pickle_bytes).map_err(|e| bad(format!("not a readable pickle: {e}")))?;
    let specs = tensor_specs(&arena, root).map_err(|e| bad(format!("not a state dict: {e}")))?;
    drop(arena);
    let specs: Vec<TensorSpec> = specs
        .into_iter()
        .filter(|s| !s.name.ends_with("num_batches_tracked"))
        .collect();
    if specs.is_empty() {
        return Err(bad("the state dict holds no tensors".into()));
    }
    // Each tensor's stored bytes and its F32 copy, before anything is read.
    let total: u64 = specs.iter().fold(0u64, |acc, s| {
        acc.saturating_add(s.numel().saturating_mul(s.dtype.size_in_bytes() as u64 + 4))
    });
    limits::check_memory(&format!("loading {}", path.display()), total)?;
    let mut out = ReadTensors::default();
    for spec in specs {
        let entry_name = format!("{prefix}data/{}", spec.key);
        let elem = spec.dtype.size_in_bytes() as u64;
        let mut entry = zip
            .by_name(&entry_name)
            .map_err(|e| bad(format!("tensor {}: storage {entry_name}: {e}", spec.name)))?;
        let skip = spec.offset.saturating_mul(elem);
        let want = spec.numel().saturating_mul(elem);
        if skip.saturating_add(want) > entry.size() {
            return Err(bad(format!(
                "tensor {}: storage {entry_name} holds {} bytes, fewer than the tensor needs",
                spec.name,
                entry.size()
            )));
        }
        std::io::copy(&mut (&mut entry).take(skip), &mut std::io::sink())
            .map_err(|e| Error::io(path, e))?;
        let data = input::read_limited(entry.take(want), want, path, "storage", want)?;
        if data.len() as u64 != want {
            return Err(bad(format!(
                "tensor {}: storage {entry_name} is truncated",
                spec.name
            )));
        }
        let name = spec
            .name
            .strip_prefix("module.")
            .unwrap_or(&spec.name)
            .to_string();
        let Some(dtype_name) = float_name(spec.dtype) else {
            return Err(bad(format!(
                "tensor {name} has dtype {:?}; expected a floating-point dtype (F32)",
                spec.dtype
            )));
        };
        if let Some(i) = first_non_finite(spec.dtype, &data) {
            return Err(bad(format!(
                "tensor {name} holds a non-finite value (NaN or Inf) at flat index {i}"
            )));
        }
        let t = Tensor::from_raw_buffer(&data, spec.dtype, &spec.shape, device)?
            .to_dtype(DType::F32)?;
        out.dtypes.insert(name.clone(), dtype_name.to_string());
        out.tensors.insert(name, t);
    }
    Ok(out)
}

/// [`read_pth`] without the dtypes.
pub fn load_pth(
    path: &Path,
    device: &Device,
) -> Result<std::collections::BTreeMap<String, Tensor>> {
    Ok(read_pth(path, device)?.tensors)
}
