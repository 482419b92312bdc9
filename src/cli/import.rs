//! `latentflow import-pth`: turn a PyTorch state dict into a latentflow model folder.

use super::{ImportPthArgs, command_line, device};
use crate::models::GeneratorConfig;
use crate::store::{self, Manifest, generator::load_generator, manifest::Training, pth};
use anyhow::{Context, Result, bail};

/// Reads the state dict, checks it against the architecture, and writes the folder.
pub fn import_pth(args: ImportPthArgs) -> Result<()> {
    if args.out.join(store::MANIFEST_FILE).exists() {
        bail!(
            "{} already holds a model; choose another --out",
            args.out.display()
        );
    }
    let mut cfg = GeneratorConfig::new(args.kind, args.latent, args.channels);
    cfg.base = args.base;
    cfg.image_size = args.image_size;
    cfg.validate()?;
    let tensors = pth::load_pth(&args.pth, &device()?)?;
    let mut manifest = Manifest::new("generator", serde_json::to_value(&cfg)?);
    manifest.training = Some(Training {
        command: command_line(),
        ..Default::default()
    });
    // Write to a temporary folder first, load it back with every check, then move it.
    let tmp = args.out.with_extension("importing");
    store::save_checkpoint(&tmp, &mut manifest, &tensors)?;
    if let Err(e) = load_generator(&tmp, &device()?) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e).context(format!(
            "{} does not match the given architecture",
            args.pth.display()
        ));
    }
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
