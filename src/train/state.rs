//! The state of an interrupted training run in one atomically written safetensors file:
//! model tensors (`model.NAME`), optimiser moments (`opt.INDEX.adam.m.NAME`, ...) and, in
//! the header metadata, the iteration, elapsed time, settings and loss log. One file means
//! a crash can never leave weights and progress out of step.

use crate::files::atomic;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// File name of the training state inside a checkpoint folder.
pub const STATE_FILE: &str = "train-state.safetensors";

/// One row of the loss log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogRow {
    /// Iteration (1-based: after this many updates).
    pub iteration: u64,
    /// Seconds since the run first started.
    pub elapsed_s: f64,
    /// Loss terms by name, in a fixed order.
    pub values: Vec<(String, f64)>,
}

/// Everything needed to resume.
#[derive(Debug, Clone)]
pub struct TrainState {
    /// What the run trains, as a manifest names it ("generator", "potentials").
    pub model: String,
    /// Updates completed.
    pub iteration: u64,
    /// Training seconds so far.
    pub elapsed_s: f64,
    /// The run's settings as JSON; a resume with other settings is refused.
    pub settings: serde_json::Value,
    /// The loss log so far.
    pub log: Vec<LogRow>,
    /// Model and optimiser tensors.
    pub tensors: BTreeMap<String, Tensor>,
}

impl TrainState {
    /// Writes the state atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut meta = HashMap::new();
        meta.insert("model".to_string(), self.model.clone());
        meta.insert("iteration".to_string(), self.iteration.to_string());
        meta.insert("elapsed_s".to_string(), self.elapsed_s.to_string());
        meta.insert("settings".to_string(), self.settings.to_string());
        let log = serde_json::to_string(&self.log)
            .map_err(|e| Error::checkpoint(path, format!("cannot serialise the log: {e}")))?;
        meta.insert("log".to_string(), log);
        let mut owned = Vec::with_capacity(self.tensors.len());
        for (n, t) in &self.tensors {
            owned.push((
                n.as_str(),
                t.to_dtype(DType::F32)?
                    .to_device(&Device::Cpu)?
                    .contiguous()?,
            ));
        }
        let bytes = safetensors::tensor::serialize(owned.iter().map(|(n, t)| (*n, t)), Some(meta))
            .map_err(|e| {
                Error::checkpoint(path, format!("cannot serialise training state: {e}"))
            })?;
        atomic::write(path, &bytes)
    }

    /// Reads a state written by [`TrainState::save`].
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let bytes = crate::store::tensors::read_bytes(path)?;
        let bad = |msg: String| Error::checkpoint(path, msg);
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("corrupt training state: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |k: &str| {
            meta.get(k)
                .ok_or_else(|| bad(format!("training state lacks '{k}'")))
        };
        let iteration = field("iteration")?
            .parse()
            .map_err(|_| bad("bad iteration".into()))?;
        let elapsed_s: f64 = field("elapsed_s")?
            .parse()
            .map_err(|_| bad("bad elapsed_s".into()))?;
        if !(elapsed_s.is_finite() && elapsed_s >= 0.0) {
            return Err(bad(format!("bad elapsed_s {elapsed_s}")));
        }
        let settings = serde_json::from_str(field("settings")?).map_err(|e| bad(e.to_string()))?;
        let log = serde_json::from_str(field("log")?).map_err(|e| bad(e.to_string()))?;
        let model = model_of(&meta, &settings);
        let tensors = crate::store::tensors::parse_safetensors(path, &bytes, device)?.tensors;
        Ok(Self {
            model,
            iteration,
            elapsed_s,
            settings,
            log,
            tensors,
        })
    }
}

/// The model a state trains: its `model` field, or for states written before it existed,
/// what its settings say (a generator run names a dataset, a potential run a generator).
fn model_of(meta: &HashMap<String, String>, settings: &serde_json::Value) -> String {
    if let Some(m) = meta.get("model") {
        return m.clone();
    }
    if settings.get("dataset").is_some() {
        "generator".into()
    } else if settings.get("generator").is_some() {
        "potentials".into()
    } else {
        "unknown".into()
    }
}

/// What the training state at `path` trains ("generator", "potentials"), read from its
/// header alone (bounded), for deciding whether a folder may be written.
pub fn peek_model(path: &Path) -> Result<String> {
    use std::io::Read;
    let bad = |msg: String| Error::checkpoint(path, format!("corrupt training state: {msg}"));
    let (mut file, size) = crate::files::input::open_regular(path, u64::MAX, "training state")?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| bad(e.to_string()))?;
    let n = u64::from_le_bytes(len);
    if n > size.saturating_sub(8) || n > MAX_HEADER_BYTES {
        return Err(bad(format!("header length {n}")));
    }
    let header = crate::files::input::read_limited(file.take(n), n, path, "training state", n)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| bad(e.to_string()))?;
    let meta: HashMap<String, String> = header
        .get("__metadata__")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    let settings = meta
        .get("settings")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok(model_of(&meta, &settings))
}

/// The largest safetensors header (the safetensors crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Writes the log as CSV (`iteration,elapsed_s,<terms...>`) atomically. The columns are
/// every term any row has, in order of first appearance; a row without one (a run resumed
/// from a version that did not log it) leaves its cell empty.
pub fn write_log_csv(path: &Path, log: &[LogRow]) -> Result<()> {
    let mut names: Vec<&str> = Vec::new();
    for row in log {
        for (name, _) in &row.values {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let mut out = String::new();
    if !log.is_empty() {
        out.push_str("iteration,elapsed_s");
        for name in &names {
            out.push(',');
            out.push_str(name);
        }
        out.push('\n');
    }
    for row in log {
        out.push_str(&format!("{},{:.3}", row.iteration, row.elapsed_s));
        for name in &names {
            out.push(',');
            if let Some((_, v)) = row.values.iter().find(|(n, _)| n == name) {
                out.push_str(&format!("{v:.6}"));
            }
        }
        out.push('\n');
    }
    atomic::write(path, out.as_bytes())
}

/// The tensors of a training state: every parameter store's tensors and every optimiser's
/// moments, each under its prefix (`"pot."`, `"opt0."`, …).
pub fn gather(
    params: &[(&str, &crate::nn::Params)],
    optimisers: &[(&str, &crate::nn::Adam)],
) -> Result<BTreeMap<String, Tensor>> {
    let mut out = BTreeMap::new();
    for (prefix, p) in params {
        for (n, t) in p.tensors()? {
            out.insert(format!("{prefix}{n}"), t);
        }
    }
    for (prefix, opt) in optimisers {
        for (n, t) in opt.state() {
            out.insert(format!("{prefix}{n}"), t);
        }
    }
    Ok(out)
}

/// The tensors of `state` under `prefix`, with the prefix taken off.
pub fn part(state: &TrainState, prefix: &str) -> BTreeMap<String, Tensor> {
    state
        .tensors
        .iter()
        .filter_map(|(n, t)| n.strip_prefix(prefix).map(|n| (n.to_string(), t.clone())))
        .collect()
}

/// Restores what [`gather`] saved: every store's parameters and every optimiser's moments.
pub fn scatter(
    state: &TrainState,
    params: &[(&str, &crate::nn::Params)],
    optimisers: &mut [(&str, &mut crate::nn::Adam)],
) -> Result<()> {
    for (prefix, p) in params {
        p.load(&part(state, prefix))?;
    }
    for (prefix, opt) in optimisers.iter_mut() {
        opt.load_state(&part(state, prefix), state.iteration)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_has_every_column_and_empty_cells_for_missing_terms() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.csv");
        let row = |iteration: u64, values: &[(&str, f64)]| LogRow {
            iteration,
            elapsed_s: 0.5,
            values: values.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        };
        let log = vec![
            row(10, &[("loss", 1.0)]),
            row(20, &[("loss", 0.5), ("max_cos", 0.25)]),
        ];
        write_log_csv(&path, &log)?;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "iteration,elapsed_s,loss,max_cos\n10,0.500,1.000000,\n20,0.500,0.500000,0.250000\n"
        );
        Ok(())
    }

    #[test]
    fn roundtrip_keeps_progress_log_and_tensors() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "model.w".to_string(),
            Tensor::new(&[1f32, 2.], &Device::Cpu)?,
        );
        let log = vec![LogRow {
            iteration: 10,
            elapsed_s: 1.5,
            values: vec![("loss".into(), 0.25)],
        }];
        let s = TrainState {
            model: "generator".into(),
            iteration: 10,
            elapsed_s: 1.5,
            settings: serde_json::json!({"lr": 0.001}),
            log: log.clone(),
            tensors,
        };
        s.save(&path)?;
        let back = TrainState::load(&path, &Device::Cpu)?;
        assert_eq!(back.iteration, 10);
        assert_eq!(back.model, "generator");
        assert_eq!(peek_model(&path)?, "generator");
        assert_eq!(back.log, log);
        assert_eq!(back.settings, serde_json::json!({"lr": 0.001}));
        assert_eq!(back.tensors["model.w"].to_vec1::<f32>()?, vec![1., 2.]);
        let csv_path = dir.path().join("loss.csv");
        write_log_csv(&csv_path, &log)?;
        let csv = std::fs::read_to_string(csv_path).unwrap();
        assert_eq!(csv, "iteration,elapsed_s,loss\n10,1.500,0.250000\n");
        Ok(())
    }
}
