//! [`Scenes`]: a procedural Shapes3D-style dataset of 480,000 64×64 RGB renderings of one
//! object standing in a room, ray-traced on demand.
//!
//! Factors, in index order (image `index` is the factor values in mixed radix, last factor
//! fastest, as in Shapes3D; see [`Scenes::factors_of`]):
//!
//! | # | name          | values | meaning                                                       |
//! |---|---------------|--------|---------------------------------------------------------------|
//! | 0 | `floor_hue`   | 10     | floor colour, hue i/10 turns (cyclic)                         |
//! | 1 | `wall_hue`    | 10     | colour of all three walls, hue i/10 turns (cyclic)            |
//! | 2 | `object_hue`  | 10     | object colour, hue i/10 turns (cyclic)                        |
//! | 3 | `scale`       | 8      | object size factor 0.75 + i/14 (linspace 0.75..1.25)          |
//! | 4 | `shape`       | 4      | 0 cube, 1 cylinder, 2 sphere, 3 capsule (categorical)         |
//! | 5 | `orientation` | 15     | camera azimuth −30° + i·60°/14 (linspace −30°..30°, not cyclic)|
//!
//! Colours are HSV with saturation [`SATURATION`] and value [`VALUE`] (hue 0 red, 0.1 orange,
//! …). The room (y up, metres-ish): the floor is the plane y = 0, the back wall z = −3 and
//! two side walls x = ±3 meet it and each other in corners. The object stands on the floor
//! at the origin; at scale 1 the cube has side 1, the cylinder radius 0.5 and height 1, the
//! sphere radius 0.55 and the capsule radius 0.35 and height 1.4 (all lengths times the
//! scale). The camera is 5 from the vertical axis through the object, 2.2 above the floor,
//! looks at (0, 0.55, 0) with a 40° field of view, and `orientation` turns it about that
//! axis (positive: the camera moves to the +x side), so the walls and corners shift and
//! the cube and cylinder are seen from different sides for every shape.
//!
//! Shading is Lambertian with ambient light plus one directional light from the upper
//! left behind the camera; the object casts a hard shadow on the floor and walls. Every
//! pixel averages 2×2 rays (anti-aliasing).

use super::raytrace::{self, Hit, Vec3};
use super::{Dataset, Factor, IMAGE_SIZE, Image, color, radix};
use crate::Result;

/// The four object shapes, in factor order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An axis-aligned cube (sharp edges, flat faces).
    Cube,
    /// A vertical cylinder with a flat top (round silhouette, flat cap).
    Cylinder,
    /// A sphere resting on the floor.
    Sphere,
    /// A vertical capsule (pill): narrower and taller, rounded at both ends.
    Capsule,
}

impl Shape {
    /// All shapes, indexed by the `shape` factor value.
    pub const ALL: [Shape; 4] = [Shape::Cube, Shape::Cylinder, Shape::Sphere, Shape::Capsule];
}

/// The factors of [`Scenes`], in index order.
pub const FACTORS: [Factor; 6] = [
    Factor {
        name: "floor_hue",
        values: 10,
        cyclic: true,
        categorical: false,
    },
    Factor {
        name: "wall_hue",
        values: 10,
        cyclic: true,
        categorical: false,
    },
    Factor {
        name: "object_hue",
        values: 10,
        cyclic: true,
        categorical: false,
    },
    Factor {
        name: "scale",
        values: 8,
        cyclic: false,
        categorical: false,
    },
    Factor {
        name: "shape",
        values: 4,
        cyclic: false,
        categorical: true,
    },
    Factor {
        name: "orientation",
        values: 15,
        cyclic: false,
        categorical: false,
    },
];

/// Number of scene images: 10·10·10·8·4·15.
pub const LEN: usize = 480_000;

/// HSV saturation of every surface colour.
pub const SATURATION: f32 = 0.85;
/// HSV value of every surface colour (before shading).
pub const VALUE: f32 = 0.95;

const BACK_WALL_Z: f32 = -3.0;
const SIDE_WALL_X: f32 = 3.0;
const CAMERA_DISTANCE: f32 = 5.0;
const CAMERA_HEIGHT: f32 = 2.2;
const TARGET_HEIGHT: f32 = 0.55;
const FIELD_OF_VIEW_DEG: f32 = 40.0;
const AMBIENT: f32 = 0.45;
const DIFFUSE: f32 = 0.6;
/// Rays per pixel along each axis.
const SUPERSAMPLE: usize = 2;

/// Unit vector towards the directional light (from the upper left, behind the camera).
fn light_direction() -> Vec3 {
    Vec3::new(-0.45, 0.8, 0.6).normalize()
}

/// The surface colour of hue factor value `i`.
pub fn hue_colour(i: usize) -> [f32; 3] {
    color::hsv_to_rgb(i as f32 / 10.0, SATURATION, VALUE)
}

/// The object size factor of `scale` value `i`: 0.75 + i·0.5/7.
pub fn scale_value(i: usize) -> f32 {
    0.75 + 0.5 * i as f32 / 7.0
}

/// The camera azimuth in degrees of `orientation` value `i`: −30 + i·60/14.
pub fn orientation_degrees(i: usize) -> f32 {
    -30.0 + 60.0 * i as f32 / 14.0
}

/// The procedural scenes dataset (see the module docs for its factors).
#[derive(Debug, Clone, Default)]
pub struct Scenes;

impl Scenes {
    /// The dataset; it holds no data, images are rendered on demand.
    pub fn new() -> Self {
        Scenes
    }

    /// Factor values `[floor_hue, wall_hue, object_hue, scale, shape, orientation]` of
    /// image `index` (`index < LEN`; larger indices wrap around).
    pub fn factors_of(index: usize) -> [usize; 6] {
        radix::decode(&FACTORS, index)
    }

    /// The index of the image with the given factor values (the inverse of
    /// [`Scenes::factors_of`]; out-of-range values wrap, missing ones count as 0).
    pub fn index_of(values: &[usize]) -> usize {
        radix::encode(&FACTORS, values)
    }
}

impl Dataset for Scenes {
    fn name(&self) -> String {
        "scenes".to_string()
    }

    fn len(&self) -> usize {
        LEN
    }

    fn channels(&self) -> usize {
        3
    }

    fn image(&self, index: usize) -> Result<Image> {
        radix::check_index("scenes", LEN, index)?;
        Ok(render(&SceneParams::from_factors(Self::factors_of(index))))
    }

    fn factors(&self) -> &[Factor] {
        &FACTORS
    }

    fn render_factors(&self, values: &[usize]) -> Result<Image> {
        radix::check_values("scenes", &FACTORS, values)?;
        Ok(render(&SceneParams::from_factors(Self::factors_of(
            Self::index_of(values),
        ))))
    }
}

/// Everything that determines one scene, in continuous form.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneParams {
    /// Floor colour (RGB in [0, 1]).
    pub floor: [f32; 3],
    /// Wall colour.
    pub wall: [f32; 3],
    /// Object colour.
    pub object: [f32; 3],
    /// Object size factor (1 is the reference size).
    pub scale: f32,
    /// Object shape.
    pub shape: Shape,
    /// Camera azimuth in degrees.
    pub azimuth_degrees: f32,
}

impl SceneParams {
    /// The scene of factor values `[floor_hue, wall_hue, object_hue, scale, shape,
    /// orientation]` (values must be in range; the shape wraps).
    pub fn from_factors([floor, wall, object, scale, shape, orientation]: [usize; 6]) -> Self {
        Self {
            floor: hue_colour(floor),
            wall: hue_colour(wall),
            object: hue_colour(object),
            scale: scale_value(scale),
            shape: Shape::ALL[shape % 4],
            azimuth_degrees: orientation_degrees(orientation),
        }
    }
}

/// The object, centred on the y axis and standing on the floor.
struct Object {
    shape: Shape,
    /// Half width (cube), radius (cylinder, sphere, capsule).
    radius: f32,
    /// Height of the top.
    height: f32,
    /// Bounding sphere.
    centre: Vec3,
    bound: f32,
}

impl Object {
    fn new(shape: Shape, scale: f32) -> Self {
        let (radius, height) = match shape {
            Shape::Cube | Shape::Cylinder => (0.5 * scale, 1.0 * scale),
            Shape::Sphere => (0.55 * scale, 1.1 * scale),
            Shape::Capsule => (0.35 * scale, 1.4 * scale),
        };
        let half = height / 2.0;
        // The cube's corners are √2 times the half width from the axis.
        let reach = if shape == Shape::Cube {
            radius * std::f32::consts::SQRT_2
        } else {
            radius
        };
        let bound = (reach * reach + half * half).sqrt() * 1.001;
        Self {
            shape,
            radius,
            height,
            centre: Vec3::new(0.0, half, 0.0),
            bound,
        }
    }

    #[inline]
    fn intersect(&self, origin: Vec3, dir: Vec3) -> Option<Hit> {
        if !raytrace::passes_near(origin, dir, self.centre, self.bound) {
            return None;
        }
        let r = self.radius;
        match self.shape {
            Shape::Cube => raytrace::aabb(
                origin,
                dir,
                Vec3::new(-r, 0.0, -r),
                Vec3::new(r, self.height, r),
            ),
            Shape::Cylinder => raytrace::cylinder(origin, dir, r, 0.0, self.height),
            Shape::Sphere => raytrace::sphere(origin, dir, self.centre, r),
            Shape::Capsule => raytrace::capsule(origin, dir, r, r, self.height - r),
        }
    }
}

/// Ray-traces one scene at [`IMAGE_SIZE`]×[`IMAGE_SIZE`].
pub fn render(params: &SceneParams) -> Image {
    let n = IMAGE_SIZE;
    let object = Object::new(params.shape, params.scale);
    let light = light_direction();
    let azimuth = params.azimuth_degrees.to_radians();
    let eye = Vec3::new(
        CAMERA_DISTANCE * azimuth.sin(),
        CAMERA_HEIGHT,
        CAMERA_DISTANCE * azimuth.cos(),
    );
    let forward = (Vec3::new(0.0, TARGET_HEIGHT, 0.0) - eye).normalize();
    let right = forward.cross(Vec3::new(0.0, 1.0, 0.0)).normalize();
    let up = right.cross(forward);
    let tan_half = (FIELD_OF_VIEW_DEG.to_radians() / 2.0).tan();
    let pixel = 2.0 * tan_half / n as f32;
    let sub = 1.0 / SUPERSAMPLE as f32;
    let weight = sub * sub;

    // Lambert factor of each room surface, without and with the object's shadow.
    let lit = |normal: Vec3| AMBIENT + DIFFUSE * normal.dot(light).max(0.0);
    let floor_normal = Vec3::new(0.0, 1.0, 0.0);
    let back_normal = Vec3::new(0.0, 0.0, 1.0);
    let left_normal = Vec3::new(1.0, 0.0, 0.0);
    let right_normal = Vec3::new(-1.0, 0.0, 0.0);

    let mut image = Image::new(3, n, n);
    let plane = n * n;
    for y in 0..n {
        for x in 0..n {
            let mut rgb = [0.0f32; 3];
            for sy in 0..SUPERSAMPLE {
                let v = tan_half - (y as f32 + (sy as f32 + 0.5) * sub) * pixel;
                for sx in 0..SUPERSAMPLE {
                    let u = (x as f32 + (sx as f32 + 0.5) * sub) * pixel - tan_half;
                    let dir = (forward + right * u + up * v).normalize();
                    // The room is convex and the camera inside it: the nearest plane ahead
                    // is the visible one.
                    let mut t = f32::INFINITY;
                    let mut normal = floor_normal;
                    let mut colour = &params.floor;
                    if dir.y < 0.0 {
                        t = -eye.y / dir.y;
                    }
                    if dir.z < 0.0 {
                        let tw = (BACK_WALL_Z - eye.z) / dir.z;
                        if tw < t {
                            (t, normal, colour) = (tw, back_normal, &params.wall);
                        }
                    }
                    if dir.x != 0.0 {
                        let (wall_x, wall_normal) = if dir.x < 0.0 {
                            (-SIDE_WALL_X, left_normal)
                        } else {
                            (SIDE_WALL_X, right_normal)
                        };
                        let tw = (wall_x - eye.x) / dir.x;
                        if tw < t {
                            (t, normal, colour) = (tw, wall_normal, &params.wall);
                        }
                    }
                    let shade = match object.intersect(eye, dir) {
                        Some(hit) if hit.t < t => {
                            colour = &params.object;
                            lit(hit.normal)
                        }
                        _ => {
                            let point = eye + dir * t;
                            if normal.dot(light) > 0.0 && object.intersect(point, light).is_some() {
                                AMBIENT
                            } else {
                                lit(normal)
                            }
                        }
                    };
                    for (acc, c) in rgb.iter_mut().zip(colour) {
                        *acc += c * shade;
                    }
                }
            }
            for (c, acc) in rgb.iter().enumerate() {
                image.data[c * plane + y * n + x] = (acc * weight).clamp(0.0, 1.0);
            }
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_values(values: [usize; 6]) -> Image {
        Scenes.render_factors(&values).unwrap()
    }

    /// Pixels (y, x) whose colour differs by more than 0.02 in some channel.
    fn changed(a: &Image, b: &Image) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for y in 0..a.height {
            for x in 0..a.width {
                if (0..3).any(|c| (a.get(c, y, x) - b.get(c, y, x)).abs() > 0.02) {
                    out.push((y, x));
                }
            }
        }
        out
    }

    /// The object's pixels: those that change when only the object's hue changes.
    fn object_mask(values: [usize; 6]) -> Vec<(usize, usize)> {
        let mut other = values;
        other[2] = (values[2] + 5) % 10;
        changed(&render_values(values), &render_values(other))
    }

    const BASE: [usize; 6] = [0, 3, 6, 4, 0, 7];

    #[test]
    fn index_round_trip() {
        assert_eq!(Scenes.len(), 480_000);
        assert_eq!(radix::combinations(&FACTORS), LEN);
        assert_eq!(Scenes::factors_of(1), [0, 0, 0, 0, 0, 1]);
        assert_eq!(Scenes::factors_of(15), [0, 0, 0, 0, 1, 0]);
        assert_eq!(Scenes::factors_of(LEN - 1), [9, 9, 9, 7, 3, 14]);
        for index in (0..LEN)
            .step_by(7_919)
            .chain([0, 14, 59, 60, 479, 480, LEN - 1])
        {
            assert_eq!(Scenes::index_of(&Scenes::factors_of(index)), index);
        }
        assert!(Scenes.image(LEN).is_err());
        assert!(Scenes.render_factors(&[0, 0, 0, 8, 0, 0]).is_err());
        assert_eq!(
            Scenes.image(Scenes::index_of(&BASE)).unwrap(),
            render_values(BASE)
        );
        let image = render_values(BASE);
        assert_eq!((image.channels, image.height, image.width), (3, 64, 64));
        assert!(image.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn floor_hue_changes_the_floor_only() {
        let mut other = BASE;
        other[0] = 5;
        let diff = changed(&render_values(BASE), &render_values(other));
        let bottom = diff.iter().filter(|&&(y, _)| y >= 48).count();
        assert!(bottom > 12 * 64, "{bottom}");
        assert!(
            diff.iter().all(|&(y, _)| y >= 16),
            "floor change reaches the top rows"
        );
        assert!(!diff.iter().any(|&(y, x)| y < 24 && (24..40).contains(&x)));
    }

    #[test]
    fn wall_hue_changes_the_walls_only() {
        let mut other = BASE;
        other[1] = 8;
        let diff = changed(&render_values(BASE), &render_values(other));
        let top = diff.iter().filter(|&&(y, _)| y < 12).count();
        assert_eq!(top, 12 * 64, "walls fill the top rows");
        assert!(
            diff.iter().all(|&(y, _)| y < 48),
            "wall change reaches the bottom rows"
        );
    }

    #[test]
    fn object_hue_changes_the_centre_only() {
        for shape in 0..4 {
            let mask = object_mask([2, 7, 0, 7, shape, 0]);
            assert!(mask.len() > 80, "shape {shape}: {}", mask.len());
            for &(y, x) in &mask {
                assert!(
                    (8..56).contains(&y) && (16..48).contains(&x),
                    "shape {shape}: {y},{x}"
                );
            }
        }
    }

    #[test]
    fn scale_grows_the_object() {
        for shape in 0..4 {
            let areas: Vec<usize> = (0..8)
                .map(|s| object_mask([1, 4, 8, s, shape, 3]).len())
                .collect();
            assert!(
                areas.windows(2).all(|w| w[1] > w[0]),
                "shape {shape}: {areas:?}"
            );
            assert!(
                areas[7] as f32 > 2.0 * areas[0] as f32,
                "shape {shape}: {areas:?}"
            );
        }
    }

    #[test]
    fn shapes_differ_pairwise() {
        let images: Vec<Image> = (0..4)
            .map(|shape| render_values([0, 3, 6, 4, shape, 7]))
            .collect();
        for a in 0..4 {
            for b in a + 1..4 {
                let n = changed(&images[a], &images[b]).len();
                assert!(n > 25, "shapes {a} and {b} differ in only {n} pixels");
            }
        }
    }

    #[test]
    fn orientation_moves_the_wall_floor_boundary() {
        // Per column, the first row (from the bottom) showing a wall pixel; walls are the
        // pixels that change with the wall hue.
        let boundary = |orientation: usize| -> Vec<usize> {
            let mut values = [0, 0, 6, 0, 2, orientation];
            let a = render_values(values);
            values[1] = 5;
            let b = render_values(values);
            (0..64)
                .map(|x| {
                    (0..64)
                        .rev()
                        .find(|&y| (0..3).any(|c| (a.get(c, y, x) - b.get(c, y, x)).abs() > 0.02))
                        .unwrap_or(0)
                })
                .collect()
        };
        let left = boundary(0);
        let middle = boundary(7);
        let right = boundary(14);
        let moved = |a: &[usize], b: &[usize]| a.iter().zip(b).filter(|(p, q)| p != q).count();
        assert!(moved(&left, &middle) > 16, "{left:?}\n{middle:?}");
        assert!(moved(&middle, &right) > 16, "{middle:?}\n{right:?}");
        // Turned to one side the boundary is tilted one way, to the other side the other way.
        let slope = |b: &[usize]| b[50] as f32 - b[13] as f32;
        assert!(slope(&left) * slope(&right) < 0.0, "{left:?}\n{right:?}");
    }

    #[test]
    fn rendering_is_deterministic() {
        for index in [0, 123_456, LEN - 1] {
            assert_eq!(Scenes.image(index).unwrap(), Scenes.image(index).unwrap());
        }
    }
}
