//! GIF comments: latentflow marks every GIF it writes with a comment ([`super::MARK`]) and
//! may embed the app state in another, both before the first image; reading them looks
//! only at that head of the file, with a bounded read.

use super::input;
use crate::limits::MAX_STATE_BYTES;
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The comment extensions (label 0xFE) before the first image of the GIF at `path`.
pub fn read_comments(path: &Path) -> Result<Vec<Vec<u8>>> {
    let (file, _) = input::open_regular(path, u64::MAX, "GIF file")?;
    // Header, screen descriptor, a colour table of at most 768 bytes, then the comments.
    let mut head = Vec::new();
    file.take(MAX_STATE_BYTES + 1024)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    comments_in(&head).ok_or_else(|| Error::dataset(path, "not a GIF file (or a damaged one)"))
}

/// The comments before the first image of a GIF held (at least up to that image) in
/// `bytes`; `None` when the bytes are not a GIF.
fn comments_in(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    if bytes.len() < 13 || !bytes.starts_with(b"GIF8") {
        return None;
    }
    let flags = bytes[10];
    let mut pos = 13
        + if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        };
    let mut comments = Vec::new();
    while let Some(&block) = bytes.get(pos) {
        if block != 0x21 {
            break; // an image or the trailer: comments come first
        }
        let label = *bytes.get(pos + 1)?;
        pos += 2;
        let mut data = Vec::new();
        loop {
            let len = *bytes.get(pos)? as usize;
            pos += 1;
            if len == 0 {
                break;
            }
            data.extend_from_slice(bytes.get(pos..pos + len)?);
            pos += len;
        }
        if label == 0xFE {
            comments.push(data);
        }
    }
    Some(comments)
}

/// Whether the GIF at `path` carries latentflow's mark (or an embedded state, which only
/// latentflow writes).
pub fn is_marked(path: &Path) -> bool {
    read_comments(path).is_ok_and(|comments| {
        comments.iter().any(|c| {
            c.as_slice() == super::MARK.as_bytes() || c.starts_with(STATE_PREFIX.as_bytes())
        })
    })
}

/// Prefix of the comment that holds the embedded app state.
pub const STATE_PREFIX: &str = "latentflow-state:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_before_the_first_image_are_found() {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[1, 0, 1, 0, 0, 0, 0]); // 1×1, no colour table
        gif.extend_from_slice(&[0x21, 0xFE, 3, b'a', b'b', b'c', 0]);
        gif.extend_from_slice(&[0x21, 0xF9, 4, 0, 0, 0, 0, 0]); // graphic control
        gif.extend_from_slice(&[0x21, 0xFE, 2, b'x', b'y', 1, b'z', 0]);
        gif.push(0x3B);
        assert_eq!(
            comments_in(&gif),
            Some(vec![b"abc".to_vec(), b"xyz".to_vec()])
        );
        assert_eq!(comments_in(&gif[..17]), None, "cut inside a comment");
        assert_eq!(comments_in(b"PNG...."), None);
    }
}
