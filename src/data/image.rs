//! [`Image`]: a small float image, channel-major (CHW) with values in [0, 1], the form in
//! which every dataset hands out its pictures; plus conversion to and from the `image`
//! crate, resampling, PNG output and [`grid`] for contact sheets.

use crate::{Error, Result};
use ::image::imageops::FilterType;
use ::image::{DynamicImage, RgbImage};
use std::path::Path;

/// Grey level of the padding between the tiles of a [`grid`].
pub const GRID_BACKGROUND: f32 = 0.5;

/// A float image of `channels` planes of `height`×`width` pixels, stored channel-major:
/// the value of channel `c` at row `y`, column `x` is `data[(c * height + y) * width + x]`.
/// Values are in [0, 1]; 1 channel is grey, 3 are RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Number of channels: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Number of rows.
    pub height: usize,
    /// Number of columns.
    pub width: usize,
    /// `channels * height * width` values, channel-major.
    pub data: Vec<f32>,
}

impl Image {
    /// An all-black image.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
            data: vec![0.0; channels * height * width],
        }
    }

    /// Wraps existing channel-major data, checking its length.
    pub fn from_data(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != channels * height * width {
            return Err(Error::config(format!(
                "image data has {} values, expected {channels}×{height}×{width} = {}",
                data.len(),
                channels * height * width
            )));
        }
        Ok(Self {
            channels,
            height,
            width,
            data,
        })
    }

    /// Offset of a value in [`Image::data`].
    #[inline]
    fn offset(&self, c: usize, y: usize, x: usize) -> usize {
        (c * self.height + y) * self.width + x
    }

    /// The value of channel `c` at row `y`, column `x`.
    ///
    /// # Panics
    /// If the position is outside the image.
    #[inline]
    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[self.offset(c, y, x)]
    }

    /// Sets the value of channel `c` at row `y`, column `x`.
    ///
    /// # Panics
    /// If the position is outside the image.
    #[inline]
    pub fn set(&mut self, c: usize, y: usize, x: usize, value: f32) {
        let offset = self.offset(c, y, x);
        self.data[offset] = value;
    }

    /// One channel as a `height * width` slice.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[c * n..(c + 1) * n]
    }

    /// The RGB colour at a pixel (grey replicated).
    #[inline]
    pub fn rgb(&self, y: usize, x: usize) -> [f32; 3] {
        if self.channels >= 3 {
            [self.get(0, y, x), self.get(1, y, x), self.get(2, y, x)]
        } else {
            let v = self.get(0, y, x);
            [v, v, v]
        }
    }

    /// Converts to an 8-bit RGB image (grey is replicated to all three channels; values are
    /// clamped to [0, 1] and rounded).
    pub fn to_rgb8(&self) -> RgbImage {
        let mut out = RgbImage::new(self.width as u32, self.height as u32);
        for (x, y, pixel) in out.enumerate_pixels_mut() {
            let rgb = self.rgb(y as usize, x as usize);
            pixel.0 = rgb.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
        out
    }

    /// Converts a decoded picture: crops the largest centred square, resizes it to
    /// `size`×`size` with a triangle (bilinear) filter and keeps `channels` channels
    /// (1: luma, 3: RGB; alpha is dropped).
    pub fn from_dynamic(picture: &DynamicImage, channels: usize, size: usize) -> Result<Self> {
        if channels != 1 && channels != 3 {
            return Err(Error::config(format!(
                "images have 1 or 3 channels, not {channels}"
            )));
        }
        if size == 0 {
            return Err(Error::config("image size must be at least 1"));
        }
        let (w, h) = (picture.width(), picture.height());
        if w == 0 || h == 0 {
            return Err(Error::config("cannot use an empty (0-pixel) image"));
        }
        let side = w.min(h);
        let square = picture.crop_imm((w - side) / 2, (h - side) / 2, side, side);
        let resized = if side as usize == size {
            square
        } else {
            square.resize_exact(size as u32, size as u32, FilterType::Triangle)
        };
        let mut image = Image::new(channels, size, size);
        if channels == 1 {
            for (x, y, pixel) in resized.to_luma8().enumerate_pixels() {
                image.set(0, y as usize, x as usize, f32::from(pixel.0[0]) / 255.0);
            }
        } else {
            for (x, y, pixel) in resized.to_rgb8().enumerate_pixels() {
                for (c, &v) in pixel.0.iter().enumerate() {
                    image.set(c, y as usize, x as usize, f32::from(v) / 255.0);
                }
            }
        }
        Ok(image)
    }

    /// The image as 8-bit RGB PNG bytes, marked as latentflow's, with each (keyword, text)
    /// of `texts` in an iTXt chunk.
    pub fn to_png(&self, texts: &[(&str, &str)]) -> Result<Vec<u8>> {
        let rgb = self.to_rgb8();
        crate::files::png::encode_rgb8(self.width, self.height, rgb.as_raw(), texts)
    }

    /// Writes the image as an 8-bit RGB PNG file, atomically (see [`crate::files`]).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        crate::files::atomic::write(path, &self.to_png(&[])?)
    }

    /// Enlarges the image by an integer factor, each pixel becoming a `factor`×`factor`
    /// block (a factor of 0 is treated as 1).
    pub fn upscale_nearest(&self, factor: usize) -> Image {
        let factor = factor.max(1);
        let mut out = Image::new(self.channels, self.height * factor, self.width * factor);
        for c in 0..self.channels {
            for y in 0..out.height {
                let src = &self.data[self.offset(c, y / factor, 0)..][..self.width];
                let start = out.offset(c, y, 0);
                let row = &mut out.data[start..start + out.width];
                for (x, v) in row.iter_mut().enumerate() {
                    *v = src[x / factor];
                }
            }
        }
        out
    }

    /// Bilinear sample of channel `c` at the continuous position (`y`, `x`), pixel centres
    /// at integer coordinates. Pixels outside the image count as 0 (black), so content
    /// fades out over the half pixel beyond the border.
    #[inline]
    pub fn sample_bilinear(&self, c: usize, y: f32, x: f32) -> f32 {
        let (y0, x0) = (y.floor(), x.floor());
        let (fy, fx) = (y - y0, x - x0);
        let (y0, x0) = (y0 as isize, x0 as isize);
        let plane = self.plane(c);
        let at = |yy: isize, xx: isize| -> f32 {
            if yy < 0 || xx < 0 || yy >= self.height as isize || xx >= self.width as isize {
                0.0
            } else {
                plane[yy as usize * self.width + xx as usize]
            }
        };
        let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1) * fx;
        let bottom = at(y0 + 1, x0) * (1.0 - fx) + at(y0 + 1, x0 + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    /// Resizes to `height`×`width` by bilinear interpolation (pixel centres aligned, edges
    /// clamped). Meant for enlarging; shrinking by more than 2× aliases.
    pub fn resize_bilinear(&self, height: usize, width: usize) -> Image {
        let mut out = Image::new(self.channels, height, width);
        if self.height == 0 || self.width == 0 {
            return out;
        }
        let axis = |n_out: usize, n_in: usize| -> Vec<(usize, usize, f32)> {
            let scale = n_in as f32 / n_out as f32;
            (0..n_out)
                .map(|i| {
                    let pos = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (n_in - 1) as f32);
                    let lo = pos.floor() as usize;
                    let hi = (lo + 1).min(n_in - 1);
                    (lo, hi, pos - lo as f32)
                })
                .collect()
        };
        let ys = axis(height, self.height);
        let xs = axis(width, self.width);
        for c in 0..self.channels {
            let plane = self.plane(c);
            for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
                let (r0, r1) = (&plane[y0 * self.width..], &plane[y1 * self.width..]);
                for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
                    let top = r0[x0] * (1.0 - fx) + r0[x1] * fx;
                    let bottom = r1[x0] * (1.0 - fx) + r1[x1] * fx;
                    out.set(c, y, x, top * (1.0 - fy) + bottom * fy);
                }
            }
        }
        out
    }
}

/// Tiles `images` (all of one shape) row by row into a grid of `cols` columns with `pad`
/// pixels of grey ([`GRID_BACKGROUND`]) between neighbouring tiles (none around the
/// border). Cells after the last image stay grey.
pub fn grid(images: &[Image], cols: usize, pad: usize) -> Result<Image> {
    let Some(first) = images.first() else {
        return Err(Error::config("cannot make a grid of no images"));
    };
    if cols == 0 {
        return Err(Error::config("a grid needs at least one column"));
    }
    let (channels, h, w) = (first.channels, first.height, first.width);
    if let Some(odd) = images
        .iter()
        .find(|i| (i.channels, i.height, i.width) != (channels, h, w))
    {
        return Err(Error::config(format!(
            "grid images must share one shape: {channels}×{h}×{w} and {}×{}×{}",
            odd.channels, odd.height, odd.width
        )));
    }
    let cols = cols.min(images.len());
    let rows = images.len().div_ceil(cols);
    let mut out = Image::new(
        channels,
        rows * h + (rows - 1) * pad,
        cols * w + (cols - 1) * pad,
    );
    out.data.fill(GRID_BACKGROUND);
    for (i, image) in images.iter().enumerate() {
        let (top, left) = ((i / cols) * (h + pad), (i % cols) * (w + pad));
        for c in 0..channels {
            for y in 0..h {
                let src = &image.data[image.offset(c, y, 0)..][..w];
                let start = out.offset(c, top + y, left);
                out.data[start..start + w].copy_from_slice(src);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(channels: usize, h: usize, w: usize) -> Image {
        let n = channels * h * w;
        Image::from_data(
            channels,
            h,
            w,
            (0..n).map(|i| i as f32 / n as f32).collect(),
        )
        .unwrap()
    }

    #[test]
    fn layout_is_channel_major() {
        let mut image = Image::new(3, 2, 4);
        image.set(2, 1, 3, 0.5);
        assert_eq!(image.data[(2 * 2 + 1) * 4 + 3], 0.5);
        assert_eq!(image.get(2, 1, 3), 0.5);
        assert!(Image::from_data(1, 2, 2, vec![0.0; 3]).is_err());
    }

    #[test]
    fn rgb8_replicates_grey_and_rounds() {
        let mut grey = Image::new(1, 1, 2);
        grey.data = vec![0.5, 2.0];
        let rgb = grey.to_rgb8();
        assert_eq!(rgb.get_pixel(0, 0).0, [128, 128, 128]);
        assert_eq!(rgb.get_pixel(1, 0).0, [255, 255, 255]);
    }

    #[test]
    fn from_dynamic_crops_the_centre() {
        // 6 wide, 2 high: left and right thirds red, middle third green.
        let mut rgb = RgbImage::new(6, 2);
        for (x, _, p) in rgb.enumerate_pixels_mut() {
            p.0 = if (2..4).contains(&x) {
                [0, 255, 0]
            } else {
                [255, 0, 0]
            };
        }
        let image = Image::from_dynamic(&DynamicImage::ImageRgb8(rgb), 3, 2).unwrap();
        assert_eq!((image.channels, image.height, image.width), (3, 2, 2));
        assert!(image.plane(1).iter().all(|&g| g == 1.0));
        assert!(image.plane(0).iter().all(|&r| r == 0.0));
        let grey = Image::from_dynamic(&DynamicImage::ImageRgb8(RgbImage::new(5, 5)), 1, 8);
        assert_eq!(grey.unwrap().data.len(), 64);
        assert!(Image::from_dynamic(&DynamicImage::ImageRgb8(RgbImage::new(5, 5)), 2, 8).is_err());
    }

    #[test]
    fn grid_places_tiles_with_grey_padding() {
        let a = ramp(1, 2, 3);
        let mut b = Image::new(1, 2, 3);
        b.data.fill(1.0);
        let g = grid(&[a.clone(), b.clone(), a.clone()], 2, 1).unwrap();
        assert_eq!((g.height, g.width), (5, 7));
        assert_eq!(g.get(0, 1, 2), a.get(0, 1, 2));
        assert_eq!(g.get(0, 0, 3), GRID_BACKGROUND);
        assert_eq!(g.get(0, 1, 4), 1.0);
        assert_eq!(g.get(0, 2, 0), GRID_BACKGROUND);
        assert_eq!(g.get(0, 4, 2), a.get(0, 1, 2));
        assert_eq!(g.get(0, 4, 5), GRID_BACKGROUND);
        assert!(grid(&[a, Image::new(3, 2, 3)], 2, 1).is_err());
        assert!(grid(&[], 2, 1).is_err());
    }

    #[test]
    fn upscale_and_resize() {
        let image = ramp(2, 2, 3);
        let big = image.upscale_nearest(3);
        assert_eq!((big.height, big.width), (6, 9));
        assert_eq!(big.get(1, 5, 8), image.get(1, 1, 2));
        assert_eq!(big.get(1, 3, 3), image.get(1, 1, 1));
        let same = image.resize_bilinear(2, 3);
        assert_eq!(same, image);
        let mut two = Image::new(1, 1, 2);
        two.data = vec![0.0, 1.0];
        let wide = two.resize_bilinear(1, 4);
        assert_eq!(wide.data, vec![0.0, 0.25, 0.75, 1.0]);
        assert_eq!(two.sample_bilinear(0, 0.0, 0.5), 0.5);
        assert_eq!(two.sample_bilinear(0, 0.0, 1.5), 0.5);
        assert_eq!(two.sample_bilinear(0, -1.0, 0.0), 0.0);
    }

    #[test]
    fn save_png_round_trips_and_names_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let image = ramp(3, 4, 5);
        image.save_png(&path).unwrap();
        let back = ::image::open(&path).unwrap();
        let back = Image::from_dynamic(&back, 3, 4);
        // Not square: the crop keeps the middle 4 columns, so compare only the size here.
        assert_eq!(back.unwrap().data.len(), 3 * 16);
        let bad = dir.path().join("missing").join("a.png");
        let err = image.save_png(&bad).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
