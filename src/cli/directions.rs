//! `latentflow fit-directions`: SeFa or GANSpace directions of a generator, found in
//! closed form (no training) and saved as a direction set beside the potentials.

use super::{FitDirectionsArgs, command_line};
use crate::data::image::grid;
use crate::methods::PathSpec;
use crate::methods::closed_form::{ClosedForm, FitConfig, fit};
use crate::models::images::decode_images;
use crate::models::sample_latents;
use crate::session::device;
use crate::store::directions::{DirectionsConfig, MODEL, save_directions};
use crate::store::generator::read_manifest;
use crate::store::load_generator;
use anyhow::{Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Fits the directions, saves them, and writes `strips.png` (one walk of 10 steps per
/// direction from one code).
pub fn fit_directions(args: FitDirectionsArgs) -> Result<()> {
    let method: ClosedForm = args.method.parse()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.generator.join(format!("directions-{}", method.name())));
    if out.exists() {
        let is_set = read_manifest(&out).is_ok_and(|m| m.model == MODEL);
        if !is_set {
            bail!(
                "{} exists and is not a direction set; choose another --out (latentflow never \
                 replaces what it did not write)",
                out.display()
            );
        }
        if !args.force {
            bail!(
                "{} already holds a direction set; --force replaces it",
                out.display()
            );
        }
    }
    crate::files::atomic::check_writable(&out)?;
    let dev = device()?;
    let g = load_generator(&args.generator, &dev)?;
    let cfg = FitConfig {
        method,
        k: args.k,
        step: args.step,
        samples: args.samples,
        seed: args.seed,
    };
    let (dirs, scores) = fit(&g, &cfg, &dev)?;
    let config = DirectionsConfig {
        method: method.name().into(),
        latent: g.config.latent,
        k: args.k,
        step: args.step,
        names: Vec::new(),
    };
    let mut settings = BTreeMap::new();
    settings.insert("method".into(), method.name().into());
    settings.insert("k".into(), args.k.into());
    settings.insert("step".into(), args.step.into());
    if method == ClosedForm::Ganspace {
        settings.insert("samples".into(), args.samples.into());
        settings.insert("seed".into(), args.seed.into());
    }
    let score_name = match method {
        ClosedForm::Sefa => "eigenvalue",
        ClosedForm::Ganspace => "variance_share",
    };
    settings.insert(score_name.into(), serde_json::json!(scores));
    save_directions(&out, &config, &dirs, &g, &command_line(), settings)?;

    // One walk per direction from the same code, as the potentials' training writes.
    let flow = crate::methods::open(&out, &g, &dev)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let z0 = sample_latents(g.config.prior, 1, g.config.latent, &mut rng, &dev)?;
    let steps = 10;
    let mut frames = Vec::new();
    for k in 0..flow.directions() {
        let path = flow.path(&z0, &PathSpec::single(k, steps))?;
        frames.extend(decode_images(
            &g.model,
            &candle_core::Tensor::cat(&path.z, 0)?,
        )?);
    }
    grid(&frames, steps + 1, 2)?.save_png(&out.join("strips.png"))?;
    let ranked: Vec<String> = scores.iter().map(|s| format!("{s:.4}")).collect();
    println!(
        "{} directions by {} ({score_name} {}); step {}; wrote {}",
        args.k,
        method.name(),
        ranked.join(", "),
        args.step,
        out.display()
    );
    Ok(())
}
