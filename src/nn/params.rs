//! A parameter store: creates parameters from a seeded generator (reproducible training),
//! or serves them from a loaded checkpoint, and remembers which names the model asked for
//! so a checkpoint with missing, extra or misshapen tensors is rejected by name.

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
struct Store {
    /// Every parameter and buffer by its full dotted name.
    vars: BTreeMap<String, Var>,
    /// Names of non-trainable state (batch-norm running statistics).
    buffers: BTreeSet<String>,
    /// Names the model asked for.
    used: BTreeSet<String>,
    /// A store loaded from a checkpoint: asking for a name it lacks is an error rather
    /// than a fresh initialisation.
    strict: bool,
    rng: ChaCha8Rng,
}

/// A shared, named store of parameters. Cloning is cheap and shares the store; `pp` gives
/// a view with a longer name prefix, as candle's `VarBuilder::pp` does.
#[derive(Debug, Clone)]
pub struct Params {
    store: Arc<Mutex<Store>>,
    prefix: String,
    device: Device,
    dtype: DType,
    trainable: bool,
}

impl Params {
    /// An empty, trainable store whose new parameters are drawn from a generator seeded
    /// with `seed`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self::with_store(BTreeMap::new(), seed, device, true)
    }

    /// A store serving the given tensors (from a checkpoint). With `trainable` the tensors
    /// become variables that an optimiser can update; without, they are constants (a frozen
    /// model: no gradients flow into them).
    pub fn from_tensors(
        tensors: BTreeMap<String, Tensor>,
        trainable: bool,
        device: &Device,
    ) -> Result<Self> {
        let mut vars = BTreeMap::new();
        for (name, t) in tensors {
            let t = t.to_device(device)?.to_dtype(DType::F32)?;
            vars.insert(name, Var::from_tensor(&t)?);
        }
        let p = Self::with_store(vars, 0, device, trainable);
        p.lock()?.strict = true;
        Ok(p)
    }

    fn with_store(
        vars: BTreeMap<String, Var>,
        seed: u64,
        device: &Device,
        trainable: bool,
    ) -> Self {
        let store = Store {
            vars,
            buffers: BTreeSet::new(),
            used: BTreeSet::new(),
            strict: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        Self {
            store: Arc::new(Mutex::new(store)),
            prefix: String::new(),
            device: device.clone(),
            dtype: DType::F32,
            trainable,
        }
    }

    /// The same (empty) store creating tensors of `dtype` (F64 for derivative tests;
    /// F32 otherwise).
    pub fn with_dtype(mut self, dtype: DType) -> Result<Self> {
        if self.lock()?.vars.values().any(|v| v.dtype() != dtype) {
            candle_core::bail!("cannot change the dtype of a store that holds tensors");
        }
        self.dtype = dtype;
        Ok(self)
    }

    /// The dtype of the store's tensors.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// A view whose names are prefixed with `name.`.
    pub fn pp(&self, name: impl AsRef<str>) -> Self {
        let mut p = self.clone();
        p.prefix = self.full_name(name.as_ref());
        p
    }

    /// The device parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether parameters are variables that training may update.
    pub fn is_trainable(&self) -> bool {
        self.trainable
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Store>> {
        self.store
            .lock()
            .map_err(|_| candle_core::Error::Msg("parameter store poisoned".into()))
    }

    /// Gets the parameter `name`, creating it with `init` if the store does not have it.
    fn get(
        &self,
        name: &str,
        shape: Shape,
        buffer: bool,
        init: impl FnOnce(&mut ChaCha8Rng, usize) -> Vec<f32>,
    ) -> Result<Var> {
        let full = self.full_name(name);
        let mut store = self.lock()?;
        store.used.insert(full.clone());
        if buffer {
            store.buffers.insert(full.clone());
        }
        if let Some(v) = store.vars.get(&full) {
            if v.shape() != &shape {
                candle_core::bail!(
                    "tensor {full} has shape {:?}, the model expects {:?}",
                    v.shape().dims(),
                    shape.dims()
                );
            }
            return Ok(v.clone());
        }
        if store.strict {
            candle_core::bail!("tensor {full} is missing");
        }
        let n = shape.elem_count();
        let values = init(&mut store.rng, n);
        let t = Tensor::from_vec(values, shape, &self.device)?.to_dtype(self.dtype)?;
        let var = Var::from_tensor(&t)?;
        store.vars.insert(full, var.clone());
        Ok(var)
    }

    fn param(&self, var: Var) -> Tensor {
        if self.trainable {
            var.as_tensor().clone()
        } else {
            var.as_detached_tensor()
        }
    }

    /// A parameter initialised uniformly in [−bound, bound].
    pub fn uniform(&self, name: &str, shape: impl Into<Shape>, bound: f64) -> Result<Tensor> {
        let var = self.get(name, shape.into(), false, |rng, n| {
            (0..n)
                .map(|_| rng.gen_range(-bound..=bound) as f32)
                .collect()
        })?;
        Ok(self.param(var))
    }

    /// A parameter initialised from N(mean, std²).
    pub fn normal(
        &self,
        name: &str,
        shape: impl Into<Shape>,
        mean: f64,
        std: f64,
    ) -> Result<Tensor> {
        let var = self.get(name, shape.into(), false, |rng, n| {
            (0..n)
                .map(|_| (mean + std * rng.sample::<f64, _>(rand_distr::StandardNormal)) as f32)
                .collect()
        })?;
        Ok(self.param(var))
    }

    /// A parameter initialised by `init`, which gets the store's seeded generator and the
    /// number of values (for a structured start, such as WarpedSpace's antipodal pairs).
    pub fn custom(
        &self,
        name: &str,
        shape: impl Into<Shape>,
        init: impl FnOnce(&mut ChaCha8Rng, usize) -> Vec<f32>,
    ) -> Result<Tensor> {
        let var = self.get(name, shape.into(), false, init)?;
        Ok(self.param(var))
    }

    /// A parameter initialised to a constant.
    pub fn constant(&self, name: &str, shape: impl Into<Shape>, value: f64) -> Result<Tensor> {
        let var = self.get(name, shape.into(), false, |_, n| vec![value as f32; n])?;
        Ok(self.param(var))
    }

    /// Non-trainable state (e.g. running statistics) initialised to a constant. The
    /// returned variable may be updated in place with `Var::set`.
    pub fn buffer(&self, name: &str, shape: impl Into<Shape>, value: f64) -> Result<Var> {
        self.get(name, shape.into(), true, |_, n| vec![value as f32; n])
    }

    /// Trainable parameters (buffers excluded), sorted by name.
    pub fn trainable_vars(&self) -> Result<Vec<(String, Var)>> {
        let store = self.lock()?;
        Ok(store
            .vars
            .iter()
            .filter(|(n, _)| !store.buffers.contains(*n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect())
    }

    /// Every tensor (parameters and buffers), sorted by name, as plain tensors.
    pub fn tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let store = self.lock()?;
        Ok(store
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_detached_tensor()))
            .collect())
    }

    /// Names in the store that the model never asked for (extra tensors in a checkpoint).
    pub fn unused(&self) -> Result<Vec<String>> {
        let store = self.lock()?;
        Ok(store
            .vars
            .keys()
            .filter(|n| !store.used.contains(*n))
            .cloned()
            .collect())
    }

    /// Overwrites every parameter with the tensor of the same name in `tensors` (used to
    /// restore a training checkpoint into a freshly built model). Every parameter must be
    /// there with its shape, and nothing else: a damaged checkpoint must not resume with
    /// some weights fresh.
    pub fn load(&self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        let store = self.lock()?;
        for (name, var) in &store.vars {
            let Some(t) = tensors.get(name) else {
                candle_core::bail!("the checkpoint lacks tensor {name}");
            };
            if t.dims() != var.dims() {
                candle_core::bail!(
                    "tensor {name} has shape {:?} in the checkpoint, {:?} in the model",
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_device(&self.device)?.to_dtype(self.dtype)?)?;
        }
        if let Some(extra) = tensors.keys().find(|n| !store.vars.contains_key(*n)) {
            candle_core::bail!("the checkpoint holds tensor {extra}, which the model lacks");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_parameters_and_names_are_scoped() -> Result<()> {
        let a = Params::new(3, &Device::Cpu);
        let b = Params::new(3, &Device::Cpu);
        let ta = a.pp("enc").pp("fc").uniform("weight", (4, 3), 0.5)?;
        let tb = b.pp("enc").pp("fc").uniform("weight", (4, 3), 0.5)?;
        assert_eq!(ta.to_vec2::<f32>()?, tb.to_vec2::<f32>()?);
        let names: Vec<String> = a.tensors()?.into_keys().collect();
        assert_eq!(names, vec!["enc.fc.weight".to_string()]);
        let max = ta.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(max <= 0.5 && max > 0.0);
        Ok(())
    }

    #[test]
    fn loaded_store_rejects_wrong_shape_and_reports_unused() -> Result<()> {
        let mut m = BTreeMap::new();
        m.insert(
            "w".to_string(),
            Tensor::zeros((2, 2), DType::F32, &Device::Cpu)?,
        );
        m.insert(
            "extra".to_string(),
            Tensor::zeros(1, DType::F32, &Device::Cpu)?,
        );
        let p = Params::from_tensors(m, false, &Device::Cpu)?;
        let err = p
            .uniform("w", (3, 2), 1.0)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("tensor w has shape [2, 2]"), "{err}");
        assert_eq!(p.unused()?, vec!["extra".to_string()]);
        let err = p
            .uniform("absent", 2, 1.0)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("tensor absent is missing"), "{err}");
        Ok(())
    }

    #[test]
    fn restoring_needs_every_tensor_with_its_shape_and_nothing_else() -> Result<()> {
        let p = Params::new(1, &Device::Cpu);
        p.uniform("a", 2, 1.0)?;
        p.uniform("b", (2, 3), 1.0)?;
        let mut good: BTreeMap<String, Tensor> = p
            .tensors()?
            .into_iter()
            .map(|(n, t)| Ok((n, t.copy()?)))
            .collect::<Result<_>>()?;
        good.insert("a".into(), Tensor::new(&[5f32, 6.], &Device::Cpu)?);
        p.load(&good)?;
        assert_eq!(p.tensors()?["a"].to_vec1::<f32>()?, vec![5., 6.]);
        let mut missing = good.clone();
        missing.remove("b");
        let e = p.load(&missing).unwrap_err().to_string();
        assert!(e.contains("lacks tensor b"), "{e}");
        let mut wrong = good.clone();
        wrong.insert("b".into(), Tensor::zeros(6, DType::F32, &Device::Cpu)?);
        let e = p.load(&wrong).unwrap_err().to_string();
        assert!(e.contains("tensor b has shape [6]"), "{e}");
        let mut extra = good;
        extra.insert("c".into(), Tensor::zeros(1, DType::F32, &Device::Cpu)?);
        let e = p.load(&extra).unwrap_err().to_string();
        assert!(e.contains("holds tensor c"), "{e}");
        Ok(())
    }

    #[test]
    fn buffers_are_not_trainable() -> Result<()> {
        let p = Params::new(0, &Device::Cpu);
        p.constant("gamma", 3, 1.0)?;
        p.buffer("running_mean", 3, 0.0)?;
        let names: Vec<String> = p.trainable_vars()?.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["gamma".to_string()]);
        Ok(())
    }
}
