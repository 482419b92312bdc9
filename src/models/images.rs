//! Conversions between image tensors (n, c, h, w) with values in [0, 1] and [`Image`]s.

use crate::Result;
use crate::data::Image;
use candle_core::{DType, Tensor};

/// Splits an (n, c, h, w) tensor into images (values clamped to [0, 1]).
pub fn to_images(t: &Tensor) -> Result<Vec<Image>> {
    let (n, c, h, w) = t.dims4()?;
    let flat = t
        .to_dtype(DType::F32)?
        .clamp(0f32, 1f32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let per = c * h * w;
    Ok((0..n)
        .map(|i| Image {
            channels: c,
            height: h,
            width: w,
            data: flat[i * per..(i + 1) * per].to_vec(),
        })
        .collect())
}

/// Latent codes decoded at once by [`decode_images`]: large enough to keep the
/// convolutions efficient, small enough that the activations of one chunk stay small.
pub const DECODE_CHUNK: usize = 32;

/// Decodes the rows of `z` (n, d) into images, [`DECODE_CHUNK`] codes at a time, so the
/// memory of a long strip or a large grid grows with its pictures, not with the network's
/// activations for every code at once.
pub fn decode_images(g: &dyn crate::models::Generator, z: &Tensor) -> Result<Vec<Image>> {
    let n = z.dim(0)?;
    let mut images = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let len = DECODE_CHUNK.min(n - start);
        let chunk = z.narrow(0, start, len)?.to_dtype(DType::F32)?;
        images.extend(to_images(&g.decode(&chunk)?)?);
        start += len;
    }
    Ok(images)
}

/// Bytes of memory to make a grid of `n` images of `channels`×`h`×`w` in `cols` columns,
/// upscaled by `scale`, and write it as PNG: the tiles, the grid, its upscaled copy (f32),
/// the RGB8 pixels and the encoded file. Saturates instead of overflowing.
pub fn grid_bytes(n: usize, cols: usize, channels: usize, h: usize, w: usize, scale: usize) -> u64 {
    use crate::limits::product;
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let pad = 2;
    let gh = (rows * (h + pad)) as u128;
    let gw = (cols * (w + pad)) as u128;
    let grid = gh.saturating_mul(gw);
    let up = grid.saturating_mul(product(&[scale, scale]));
    let floats = product(&[n, channels, h, w])
        .saturating_add(grid.saturating_mul(channels as u128))
        .saturating_add(up.saturating_mul(channels as u128));
    let bytes = floats
        .saturating_mul(4)
        .saturating_add(up.saturating_mul(3 * 2));
    u64::try_from(bytes).unwrap_or(u64::MAX)
}
