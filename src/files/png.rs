//! PNG files as latentflow writes and reads them: 8-bit RGB, always marked with the
//! `Software` text [`super::MARK`], optionally carrying more text (the app state); reading
//! looks only at the text chunks before the image data, with the decoder's allocations
//! and every text's decompressed size bounded.

use super::{MARK, input};
use crate::limits::MAX_STATE_BYTES;
use crate::{Error, Result};
use std::path::Path;

/// PNG text keyword of latentflow's mark.
pub const SOFTWARE_KEYWORD: &str = "Software";

fn encoder_error(e: impl std::fmt::Display) -> Error {
    Error::config(format!("PNG encoder: {e}"))
}

/// Encodes a `width`×`height` RGB8 picture (`rgb` row-major, 3 bytes a pixel) as PNG with
/// latentflow's mark and each (keyword, text) of `texts` as an iTXt chunk.
pub fn encode_rgb8(
    width: usize,
    height: usize,
    rgb: &[u8],
    texts: &[(&str, &str)],
) -> Result<Vec<u8>> {
    let too_big = || Error::Limit(format!("a {width}×{height} picture is too large for PNG"));
    let (w, h) = (
        u32::try_from(width).map_err(|_| too_big())?,
        u32::try_from(height).map_err(|_| too_big())?,
    );
    if rgb.len() != width * height * 3 {
        return Err(Error::config(format!(
            "{} bytes for a {width}×{height} RGB picture",
            rgb.len()
        )));
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.add_text_chunk(SOFTWARE_KEYWORD.into(), MARK.into())
            .map_err(encoder_error)?;
        for (keyword, text) in texts {
            enc.add_itxt_chunk((*keyword).into(), (*text).into())
                .map_err(encoder_error)?;
        }
        let mut writer = enc.write_header().map_err(encoder_error)?;
        writer.write_image_data(rgb).map_err(encoder_error)?;
        writer.finish().map_err(encoder_error)?;
    }
    Ok(bytes)
}

/// The (keyword, text) pairs of the text chunks before the image data of the PNG file at
/// `path`. Fails on a file that is not a PNG, or whose text exceeds the limits.
pub fn read_texts(path: &Path) -> Result<Vec<(String, String)>> {
    let (file, _) = input::open_regular(path, u64::MAX, "PNG file")?;
    let limits = png::Limits {
        bytes: 2 * MAX_STATE_BYTES as usize,
    };
    let decoder = png::Decoder::new_with_limits(std::io::BufReader::new(file), limits);
    let reader = decoder
        .read_info()
        .map_err(|e| Error::dataset(path, format!("not a PNG (or a damaged one): {e}")))?;
    let info = reader.info();
    let mut texts: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|c| (c.keyword.clone(), c.text.clone()))
        .collect();
    for chunk in &info.utf8_text {
        let mut chunk = chunk.clone();
        chunk
            .decompress_text_with_limit(MAX_STATE_BYTES as usize)
            .map_err(|e| Error::dataset(path, format!("PNG text '{}': {e}", chunk.keyword)))?;
        let text = chunk
            .get_text()
            .map_err(|e| Error::dataset(path, format!("PNG text '{}': {e}", chunk.keyword)))?;
        texts.push((chunk.keyword.clone(), text));
    }
    Ok(texts)
}

/// Whether the PNG at `path` was written by latentflow (it carries the mark).
pub fn is_marked(path: &Path) -> bool {
    read_texts(path).is_ok_and(|texts| {
        texts
            .iter()
            .any(|(k, t)| k == SOFTWARE_KEYWORD && t == MARK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_pngs_round_trip_their_texts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|i| i as u8 * 10).collect();
        let bytes = encode_rgb8(3, 2, &rgb, &[("state", "{\"a\":1}")]).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let decoded = ::image::open(&path).unwrap().to_rgb8();
        assert_eq!(decoded.as_raw(), &rgb);
        let texts = read_texts(&path).unwrap();
        assert!(texts.contains(&("Software".into(), "latentflow".into())));
        assert!(texts.contains(&("state".into(), "{\"a\":1}".into())));
        assert!(is_marked(&path));
        ::image::RgbImage::new(2, 2).save(&path).unwrap();
        assert!(!is_marked(&path));
        std::fs::write(&path, b"not a png").unwrap();
        assert!(!is_marked(&path));
        assert!(encode_rgb8(3, 2, &rgb[1..], &[]).is_err());
    }
}
