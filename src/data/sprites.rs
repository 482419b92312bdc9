//! [`Sprites`]: a procedural dSprites-style dataset of 737,280 white 2-D shapes on black,
//! 64×64 grey, rendered on demand.
//!
//! Factors, in index order (image `index` is the factor values in mixed radix, last factor
//! fastest, as in dSprites; see [`Sprites::factors_of`]):
//!
//! | # | name          | values | meaning                                                      |
//! |---|---------------|--------|--------------------------------------------------------------|
//! | 0 | `shape`       | 3      | 0 square, 1 ellipse, 2 heart (categorical)                   |
//! | 1 | `scale`       | 6      | i ↦ 0.5 + 0.1·i (linspace 0.5..1.0): size relative to 20 px  |
//! | 2 | `orientation` | 40     | i ↦ 2π·i/40 rad counter-clockwise on screen (cyclic)         |
//! | 3 | `pos_x`       | 32     | i ↦ shape centre at x = 16.5 + i px from the left edge       |
//! | 4 | `pos_y`       | 32     | i ↦ shape centre at y = 16.5 + i px from the *top* edge      |
//!
//! So `pos_x` moves the shape right and `pos_y` moves it **down**, one pixel per step.
//! Pixel (row y, column x) covers [x, x+1)×[y, y+1), so the centre positions 16.5..47.5 are
//! pixel centres and the image is exactly symmetric under quarter turns about them.
//!
//! Shapes are defined in a local frame (u right, v up, pixels) around the shape centre, with
//! s = 20·scale px:
//! - square: |u| ≤ s/2 and |v| ≤ s/2 (side s);
//! - ellipse: (u/(s/2))² + (v/(s/4))² ≤ 1 (axes s and s/2, long axis horizontal at
//!   orientation 0);
//! - heart: the implicit heart (x²+y²−1)³ − x²y³ ≤ 0 with x = u/k, y = v/k + 0.118 and
//!   k = s/2.276 px per unit, so it is s wide, its bounding box is centred on the shape
//!   centre, and it stands upright (lobes up, tip down) at orientation 0.
//!
//! The largest shape (the square at scale 1, half-diagonal 14.2 px) stays at least 2 px
//! inside the image at every position and orientation. Each pixel is the fraction of a
//! 4×4 grid of sub-samples inside the shape (anti-aliased); only pixels in the shape's
//! bounding box are sampled, so one image takes a few tens of microseconds.

use super::{Dataset, Factor, IMAGE_SIZE, Image, radix};
use crate::Result;

/// The three sprite shapes, in factor order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A square of side s.
    Square,
    /// An ellipse with axes s (horizontal at orientation 0) and s/2.
    Ellipse,
    /// An upright heart s wide.
    Heart,
}

impl Shape {
    /// All shapes, indexed by the `shape` factor value.
    pub const ALL: [Shape; 3] = [Shape::Square, Shape::Ellipse, Shape::Heart];
}

/// The factors of [`Sprites`], in index order.
pub const FACTORS: [Factor; 5] = [
    Factor {
        name: "shape",
        values: 3,
        cyclic: false,
        categorical: true,
    },
    Factor {
        name: "scale",
        values: 6,
        cyclic: false,
        categorical: false,
    },
    Factor {
        name: "orientation",
        values: 40,
        cyclic: true,
        categorical: false,
    },
    Factor {
        name: "pos_x",
        values: 32,
        cyclic: false,
        categorical: false,
    },
    Factor {
        name: "pos_y",
        values: 32,
        cyclic: false,
        categorical: false,
    },
];

/// Number of sprite images: 3·6·40·32·32.
pub const LEN: usize = 737_280;

/// Width in pixels of a shape at scale 1.0.
pub const SIZE_AT_SCALE_ONE: f32 = 20.0;

/// Sub-samples per pixel along each axis.
const SUPERSAMPLE: usize = 4;

/// Half the width of the heart curve (x ∈ [−1.138, 1.138]).
const HEART_HALF_WIDTH: f32 = 1.138;
/// Centre of the heart curve's vertical extent (y ∈ [−1, 1.236]).
const HEART_CENTRE_Y: f32 = 0.118;
/// Largest distance of a heart point from (0, HEART_CENTRE_Y), with a little margin.
const HEART_RADIUS: f32 = 1.35;

/// The scale of `scale` factor value `i`: 0.5 + 0.1·i.
pub fn scale_value(i: usize) -> f32 {
    0.5 + 0.1 * i as f32
}

/// The angle in radians (counter-clockwise on screen) of `orientation` factor value `i`.
pub fn orientation_value(i: usize) -> f32 {
    std::f32::consts::TAU * i as f32 / FACTORS[2].values as f32
}

/// The centre coordinate in pixels of `pos_x`/`pos_y` factor value `i`.
pub fn position_value(i: usize) -> f32 {
    16.5 + i as f32
}

/// The procedural sprites dataset (see the module docs for its factors).
#[derive(Debug, Clone, Default)]
pub struct Sprites;

impl Sprites {
    /// The dataset; it holds no data, images are rendered on demand.
    pub fn new() -> Self {
        Sprites
    }

    /// Factor values `[shape, scale, orientation, pos_x, pos_y]` of image `index`
    /// (`index < LEN`; larger indices wrap around).
    pub fn factors_of(index: usize) -> [usize; 5] {
        radix::decode(&FACTORS, index)
    }

    /// The index of the image with factor values `[shape, scale, orientation, pos_x, pos_y]`
    /// (the inverse of [`Sprites::factors_of`]; out-of-range values wrap, missing ones
    /// count as 0).
    pub fn index_of(values: &[usize]) -> usize {
        radix::encode(&FACTORS, values)
    }

    /// Renders the image with the given factor values, which must be in range.
    fn render(values: [usize; 5]) -> Image {
        let [shape, scale, orientation, pos_x, pos_y] = values;
        render_shape(
            Shape::ALL[shape % 3],
            scale_value(scale),
            orientation_value(orientation),
            position_value(pos_x),
            position_value(pos_y),
        )
    }
}

impl Dataset for Sprites {
    fn name(&self) -> String {
        "sprites".to_string()
    }

    fn len(&self) -> usize {
        LEN
    }

    fn channels(&self) -> usize {
        1
    }

    fn image(&self, index: usize) -> Result<Image> {
        radix::check_index("sprites", LEN, index)?;
        Ok(Self::render(Self::factors_of(index)))
    }

    fn factors(&self) -> &[Factor] {
        &FACTORS
    }

    fn render_factors(&self, values: &[usize]) -> Result<Image> {
        radix::check_values("sprites", &FACTORS, values)?;
        Ok(Self::render(Self::factors_of(Self::index_of(values))))
    }
}

/// Renders one white shape on a black 64×64 image: `scale` relative to
/// [`SIZE_AT_SCALE_ONE`], rotated by `angle` radians counter-clockwise, centred at
/// (`cx`, `cy`) pixels from the top-left corner (continuous coordinates, pixel centres at
/// k + 0.5). Exposed for previews and tests; the dataset uses the factor grid.
pub fn render_shape(shape: Shape, scale: f32, angle: f32, cx: f32, cy: f32) -> Image {
    let s = SIZE_AT_SCALE_ONE * scale;
    let half = s / 2.0;
    match shape {
        Shape::Square => coverage(cx, cy, angle, half * std::f32::consts::SQRT_2, |u, v| {
            u.abs() <= half && v.abs() <= half
        }),
        Shape::Ellipse => {
            let (a2, b2) = (half * half, (half / 2.0) * (half / 2.0));
            coverage(cx, cy, angle, half, move |u, v| {
                u * u / a2 + v * v / b2 <= 1.0
            })
        }
        Shape::Heart => {
            let unit = HEART_HALF_WIDTH / half; // heart units per pixel
            coverage(cx, cy, angle, HEART_RADIUS / unit, move |u, v| {
                let x = u * unit;
                let y = v * unit + HEART_CENTRE_Y;
                let (x2, y3) = (x * x, y * y * y);
                let r = x2 + y * y - 1.0;
                r * r * r - x2 * y3 <= 0.0
            })
        }
    }
}

/// Anti-aliased rendering of the shape `inside(u, v)` (local frame, v up, pixels) rotated by
/// `angle` about (`cx`, `cy`); only the pixels within `radius` of the centre are sampled.
fn coverage(cx: f32, cy: f32, angle: f32, radius: f32, inside: impl Fn(f32, f32) -> bool) -> Image {
    let n = IMAGE_SIZE;
    let mut image = Image::new(1, n, n);
    let (sin, cos) = angle.sin_cos();
    let lo = |c: f32| (c - radius - 1.0).floor().clamp(0.0, n as f32) as usize;
    let hi = |c: f32| ((c + radius + 1.0).ceil().clamp(0.0, n as f32) as usize).max(lo(c));
    let step = 1.0 / SUPERSAMPLE as f32;
    let weight = step * step;
    for y in lo(cy)..hi(cy) {
        let row = &mut image.data[y * n..(y + 1) * n];
        #[allow(clippy::needless_range_loop)] // x is also the sample position
        for x in lo(cx)..hi(cx) {
            let mut hits = 0u32;
            for sy in 0..SUPERSAMPLE {
                // Up is positive in the local frame.
                let dy = cy - (y as f32 + (sy as f32 + 0.5) * step);
                for sx in 0..SUPERSAMPLE {
                    let dx = x as f32 + (sx as f32 + 0.5) * step - cx;
                    let u = dx * cos + dy * sin;
                    let v = dy * cos - dx * sin;
                    hits += u32::from(inside(u, v));
                }
            }
            row[x] = hits as f32 * weight;
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(values: [usize; 5]) -> Image {
        Sprites.render_factors(&values).unwrap()
    }

    fn diff(a: &Image, b: &Image) -> f32 {
        a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).sum()
    }

    fn mass(image: &Image) -> f32 {
        image.data.iter().sum()
    }

    /// Centroid (x, y) in pixels.
    fn centroid(image: &Image) -> (f32, f32) {
        let (mut sx, mut sy) = (0.0, 0.0);
        for y in 0..image.height {
            for x in 0..image.width {
                let v = image.get(0, y, x);
                sx += v * (x as f32 + 0.5);
                sy += v * (y as f32 + 0.5);
            }
        }
        (sx / mass(image), sy / mass(image))
    }

    #[test]
    fn index_round_trip() {
        assert_eq!(Sprites.len(), 737_280);
        assert_eq!(radix::combinations(&FACTORS), LEN);
        assert_eq!(Sprites::factors_of(0), [0; 5]);
        assert_eq!(Sprites::factors_of(1), [0, 0, 0, 0, 1]);
        assert_eq!(Sprites::factors_of(32), [0, 0, 0, 1, 0]);
        assert_eq!(Sprites::factors_of(LEN - 1), [2, 5, 39, 31, 31]);
        for index in [
            0,
            1,
            31,
            32,
            1023,
            1024,
            40_959,
            40_960,
            245_759,
            245_760,
            LEN - 1,
        ] {
            assert_eq!(Sprites::index_of(&Sprites::factors_of(index)), index);
        }
        for index in (0..LEN).step_by(9_973) {
            assert_eq!(Sprites::index_of(&Sprites::factors_of(index)), index);
        }
        assert!(Sprites.image(LEN).is_err());
        assert!(Sprites.render_factors(&[3, 0, 0, 0, 0]).is_err());
        assert!(Sprites.render_factors(&[0, 0, 0, 0]).is_err());
        let values = [2, 3, 17, 5, 30];
        assert_eq!(
            Sprites.image(Sprites::index_of(&values)).unwrap(),
            render(values)
        );
    }

    #[test]
    fn shapes_are_clearly_different() {
        let square = render([0, 5, 0, 16, 16]);
        let ellipse = render([1, 5, 0, 16, 16]);
        let heart = render([2, 5, 0, 16, 16]);
        assert!(diff(&heart, &square) > 60.0, "{}", diff(&heart, &square));
        assert!(diff(&heart, &ellipse) > 60.0, "{}", diff(&heart, &ellipse));
        assert!(
            diff(&square, &ellipse) > 60.0,
            "{}",
            diff(&square, &ellipse)
        );
        // Areas near s² = 400 px, π·10·5 ≈ 157 px and 3.66·(20/2.276)² ≈ 283 px.
        assert!((mass(&square) - 400.0).abs() < 4.0, "{}", mass(&square));
        assert!((mass(&ellipse) - 157.1).abs() < 4.0, "{}", mass(&ellipse));
        assert!((mass(&heart) - 282.8).abs() < 6.0, "{}", mass(&heart));
    }

    #[test]
    fn heart_is_upright_and_ellipse_is_wide() {
        // The lobes are on top: the heart's mass sits above its bounding-box centre.
        let heart = render([2, 5, 0, 16, 16]);
        let (_, cy) = centroid(&heart);
        assert!(cy < position_value(16) - 0.5, "{cy}");
        // Upside down (orientation 20 = π) the mass sits below.
        let (_, cy) = centroid(&render([2, 5, 20, 16, 16]));
        assert!(cy > position_value(16) + 0.5, "{cy}");
        let ellipse = render([1, 5, 0, 16, 16]);
        let centre_row = ellipse.plane(0)[32 * 64..33 * 64].iter().sum::<f32>();
        let centre_col = (0..64).map(|y| ellipse.get(0, y, 32)).sum::<f32>();
        assert!(centre_row > 1.8 * centre_col, "{centre_row} {centre_col}");
    }

    #[test]
    fn rotation_by_a_quarter_turn() {
        for scale in [0, 5] {
            let square = render([0, scale, 0, 10, 20]);
            let turned = render([0, scale, 10, 10, 20]);
            assert!(diff(&square, &turned) < 1e-3, "{}", diff(&square, &turned));
            let ellipse = render([1, scale, 0, 10, 20]);
            let turned = render([1, scale, 10, 10, 20]);
            let changed = diff(&ellipse, &turned);
            assert!(
                changed > 0.6 * mass(&ellipse),
                "{changed} {}",
                mass(&ellipse)
            );
            // An eighth of a turn does change the square.
            let tilted = render([0, scale, 5, 10, 20]);
            assert!(diff(&square, &tilted) > 20.0, "{}", diff(&square, &tilted));
        }
    }

    #[test]
    fn larger_scale_covers_more_pixels() {
        for shape in 0..3 {
            let masses: Vec<f32> = (0..6)
                .map(|s| mass(&render([shape, s, 7, 12, 19])))
                .collect();
            assert!(masses.windows(2).all(|w| w[1] > w[0] * 1.1), "{masses:?}");
        }
    }

    #[test]
    fn positions_move_the_centroid() {
        for shape in 0..3 {
            let (x0, y0) = centroid(&render([shape, 2, 3, 0, 0]));
            let (x1, y1) = centroid(&render([shape, 2, 3, 10, 0]));
            let (x2, y2) = centroid(&render([shape, 2, 3, 0, 10]));
            // Right by 10 px, down by 10 px.
            assert!(
                (x1 - x0 - 10.0).abs() < 0.05 && (y1 - y0).abs() < 0.05,
                "{x0} {x1}"
            );
            assert!(
                (y2 - y0 - 10.0).abs() < 0.05 && (x2 - x0).abs() < 0.05,
                "{y0} {y2}"
            );
        }
    }

    #[test]
    fn values_are_anti_aliased_and_shapes_stay_inside() {
        for shape in 0..3 {
            for orientation in 0..40 {
                for (px, py) in [(0, 0), (31, 0), (0, 31), (31, 31)] {
                    let image = render([shape, 5, orientation, px, py]);
                    assert!(image.data.iter().all(|v| (0.0..=1.0).contains(v)));
                    for i in 0..64 {
                        for (y, x) in [(0, i), (63, i), (i, 0), (i, 63), (1, i), (i, 1)] {
                            assert_eq!(image.get(0, y, x), 0.0, "{shape} {orientation} {px}");
                        }
                    }
                }
            }
            let image = render([shape, 3, 7, 9, 22]);
            let edges = image.data.iter().filter(|&&v| v > 0.05 && v < 0.95).count();
            let full = image.data.iter().filter(|&&v| v == 1.0).count();
            assert!(edges >= 20 && full >= 50, "{edges} {full}");
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        for index in [0, 12_345, 500_000, LEN - 1] {
            assert_eq!(Sprites.image(index).unwrap(), Sprites.image(index).unwrap());
        }
    }
}
