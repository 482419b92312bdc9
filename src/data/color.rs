//! Colour conversions between RGB and HSV, all components in [0, 1] (hue in turns). Used by
//! the hue-shift transform and to colour the procedural scenes.

/// Converts hue (turns, any real: it wraps), saturation and value to RGB.
pub fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> [f32; 3] {
    let h = hue.rem_euclid(1.0) * 6.0;
    let s = saturation.clamp(0.0, 1.0);
    let v = value.clamp(0.0, 1.0);
    let sector = h.floor();
    let f = h - sector;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match sector as u32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Converts RGB to `[hue, saturation, value]`, hue in turns in [0, 1). Greys have hue 0.
pub fn rgb_to_hsv([r, g, b]: [f32; 3]) -> [f32; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let saturation = if max > 0.0 { delta / max } else { 0.0 };
    if delta <= 0.0 {
        return [0.0, saturation, max];
    }
    let sector = if max == r {
        ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        (b - r) / delta + 2.0
    } else {
        (r - g) / delta + 4.0
    };
    [(sector / 6.0).rem_euclid(1.0), saturation, max]
}

/// Rotates the hue of an RGB colour by `turns`, keeping saturation and value.
pub fn shift_hue(rgb: [f32; 3], turns: f32) -> [f32; 3] {
    let [h, s, v] = rgb_to_hsv(rgb);
    hsv_to_rgb(h + turns, s, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f32; 3], b: [f32; 3]) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn primaries() {
        assert!(close(hsv_to_rgb(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]));
        assert!(close(hsv_to_rgb(1.0 / 3.0, 1.0, 1.0), [0.0, 1.0, 0.0]));
        assert!(close(hsv_to_rgb(2.0 / 3.0, 1.0, 1.0), [0.0, 0.0, 1.0]));
        assert!(close(hsv_to_rgb(1.0, 1.0, 1.0), [1.0, 0.0, 0.0]));
        assert!(close(hsv_to_rgb(-0.5, 0.0, 0.5), [0.5, 0.5, 0.5]));
    }

    #[test]
    fn round_trip() {
        for i in 0..50 {
            let hsv = [
                i as f32 / 50.0,
                0.3 + 0.01 * i as f32,
                0.9 - 0.01 * i as f32,
            ];
            let back = rgb_to_hsv(hsv_to_rgb(hsv[0], hsv[1], hsv[2]));
            assert!(close(back, hsv), "{hsv:?} -> {back:?}");
        }
        let shifted = shift_hue([1.0, 0.0, 0.0], 0.5);
        assert!(close(shifted, [0.0, 1.0, 1.0]), "{shifted:?}");
    }
}
