//! Transformation sequences x_0..x_T for training and evaluating with known
//! transformations: sweeps of one factor of a procedural dataset, and image-space
//! transformations (zoom, rotation, hue shift) of any dataset's images.
//!
//! - [`Transform::Factor`]: all factors but one are drawn at random and the chosen factor
//!   steps +1 per frame. A cyclic factor wraps around; a non-cyclic one whose range fits the
//!   sequence starts where the sweep fits; one with fewer values than frames bounces off its
//!   ends (…, n−2, n−1, n−2, …), always starting upwards. Categorical factors have no order
//!   and cannot be swept.
//! - [`Transform::Scale`], [`Transform::Rotate`], [`Transform::Hue`]: a random dataset image
//!   transformed by [`apply`] with strength s = i/T at frame i: zoom about the centre from
//!   1× to [`MAX_ZOOM`]×, rotation counter-clockwise from 0 to [`MAX_ROTATION_DEGREES`], or a
//!   hue shift from 0 to [`MAX_HUE_SHIFT`] turns (RGB images only).

use super::{Dataset, Image, color};
use crate::{Error, Result};
use rand::Rng;
use std::fmt;
use std::str::FromStr;

/// Frames per sequence (T + 1) unless configured otherwise.
pub const DEFAULT_FRAMES: usize = 9;
/// Zoom factor of the last frame of a [`Transform::Scale`] sequence.
pub const MAX_ZOOM: f32 = 1.8;
/// Rotation in degrees of the last frame of a [`Transform::Rotate`] sequence.
pub const MAX_ROTATION_DEGREES: f32 = 80.0;
/// Hue shift in turns of the last frame of a [`Transform::Hue`] sequence.
pub const MAX_HUE_SHIFT: f32 = 0.75;

/// One kind of transformation.
///
/// Text form ([`Transform::name`], [`FromStr`]): `scale`, `rotate`, `hue`, `factor:NAME`
/// or a bare factor name (a factor by name, resolved against a dataset by
/// [`Transform::resolve`]), or `factor:INDEX`. A bare `scale` is the image zoom; the sprites'
/// scale factor is `factor:scale`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transform {
    /// Sweep of the factor with this index into [`Dataset::factors`].
    Factor(usize),
    /// Sweep of the factor with this name; becomes [`Transform::Factor`] once resolved
    /// against a dataset.
    FactorNamed(String),
    /// Zoom about the image centre.
    Scale,
    /// Rotation about the image centre.
    Rotate,
    /// Hue shift (RGB only).
    Hue,
}

impl Transform {
    /// The text form, parsed back by [`FromStr`]: `scale`, `rotate`, `hue`, `factor:NAME`
    /// or `factor:INDEX`.
    pub fn name(&self) -> String {
        match self {
            Transform::Factor(i) => format!("factor:{i}"),
            Transform::FactorNamed(name) => format!("factor:{name}"),
            Transform::Scale => "scale".to_string(),
            Transform::Rotate => "rotate".to_string(),
            Transform::Hue => "hue".to_string(),
        }
    }

    /// A name for people and manifests: factors by their name in `ds` (`factor:NAME`).
    pub fn label(&self, ds: &dyn Dataset) -> String {
        match self {
            Transform::Factor(i) => match ds.factors().get(*i) {
                Some(factor) => format!("factor:{}", factor.name),
                None => self.name(),
            },
            other => other.name(),
        }
    }

    /// Resolves a factor given by name to its index in `ds`, and checks that a factor index
    /// exists; the image transforms are returned unchanged.
    pub fn resolve(&self, ds: &dyn Dataset) -> Result<Transform> {
        let names = || {
            let names: Vec<_> = ds.factors().iter().map(|f| f.name).collect();
            if names.is_empty() {
                format!("dataset {} has no factors", ds.name())
            } else {
                format!("the factors of {} are {}", ds.name(), names.join(", "))
            }
        };
        match self {
            Transform::FactorNamed(name) => ds
                .factors()
                .iter()
                .position(|f| f.name == name.as_str())
                .map(Transform::Factor)
                .ok_or_else(|| {
                    Error::config(format!("unknown transformation '{name}': {}", names()))
                }),
            Transform::Factor(i) if *i >= ds.factors().len() => Err(Error::config(format!(
                "no factor with index {i}: {}",
                names()
            ))),
            other => Ok(other.clone()),
        }
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Transform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let factor = |name: &str| -> Result<Transform> {
            if name.is_empty() {
                return Err(Error::config("'factor:' needs a factor name or index"));
            }
            Ok(match name.parse::<usize>() {
                Ok(index) => Transform::Factor(index),
                Err(_) => Transform::FactorNamed(name.to_string()),
            })
        };
        match s {
            "scale" => Ok(Transform::Scale),
            "rotate" => Ok(Transform::Rotate),
            "hue" => Ok(Transform::Hue),
            "" => Err(Error::config(
                "empty transformation (expected scale, rotate, hue or a factor name)",
            )),
            _ => match s.strip_prefix("factor:") {
                Some(name) => factor(name.trim()),
                None if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    Ok(Transform::FactorNamed(s.to_string()))
                }
                None => Err(Error::config(format!(
                    "unknown transformation '{s}' (expected scale, rotate, hue or a factor name)"
                ))),
            },
        }
    }
}

/// What [`sequence`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceSpec {
    /// The transformation.
    pub transform: Transform,
    /// Number of frames T + 1 (at least 2).
    pub frames: usize,
}

impl SequenceSpec {
    /// A spec with [`DEFAULT_FRAMES`] frames.
    pub fn new(transform: Transform) -> Self {
        Self {
            transform,
            frames: DEFAULT_FRAMES,
        }
    }
}

/// Every transformation that [`sequence`] accepts for `ds`: its non-categorical factors,
/// then zoom and rotation, then hue shift if its images are RGB.
pub fn transforms_for(ds: &dyn Dataset) -> Vec<Transform> {
    let factors = ds
        .factors()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.categorical);
    let mut out: Vec<Transform> = factors.map(|(i, _)| Transform::Factor(i)).collect();
    out.extend([Transform::Scale, Transform::Rotate]);
    if ds.channels() == 3 {
        out.push(Transform::Hue);
    }
    out
}

/// The value of a swept factor with `n` values at `step` steps from `start`: wrapping if
/// `cyclic`, otherwise bouncing off the ends.
fn sweep_value(start: usize, step: usize, n: usize, cyclic: bool) -> usize {
    if n <= 1 {
        return 0;
    }
    if cyclic {
        return (start + step) % n;
    }
    let period = 2 * (n - 1);
    let phase = (start + step) % period;
    if phase < n { phase } else { period - phase }
}

/// The factor values of every frame of a sweep of factor `factor` of `ds` over `frames`
/// frames (see the module docs): random values for the other factors, held fixed.
pub fn factor_sweep(
    ds: &dyn Dataset,
    factor: usize,
    frames: usize,
    rng: &mut impl Rng,
) -> Result<Vec<Vec<usize>>> {
    check_frames(frames)?;
    let factors = ds.factors();
    let Some(swept) = factors.get(factor) else {
        return Err(Transform::Factor(factor)
            .resolve(ds)
            .err()
            .unwrap_or_else(|| {
                Error::config(format!(
                    "no factor with index {factor} in dataset {}",
                    ds.name()
                ))
            }));
    };
    if swept.categorical {
        return Err(Error::config(format!(
            "factor {} of dataset {} is categorical (it has no order) and cannot be swept",
            swept.name,
            ds.name()
        )));
    }
    let mut values: Vec<usize> = factors
        .iter()
        .map(|f| rng.gen_range(0..f.values.max(1)))
        .collect();
    let n = swept.values;
    let start = if swept.cyclic || n <= 1 {
        values[factor] % n.max(1)
    } else if n >= frames {
        rng.gen_range(0..=n - frames)
    } else {
        // Bouncing: start on the way up, anywhere below the top.
        rng.gen_range(0..n - 1)
    };
    Ok((0..frames)
        .map(|step| {
            values[factor] = sweep_value(start, step, n, swept.cyclic);
            values.clone()
        })
        .collect())
}

fn check_frames(frames: usize) -> Result<()> {
    if frames < 2 {
        return Err(Error::config(format!(
            "a sequence needs at least 2 frames, not {frames}"
        )));
    }
    Ok(())
}

/// A sequence of `spec.frames` images x_0..x_T of `spec.transform` applied to `ds`, with
/// everything random (start factors, source image) drawn from `rng`.
pub fn sequence(ds: &dyn Dataset, spec: &SequenceSpec, rng: &mut impl Rng) -> Result<Vec<Image>> {
    check_frames(spec.frames)?;
    match spec.transform.resolve(ds)? {
        Transform::Factor(factor) => factor_sweep(ds, factor, spec.frames, rng)?
            .iter()
            .map(|values| ds.render_factors(values))
            .collect(),
        transform => {
            if transform == Transform::Hue && ds.channels() != 3 {
                return Err(Error::config(format!(
                    "hue shift needs RGB images; dataset {} is greyscale",
                    ds.name()
                )));
            }
            if ds.is_empty() {
                return Err(Error::config(format!(
                    "dataset {} has no images",
                    ds.name()
                )));
            }
            let source = ds.image(rng.gen_range(0..ds.len()))?;
            let last = (spec.frames - 1) as f32;
            (0..spec.frames)
                .map(|i| apply(&source, &transform, i as f32 / last))
                .collect()
        }
    }
}

/// Applies an image transformation with strength `s` ∈ [0, 1] (0 is the identity):
/// zoom about the centre by 1 + (MAX_ZOOM − 1)·s, rotation by MAX_ROTATION_DEGREES·s
/// counter-clockwise, or a hue shift by MAX_HUE_SHIFT·s turns. Resampling is bilinear and
/// whatever comes from outside the source image is black. Factor sweeps need a dataset and
/// are refused (use [`sequence`]).
pub fn apply(image: &Image, transform: &Transform, s: f32) -> Result<Image> {
    match transform {
        Transform::Scale => {
            let inverse = 1.0 / (1.0 + (MAX_ZOOM - 1.0) * s);
            Ok(warp(image, |dx, dy| (dx * inverse, dy * inverse)))
        }
        Transform::Rotate => {
            let (sin, cos) = (MAX_ROTATION_DEGREES * s).to_radians().sin_cos();
            // Output point p shows source point R(−θ)p (y up).
            Ok(warp(image, |dx, dy| {
                (dx * cos + dy * sin, dy * cos - dx * sin)
            }))
        }
        Transform::Hue => {
            if image.channels != 3 {
                return Err(Error::config(format!(
                    "hue shift needs RGB images; this image has {} channel(s)",
                    image.channels
                )));
            }
            let turns = MAX_HUE_SHIFT * s;
            let n = image.height * image.width;
            let mut out = image.clone();
            for i in 0..n {
                let rgb = [image.data[i], image.data[n + i], image.data[2 * n + i]];
                let [r, g, b] = color::shift_hue(rgb, turns);
                (out.data[i], out.data[n + i], out.data[2 * n + i]) = (r, g, b);
            }
            Ok(out)
        }
        Transform::Factor(_) | Transform::FactorNamed(_) => Err(Error::config(format!(
            "{} is a factor sweep, which needs a dataset, not an image",
            transform.name()
        ))),
    }
}

/// Which sequences a draw may return: one in ten starting points (a starting factor
/// combination, or a source image) is held out for evaluation, the others are for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Sequences whose start is not held out.
    Train,
    /// Sequences whose start is held out.
    Test,
}

impl Split {
    /// Whether a sequence whose start has this key belongs to the split.
    fn holds(self, key: u64) -> bool {
        // SplitMix64's finaliser: a well-mixed hash of the key.
        let mut x = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        x.is_multiple_of(10) == (self == Split::Test)
    }
}

/// Checks that `frames` frames of `transform` exist in `ds` without repeating an image: a
/// factor sweep needs as many values as frames (a longer sweep would bounce off the end of
/// a non-cyclic factor, or come back round to its start on a cyclic one).
pub fn check_fits(ds: &dyn Dataset, transform: &Transform, frames: usize) -> Result<()> {
    check_frames(frames)?;
    if let Transform::Factor(i) = transform.resolve(ds)? {
        let f = &ds.factors()[i];
        if f.categorical {
            return Err(Error::config(format!(
                "factor {} of dataset {} is categorical (it has no order) and cannot be swept",
                f.name,
                ds.name()
            )));
        }
        if f.values < frames {
            return Err(Error::config(format!(
                "factor {} of dataset {} has {} values, so its sequences have at most {} steps, \
                 not {} (lower --steps, or leave {} out of --transforms)",
                f.name,
                ds.name(),
                f.values,
                f.values - 1,
                frames - 1,
                f.name
            )));
        }
    }
    Ok(())
}

/// A sequence of `frames` images of `transform` whose start belongs to `split` (see
/// [`Split`]): like [`sequence`], but a factor sweep never bounces or wraps (checked by
/// [`check_fits`]).
pub fn sample_sequence(
    ds: &dyn Dataset,
    transform: &Transform,
    frames: usize,
    split: Split,
    rng: &mut impl Rng,
) -> Result<Vec<Image>> {
    check_fits(ds, transform, frames)?;
    let transform = transform.resolve(ds)?;
    // One start in ten is held out: a few dozen draws find one of either split.
    for _ in 0..1000 {
        match &transform {
            Transform::Factor(factor) => {
                let values = factor_sweep(ds, *factor, frames, rng)?;
                let key = values[0]
                    .iter()
                    .fold(0u64, |h, &v| h.wrapping_mul(1009).wrapping_add(v as u64));
                if split.holds(key) {
                    return values.iter().map(|v| ds.render_factors(v)).collect();
                }
            }
            other => {
                if ds.is_empty() {
                    return Err(Error::config(format!(
                        "dataset {} has no images",
                        ds.name()
                    )));
                }
                let index = rng.gen_range(0..ds.len());
                if split.holds(index as u64) {
                    let source = ds.image(index)?;
                    let last = (frames - 1) as f32;
                    return (0..frames)
                        .map(|i| apply(&source, other, i as f32 / last))
                        .collect();
                }
            }
        }
    }
    Err(Error::config(format!(
        "dataset {} has too few images to hold one in ten out",
        ds.name()
    )))
}

/// Stacks sequences of images into one tensor (F·B, C, S, S), frame-major (frame t of every
/// sequence, then frame t + 1): every sequence must have the same length and every image the
/// same shape.
pub fn stack_sequences(
    seqs: &[Vec<Image>],
    device: &candle_core::Device,
) -> Result<candle_core::Tensor> {
    let Some(first) = seqs.first() else {
        return Err(Error::config("no sequences to stack"));
    };
    let frames = first.len();
    if let Some((i, s)) = seqs.iter().enumerate().find(|(_, s)| s.len() != frames) {
        return Err(Error::config(format!(
            "sequences of unequal length: sequence 0 has {frames} frames, sequence {i} has {}",
            s.len()
        )));
    }
    let Some(img) = first.first() else {
        return Err(Error::config("sequences need at least one frame"));
    };
    let (c, h, w) = (img.channels, img.height, img.width);
    let mut data = Vec::with_capacity(frames * seqs.len() * c * h * w);
    for t in 0..frames {
        for s in seqs {
            let im = &s[t];
            if (im.channels, im.height, im.width) != (c, h, w) {
                return Err(Error::config(format!(
                    "images of different shapes in one batch: {c}×{h}×{w} and {}×{}×{}",
                    im.channels, im.height, im.width
                )));
            }
            data.extend_from_slice(&im.data);
        }
    }
    Ok(candle_core::Tensor::from_vec(
        data,
        (frames * seqs.len(), c, h, w),
        device,
    )?)
}

/// Resamples `image` so that the output pixel at offset (dx, dy) from the centre (y up)
/// shows the source at `source(dx, dy)`.
fn warp(image: &Image, source: impl Fn(f32, f32) -> (f32, f32)) -> Image {
    let mut out = Image::new(image.channels, image.height, image.width);
    let (cx, cy) = (image.width as f32 / 2.0, image.height as f32 / 2.0);
    let n = image.height * image.width;
    for y in 0..image.height {
        for x in 0..image.width {
            let (sx, sy) = source(x as f32 + 0.5 - cx, cy - (y as f32 + 0.5));
            // Back to sampling coordinates, pixel centres at integers.
            let (col, row) = (cx + sx - 0.5, cy - sy - 0.5);
            for c in 0..image.channels {
                out.data[c * n + y * image.width + x] = image.sample_bilinear(c, row, col);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{scenes::Scenes, sprites::Sprites};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn diff(a: &Image, b: &Image) -> f32 {
        a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).sum()
    }

    #[test]
    fn parse_and_name_round_trip() {
        assert_eq!("scale".parse::<Transform>().unwrap(), Transform::Scale);
        assert_eq!(" rotate ".parse::<Transform>().unwrap(), Transform::Rotate);
        assert_eq!("hue".parse::<Transform>().unwrap(), Transform::Hue);
        let named = Transform::FactorNamed("orientation".into());
        assert_eq!("orientation".parse::<Transform>().unwrap(), named);
        assert_eq!("factor:orientation".parse::<Transform>().unwrap(), named);
        assert_eq!(
            "factor:2".parse::<Transform>().unwrap(),
            Transform::Factor(2)
        );
        for t in [
            Transform::Scale,
            Transform::Rotate,
            Transform::Hue,
            Transform::Factor(3),
            named,
        ] {
            assert_eq!(t.name().parse::<Transform>().unwrap(), t);
        }
        assert!("".parse::<Transform>().is_err());
        assert!("factor:".parse::<Transform>().is_err());
        assert!("zoom in".parse::<Transform>().is_err());
        let sprites = Sprites::new();
        let resolved = "factor:scale"
            .parse::<Transform>()
            .unwrap()
            .resolve(&sprites)
            .unwrap();
        assert_eq!(resolved, Transform::Factor(1));
        assert_eq!(resolved.label(&sprites), "factor:scale");
        let err = "colour"
            .parse::<Transform>()
            .unwrap()
            .resolve(&sprites)
            .unwrap_err();
        assert!(
            err.to_string().contains("shape, scale, orientation"),
            "{err}"
        );
        assert!(Transform::Factor(5).resolve(&sprites).is_err());
    }

    #[test]
    fn transforms_for_lists_sweepable_factors() {
        use Transform::*;
        let sprites = transforms_for(&Sprites::new());
        assert_eq!(
            sprites,
            [Factor(1), Factor(2), Factor(3), Factor(4), Scale, Rotate]
        );
        let scenes = transforms_for(&Scenes::new());
        let expected = [
            Factor(0),
            Factor(1),
            Factor(2),
            Factor(3),
            Factor(5),
            Scale,
            Rotate,
            Hue,
        ];
        assert_eq!(scenes, expected);
    }

    #[test]
    fn orientation_sweep_steps_one_value_per_frame() {
        let ds = Sprites::new();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let spec = SequenceSpec::new(Transform::Factor(2));
        for _ in 0..3 {
            let values = factor_sweep(&ds, 2, spec.frames, &mut rng.clone()).unwrap();
            let frames = sequence(&ds, &spec, &mut rng).unwrap();
            assert_eq!(frames.len(), 9);
            for (i, (frame, v)) in frames.iter().zip(&values).enumerate() {
                assert_eq!(frame, &ds.render_factors(v).unwrap());
                if i > 0 {
                    let prev = &values[i - 1];
                    assert_eq!(v[2], (prev[2] + 1) % 40);
                    assert_eq!(
                        (v[0], v[1], v[3], v[4]),
                        (prev[0], prev[1], prev[3], prev[4])
                    );
                }
            }
        }
        // Orientation is cyclic: a sweep can wrap past 39.
        let wrapped = (0..200).any(|seed| {
            let values = factor_sweep(&ds, 2, 9, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            values.windows(2).any(|w| w[0][2] == 39 && w[1][2] == 0)
        });
        assert!(wrapped);
    }

    #[test]
    fn short_factors_bounce_and_long_ones_fit() {
        let ds = Sprites::new();
        for seed in 0..40 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let scale: Vec<usize> = factor_sweep(&ds, 1, 9, &mut rng)
                .unwrap()
                .iter()
                .map(|v| v[1])
                .collect();
            assert!(scale.iter().all(|&v| v < 6), "{scale:?}");
            assert_eq!(scale[1], scale[0] + 1, "{scale:?}");
            assert!(
                scale.windows(2).all(|w| w[0].abs_diff(w[1]) == 1),
                "{scale:?}"
            );
            // 9 frames over 6 values must turn at the top.
            assert!(
                scale
                    .windows(3)
                    .any(|w| w[0] == 4 && w[1] == 5 && w[2] == 4),
                "{scale:?}"
            );
            let pos: Vec<usize> = factor_sweep(&ds, 3, 9, &mut rng)
                .unwrap()
                .iter()
                .map(|v| v[3])
                .collect();
            assert!(pos.windows(2).all(|w| w[1] == w[0] + 1), "{pos:?}");
        }
        assert_eq!(sweep_value(0, 7, 6, false), 3);
        assert_eq!(sweep_value(4, 8, 6, false), 2);
        assert_eq!(sweep_value(4, 8, 1, false), 0);
    }

    #[test]
    fn bad_sequences_are_refused() {
        let sprites = Sprites::new();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let err =
            sequence(&sprites, &SequenceSpec::new(Transform::Factor(0)), &mut rng).unwrap_err();
        assert!(err.to_string().contains("categorical"), "{err}");
        let err = sequence(&sprites, &SequenceSpec::new(Transform::Hue), &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hue shift needs RGB images; dataset sprites is greyscale"
        );
        let one = SequenceSpec {
            transform: Transform::Rotate,
            frames: 1,
        };
        assert!(sequence(&sprites, &one, &mut rng).is_err());
        let grey = sprites.image(0).unwrap();
        assert!(apply(&grey, &Transform::Hue, 0.5).is_err());
        assert!(apply(&grey, &Transform::Factor(1), 0.5).is_err());
    }

    #[test]
    fn image_sequences_start_at_the_source() {
        let ds = Sprites::new();
        for transform in [Transform::Scale, Transform::Rotate] {
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            let index = rng.clone().gen_range(0..ds.len());
            let frames = sequence(&ds, &SequenceSpec::new(transform.clone()), &mut rng).unwrap();
            assert_eq!(frames.len(), 9);
            let source = ds.image(index).unwrap();
            assert!(diff(&frames[0], &source) < 1e-4, "{transform}");
            assert!(diff(&frames[8], &source) > 20.0, "{transform}");
        }
    }

    #[test]
    fn zoom_and_rotation_mean_what_they_say() {
        let ds = Sprites::new();
        let mass = |image: &Image| image.data.iter().sum::<f32>();
        // An ellipse at scale 0.5 in the centre, zoomed 1.8×, grows by 1.8² in area.
        let small = ds.render_factors(&[1, 0, 0, 16, 16]).unwrap();
        let zoomed = apply(&small, &Transform::Scale, 1.0).unwrap();
        let ratio = mass(&zoomed) / mass(&small);
        assert!((ratio - 3.24).abs() < 0.1, "{ratio}");
        // Rotating by 36° (s = 0.45) matches orientation 4 of 40 (36°, counter-clockwise).
        let ellipse = ds.render_factors(&[1, 5, 0, 16, 16]).unwrap();
        let rotated = apply(&ellipse, &Transform::Rotate, 0.45).unwrap();
        let target = ds.render_factors(&[1, 5, 4, 16, 16]).unwrap();
        let mirrored = ds.render_factors(&[1, 5, 36, 16, 16]).unwrap();
        assert!(diff(&rotated, &target) < 0.25 * diff(&rotated, &mirrored));
        assert!(
            diff(&rotated, &target) < 15.0,
            "{}",
            diff(&rotated, &target)
        );
    }

    #[test]
    fn hue_shift_changes_colour_and_keeps_value() {
        let scene = Scenes::new().render_factors(&[0, 3, 6, 4, 1, 7]).unwrap();
        let shifted = apply(&scene, &Transform::Hue, 1.0).unwrap();
        assert!(diff(&scene, &shifted) / scene.data.len() as f32 > 0.1);
        let n = 64 * 64;
        for i in (0..n).step_by(37) {
            let rgb = |im: &Image| [im.data[i], im.data[n + i], im.data[2 * n + i]];
            let (a, b) = (
                color::rgb_to_hsv(rgb(&scene)),
                color::rgb_to_hsv(rgb(&shifted)),
            );
            assert!((a[2] - b[2]).abs() < 1e-5 && (a[1] - b[1]).abs() < 1e-4);
            if a[1] > 0.2 {
                let turn = (b[0] - a[0]).rem_euclid(1.0);
                assert!((turn - 0.75).abs() < 1e-3, "{turn}");
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let frames =
            sequence(&Scenes::new(), &SequenceSpec::new(Transform::Hue), &mut rng).unwrap();
        assert_eq!(frames.len(), 9);
        assert!(diff(&frames[0], &frames[1]) > 0.0);
    }

    #[test]
    fn splits_are_disjoint_and_sweeps_must_fit() {
        let scenes = Scenes::new();
        let t: Transform = "orientation".parse().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let a = sample_sequence(&scenes, &t, 5, Split::Train, &mut rng).unwrap();
        assert_eq!(a.len(), 5);
        // Held-out starts are one in ten: the two splits never share a start key.
        let key = |v: &[usize]| {
            v.iter()
                .fold(0u64, |h, &x| h.wrapping_mul(1009).wrapping_add(x as u64))
        };
        let mut train = 0;
        for i in 0..2000u64 {
            let v = Scenes::factors_of(i as usize * 97);
            assert_ne!(Split::Train.holds(key(&v)), Split::Test.holds(key(&v)));
            train += Split::Train.holds(key(&v)) as usize;
        }
        assert!((1700..1900).contains(&train), "{train}");
        // scale has 8 values: 8 frames fit, 9 do not.
        let scale: Transform = "scale".parse::<Transform>().unwrap();
        let scale = Transform::FactorNamed("scale".into())
            .resolve(&scenes)
            .unwrap_or(scale);
        assert!(check_fits(&scenes, &scale, 8).is_ok());
        let e = check_fits(&scenes, &scale, 9).unwrap_err().to_string();
        assert!(e.contains("at most 7 steps, not 8"), "{e}");
        // Image transforms fit any length.
        assert!(check_fits(&scenes, &Transform::Rotate, 30).is_ok());
    }

    #[test]
    fn stacking_refuses_unequal_lengths() {
        let img = Image::new(3, 4, 4);
        let ok = stack_sequences(
            &[vec![img.clone(); 3], vec![img.clone(); 3]],
            &candle_core::Device::Cpu,
        )
        .unwrap();
        assert_eq!(ok.dims(), &[6, 3, 4, 4]);
        let e = stack_sequences(
            &[vec![img.clone(); 3], vec![img; 2]],
            &candle_core::Device::Cpu,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unequal length") && e.contains("sequence 1 has 2"),
            "{e}"
        );
    }
}
