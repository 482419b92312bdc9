//! The resource policy, in one place: how much of the machine one command may take, and the
//! largest value each input may have. Every check runs *before* the allocation it guards
//! and fails with an [`Error::Limit`] that names the argument or file, its value and the
//! limit, so a hostile or mistyped input is a one-line error instead of an out-of-memory
//! abort, a hang or a full disk.
//!
//! Two kinds of limit:
//! - **Memory**, where memory is what runs out: [`check_memory`] compares an estimate of a
//!   piece of work with [`memory_budget`], which is derived from what the machine (and the
//!   process's `ulimit -v` and cgroup) leave available now, or from the environment variable
//!   `LATENTFLOW_MEMORY_LIMIT` (e.g. `2G`, `512M`) when that is smaller.
//! - **Counts and sizes** with a fixed bound ([`check_count`]): values beyond them are
//!   mistakes rather than experiments (a 10⁶-step traversal, a 1 GiB manifest), or they
//!   protect a parser (the depth of a pickle, the length of an embedded state).

use crate::{Error, Result};

/// Steps of one traversal (`--steps`, the app's slider range, a switch).
pub const MAX_STEPS: usize = 10_000;
/// Potentials (directions) in one set (`--k`).
pub const MAX_K: usize = 1024;
/// Size of a latent code.
pub const MAX_LATENT: usize = 4096;
/// Codes decoded into one `sample` grid (`--n`).
pub const MAX_SAMPLES: usize = 4096;
/// Training epochs of the VP score's classifier (`--epochs`).
pub const MAX_EPOCHS: usize = 100_000;
/// Training seeds one evaluation averages over (`--seeds`).
pub const MAX_EVAL_SEEDS: usize = 1000;
/// Hidden width of a potential MLP (`--hidden`) and its time embedding (`--time-dim`).
pub const MAX_WIDTH: usize = 16_384;
/// Items per training batch (`--batch-size`).
pub const MAX_BATCH: usize = 65_536;
/// Labelled pairs of a VP evaluation (`--pairs`).
pub const MAX_PAIRS: usize = 1_000_000;
/// Starting codes side by side in one export (`--seeds`, the batch view).
pub const MAX_SEEDS: usize = 1024;
/// Nearest-neighbour upscaling factor (`--scale`).
pub const MAX_SCALE: usize = 16;
/// Images in one grid (`sample --n`, `dataset preview --n` × frames).
pub const MAX_GRID_IMAGES: usize = 100_000;
/// Side of a GIF in pixels (the format stores it in 16 bits).
pub const MAX_GIF_SIDE: usize = 65_535;
/// |step scale| and |superposition weight|: beyond this a walk leaves any sensible region.
pub const MAX_STEP_SCALE: f64 = 1000.0;
/// Codes GANSpace samples (`--samples`).
pub const MAX_CLOSED_FORM_SAMPLES: usize = 100_000;
/// Bytes of a manifest (`manifest.json`).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Bytes of a state embedded in an exported PNG or GIF, and of the part of a GIF read
/// to find it.
pub const MAX_STATE_BYTES: u64 = 4 << 20;
/// Bytes of the pickle inside a `.pth` file (a state dict's pickle is kilobytes).
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Tensors in one weights file.
pub const MAX_TENSORS: usize = 100_000;
/// Dimensions of one tensor.
pub const MAX_RANK: usize = 8;
/// Width or height of an image file that is decoded.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Bytes of one image file that is decoded.
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;
/// Image files listed in one folder.
pub const MAX_FOLDER_FILES: usize = 1_000_000;

/// Environment variable that lowers the memory budget (bytes, or with a K/M/G/T suffix).
pub const MEMORY_LIMIT_VAR: &str = "LATENTFLOW_MEMORY_LIMIT";

/// The share of the available memory one piece of work may plan to use: the rest is left
/// for what the estimate does not count (allocator slack, the UI, other programs).
const BUDGET_SHARE: f64 = 0.75;

/// A byte count for messages: `12.3 GiB`, `512 MiB`, `900 bytes`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Parses `2G`, `512M`, `64k`, `1.5G` or a plain byte count.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return None,
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some((v * mult as f64) as u64)
}

/// Where the memory budget comes from, for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Bytes one piece of work may plan to use.
    pub bytes: u64,
    /// What bounds it, in words.
    pub source: String,
}

/// The first number on the line of `text` that starts with `key`.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .find_map(|w| w.parse().ok())
}

/// Bytes of memory this process can still use, and what bounds it: the machine's available
/// memory, the address-space limit (`ulimit -v`) less what the process has mapped, and the
/// memory cgroup's limit less its usage — whichever is smallest. `None` off Linux.
fn available_memory() -> Option<(u64, &'static str)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let mut best = (field(&meminfo, "MemAvailable:")? * 1024, "available memory");
    let mut consider = |bytes: u64, what: &'static str| {
        if bytes < best.0 {
            best = (bytes, what);
        }
    };
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
        && let Some(line) = limits.lines().find(|l| l.starts_with("Max address space"))
        && let Some(soft) = line
            .split_whitespace()
            .nth(3)
            .and_then(|w| w.parse::<u64>().ok())
    {
        let mapped = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| field(&s, "VmSize:"))
            .unwrap_or(0)
            * 1024;
        consider(
            soft.saturating_sub(mapped),
            "the address-space limit (ulimit -v)",
        );
    }
    for (max, current) in [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ] {
        let read = |p: &str| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
        if let (Some(max), Some(current)) = (read(max), read(current)) {
            consider(max.saturating_sub(current), "the memory cgroup's limit");
        }
    }
    Some(best)
}

/// How much memory one piece of work may plan to use now (see the module docs).
pub fn memory_budget() -> Budget {
    let (available, what) = available_memory().unwrap_or((8 << 30, "an assumed 8 GiB"));
    let mut budget = Budget {
        bytes: (available as f64 * BUDGET_SHARE) as u64,
        source: format!(
            "{} of {what} ({})",
            if BUDGET_SHARE == 1.0 {
                "all".to_string()
            } else {
                format!("{:.0}%", BUDGET_SHARE * 100.0)
            },
            human_bytes(available)
        ),
    };
    if let Ok(v) = std::env::var(MEMORY_LIMIT_VAR)
        && let Some(bytes) = parse_bytes(&v)
        && bytes < budget.bytes
    {
        budget = Budget {
            bytes,
            source: format!("{MEMORY_LIMIT_VAR}={v}"),
        };
    }
    budget
}

/// Fails when `what` (a description naming the arguments, e.g. "`sample --n 4096 --scale
/// 16`") needs more than the memory budget; `bytes` is its estimate.
pub fn check_memory(what: &str, bytes: u64) -> Result<()> {
    let budget = memory_budget();
    if bytes > budget.bytes {
        return Err(Error::Limit(format!(
            "{what} needs about {} of memory, more than the limit of {} ({})",
            human_bytes(bytes),
            human_bytes(budget.bytes),
            budget.source
        )));
    }
    Ok(())
}

/// Fails when `value` of `what` (an argument or field name) is above `max`.
pub fn check_count(what: &str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return Err(Error::Limit(format!(
            "{what} is {value}, above the limit of {max}"
        )));
    }
    Ok(())
}

/// Fails when `value` of `what` is not a finite number with |value| ≤ `max`.
pub fn check_magnitude(what: &str, value: f64, max: f64) -> Result<()> {
    if !value.is_finite() || value.abs() > max {
        return Err(Error::Limit(format!(
            "{what} is {value}, outside the limit of ±{max}"
        )));
    }
    Ok(())
}

/// Bytes of `count` f32 values, saturating (an estimate never overflows into a small
/// number).
pub fn f32_bytes(count: u128) -> u64 {
    u64::try_from(count.saturating_mul(4)).unwrap_or(u64::MAX)
}

/// `a · b · c · ...` without overflow (saturating at `u128::MAX`).
pub fn product(factors: &[usize]) -> u128 {
    factors
        .iter()
        .fold(1u128, |acc, &f| acc.saturating_mul(f as u128))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_parse_and_print() {
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("1.5K"), Some(1536));
        assert_eq!(parse_bytes("77"), Some(77));
        for bad in ["", "G", "-1G", "2X", "nanG"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        assert_eq!(human_bytes(900), "900 bytes");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
    }

    #[test]
    fn limits_name_the_value_and_the_limit() {
        let e = check_count("--steps", 100_000, MAX_STEPS)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--steps is 100000, above the limit of 10000");
        assert!(check_count("--steps", MAX_STEPS, MAX_STEPS).is_ok());
        let e = check_magnitude("--step-scale", 1e30, MAX_STEP_SCALE)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--step-scale") && e.contains("1000"), "{e}");
        assert!(check_magnitude("w", f64::NAN, 1.0).is_err());
        let e = check_memory("a test", u64::MAX).unwrap_err().to_string();
        assert!(
            e.starts_with("a test needs about") && e.contains("limit"),
            "{e}"
        );
        assert!(check_memory("a test", 1024).is_ok());
    }

    #[test]
    fn the_budget_is_positive_and_below_the_machine() {
        let b = memory_budget();
        assert!(b.bytes > 0, "{b:?}");
        if let Some((available, _)) = available_memory() {
            assert!(b.bytes <= available, "{b:?} vs {available}");
        }
    }

    #[test]
    fn estimates_saturate() {
        assert_eq!(product(&[usize::MAX, usize::MAX, 4]), u128::MAX);
        assert_eq!(f32_bytes(u128::MAX), u64::MAX);
        assert_eq!(f32_bytes(product(&[2, 3])), 24);
    }
}
