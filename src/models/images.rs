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
