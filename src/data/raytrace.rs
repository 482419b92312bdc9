//! A minimal analytic ray tracer for the procedural scenes: a 3-vector type and ray
//! intersections with a sphere, an axis-aligned box, a vertical capped cylinder and a
//! vertical capsule. Rays are `origin + t·direction` with a unit `direction`; every
//! function returns the nearest hit with t > [`EPSILON`] and the outward unit normal there.

use std::ops::{Add, Mul, Neg, Sub};

/// Hits closer than this along a ray are ignored (so a ray leaving a surface misses it).
pub const EPSILON: f32 = 1e-4;

/// A point or direction in the scene (y up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vec3 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

impl Vec3 {
    pub const fn new(x: f32, y: f32, z: f32) -> Self {
        Self { x, y, z }
    }

    #[inline]
    pub fn dot(self, o: Vec3) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }

    #[inline]
    pub fn cross(self, o: Vec3) -> Vec3 {
        Vec3::new(
            self.y * o.z - self.z * o.y,
            self.z * o.x - self.x * o.z,
            self.x * o.y - self.y * o.x,
        )
    }

    /// The unit vector along `self` (`self` must not be zero).
    #[inline]
    pub fn normalize(self) -> Vec3 {
        self * (1.0 / self.dot(self).sqrt())
    }
}

impl Add for Vec3 {
    type Output = Vec3;
    #[inline]
    fn add(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}

impl Sub for Vec3 {
    type Output = Vec3;
    #[inline]
    fn sub(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}

impl Mul<f32> for Vec3 {
    type Output = Vec3;
    #[inline]
    fn mul(self, s: f32) -> Vec3 {
        Vec3::new(self.x * s, self.y * s, self.z * s)
    }
}

impl Neg for Vec3 {
    type Output = Vec3;
    #[inline]
    fn neg(self) -> Vec3 {
        Vec3::new(-self.x, -self.y, -self.z)
    }
}

/// Where a ray meets a surface.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Distance along the (unit) ray direction.
    pub t: f32,
    /// Outward unit normal at the hit point.
    pub normal: Vec3,
}

/// The nearer of two optional hits.
#[inline]
fn nearer(a: Option<Hit>, b: Option<Hit>) -> Option<Hit> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.t < a.t { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Whether the ray passes within `radius` of `centre` ahead of its origin (a cheap
/// bounding-sphere rejection test).
#[inline]
pub fn passes_near(origin: Vec3, dir: Vec3, centre: Vec3, radius: f32) -> bool {
    let oc = origin - centre;
    let b = oc.dot(dir);
    let c = oc.dot(oc) - radius * radius;
    c <= 0.0 || (b < 0.0 && b * b >= c)
}

/// The sphere of `radius` around `centre`.
#[inline]
pub fn sphere(origin: Vec3, dir: Vec3, centre: Vec3, radius: f32) -> Option<Hit> {
    let oc = origin - centre;
    let b = oc.dot(dir);
    let c = oc.dot(oc) - radius * radius;
    let disc = b * b - c;
    if disc < 0.0 {
        return None;
    }
    let root = disc.sqrt();
    let t = if -b - root > EPSILON {
        -b - root
    } else {
        -b + root
    };
    (t > EPSILON).then(|| Hit {
        t,
        normal: (origin + dir * t - centre) * (1.0 / radius),
    })
}

/// The axis-aligned box from `min` to `max` (slab method).
#[inline]
pub fn aabb(origin: Vec3, dir: Vec3, min: Vec3, max: Vec3) -> Option<Hit> {
    let mut t_near = f32::NEG_INFINITY;
    let mut t_far = f32::INFINITY;
    let mut normal = Vec3::new(0.0, 0.0, 0.0);
    let axes = [
        (origin.x, dir.x, min.x, max.x, Vec3::new(1.0, 0.0, 0.0)),
        (origin.y, dir.y, min.y, max.y, Vec3::new(0.0, 1.0, 0.0)),
        (origin.z, dir.z, min.z, max.z, Vec3::new(0.0, 0.0, 1.0)),
    ];
    for (o, d, lo, hi, axis) in axes {
        if d.abs() < 1e-12 {
            if o < lo || o > hi {
                return None;
            }
            continue;
        }
        let inv = 1.0 / d;
        let (t0, t1) = ((lo - o) * inv, (hi - o) * inv);
        let (t_in, t_out) = if t0 < t1 { (t0, t1) } else { (t1, t0) };
        if t_in > t_near {
            t_near = t_in;
            // Entering through the low face means the normal points down the axis.
            normal = if d > 0.0 { -axis } else { axis };
        }
        t_far = t_far.min(t_out);
    }
    (t_near <= t_far && t_near > EPSILON).then_some(Hit { t: t_near, normal })
}

/// The side of the infinite vertical cylinder of `radius` around the y axis, restricted to
/// heights `y0..=y1`.
#[inline]
fn tube(origin: Vec3, dir: Vec3, radius: f32, y0: f32, y1: f32) -> Option<Hit> {
    let a = dir.x * dir.x + dir.z * dir.z;
    if a < 1e-12 {
        return None;
    }
    let b = origin.x * dir.x + origin.z * dir.z;
    let c = origin.x * origin.x + origin.z * origin.z - radius * radius;
    let disc = b * b - a * c;
    if disc < 0.0 {
        return None;
    }
    let t = (-b - disc.sqrt()) / a;
    let p = origin + dir * t;
    (t > EPSILON && p.y >= y0 && p.y <= y1).then(|| Hit {
        t,
        normal: Vec3::new(p.x / radius, 0.0, p.z / radius),
    })
}

/// A horizontal disc of `radius` around the y axis at height `y`, facing `up` or down.
#[inline]
fn disc(origin: Vec3, dir: Vec3, radius: f32, y: f32, up: bool) -> Option<Hit> {
    if dir.y.abs() < 1e-12 {
        return None;
    }
    let t = (y - origin.y) / dir.y;
    let p = origin + dir * t;
    let normal = Vec3::new(0.0, if up { 1.0 } else { -1.0 }, 0.0);
    (t > EPSILON && p.x * p.x + p.z * p.z <= radius * radius).then_some(Hit { t, normal })
}

/// The closed vertical cylinder of `radius` around the y axis from height `y0` to `y1`.
#[inline]
pub fn cylinder(origin: Vec3, dir: Vec3, radius: f32, y0: f32, y1: f32) -> Option<Hit> {
    let side = tube(origin, dir, radius, y0, y1);
    let cap = if dir.y < 0.0 {
        disc(origin, dir, radius, y1, true)
    } else {
        disc(origin, dir, radius, y0, false)
    };
    nearer(side, cap)
}

/// The vertical capsule: all points within `radius` of the segment of the y axis from
/// height `y0` to `y1` (a cylinder closed by two hemispheres).
#[inline]
pub fn capsule(origin: Vec3, dir: Vec3, radius: f32, y0: f32, y1: f32) -> Option<Hit> {
    let side = tube(origin, dir, radius, y0, y1);
    let bottom = sphere(origin, dir, Vec3::new(0.0, y0, 0.0), radius);
    let top = sphere(origin, dir, Vec3::new(0.0, y1, 0.0), radius);
    nearer(nearer(side, bottom), top)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOWN: Vec3 = Vec3::new(0.0, -1.0, 0.0);

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn sphere_hits_front_and_misses_beside() {
        let o = Vec3::new(0.0, 0.0, 5.0);
        let d = Vec3::new(0.0, 0.0, -1.0);
        let hit = sphere(o, d, Vec3::new(0.0, 0.0, 0.0), 1.0).unwrap();
        assert!(close(hit.t, 4.0) && close(hit.normal.z, 1.0));
        assert!(sphere(o, d, Vec3::new(1.5, 0.0, 0.0), 1.0).is_none());
        assert!(passes_near(o, d, Vec3::new(0.9, 0.0, 0.0), 1.0));
        assert!(!passes_near(o, d, Vec3::new(1.1, 0.0, 0.0), 1.0));
        assert!(!passes_near(o, -d, Vec3::new(0.0, 0.0, 0.0), 1.0));
    }

    #[test]
    fn box_faces_have_the_right_normals() {
        let (min, max) = (Vec3::new(-1.0, 0.0, -1.0), Vec3::new(1.0, 2.0, 1.0));
        let top = aabb(Vec3::new(0.2, 5.0, 0.3), DOWN, min, max).unwrap();
        assert!(close(top.t, 3.0) && close(top.normal.y, 1.0));
        let dir = Vec3::new(-1.0, 0.0, 0.0);
        let side = aabb(Vec3::new(4.0, 1.0, 0.0), dir, min, max).unwrap();
        assert!(close(side.t, 3.0) && close(side.normal.x, 1.0));
        assert!(aabb(Vec3::new(4.0, 2.5, 0.0), dir, min, max).is_none());
    }

    #[test]
    fn cylinder_and_capsule_differ_at_the_top() {
        // Straight down at 0.9 of the radius: the cylinder's flat cap is at y = 2, the
        // capsule's hemisphere is lower there.
        let o = Vec3::new(0.9, 5.0, 0.0);
        let cyl = cylinder(o, DOWN, 1.0, 0.0, 2.0).unwrap();
        assert!(close(cyl.t, 3.0) && close(cyl.normal.y, 1.0));
        let cap = capsule(o, DOWN, 1.0, 0.0, 2.0).unwrap();
        let y = 5.0 - cap.t;
        assert!(close(y, 2.0 + (1.0f32 - 0.81).sqrt()), "{y}");
        let dir = Vec3::new(-1.0, 0.0, 0.0);
        let side = cylinder(Vec3::new(5.0, 1.0, 0.0), dir, 1.0, 0.0, 2.0).unwrap();
        assert!(close(side.t, 4.0) && close(side.normal.x, 1.0));
        assert!(cylinder(Vec3::new(5.0, 2.5, 0.0), dir, 1.0, 0.0, 2.0).is_none());
        assert!(capsule(Vec3::new(5.0, 2.5, 0.0), dir, 1.0, 0.0, 2.0).is_some());
    }
}
