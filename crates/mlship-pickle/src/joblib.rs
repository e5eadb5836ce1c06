//! joblib containers: detect the compressor, decompress within a size budget, hand the stream to the VM.

use std::io::Read;

use crate::error::{Error, Result};

/// The compression joblib used for a file, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib,
    Gzip,
    Bz2,
    Xz,
    Lzma,
    Lz4,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Zlib => "zlib",
            Compression::Gzip => "gzip",
            Compression::Bz2 => "bz2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Lz4 => "lz4",
        }
    }
}

/// Detects joblib's compressors by their magic bytes (joblib's `_detect_compressor`).
pub fn detect(b: &[u8]) -> Option<Compression> {
    Some(match b {
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => Compression::Zlib,
        [0x1f, 0x8b, 0x08, ..] => Compression::Gzip,
        [b'B', b'Z', b'h', ..] => Compression::Bz2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
        [0x5d, 0x00, ..] => Compression::Lzma,
        [0x04, 0x22, 0x4d, 0x18, ..] => Compression::Lz4,
        [0x80, 0..=5, ..] => Compression::None,
        _ => return None,
    })
}

/// How much a compressed model may expand: `max(64 MiB, 1024 x its size)`, never past 4 GiB.
pub fn default_budget(compressed_len: usize) -> usize {
    (64usize << 20)
        .max(compressed_len.saturating_mul(1024))
        .min(4usize << 30)
}

/// Reads at most `budget` bytes; more than that is a decompression bomb.
fn read_bounded(mut r: impl Read, budget: usize, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let limit = u64::try_from(budget).unwrap_or(u64::MAX).saturating_add(1);
    (&mut r)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::Malformed {
            format: "joblib",
            offset: 0,
            message: format!("{what} stream: {e}"),
        })?;
    if out.len() > budget {
        return Err(Error::Limit(format!(
            "{what} data expands past {budget} bytes (a decompression bomb, or raise the budget)"
        )));
    }
    Ok(out)
}

/// Decompresses a joblib file body.
pub fn decompress(b: &[u8], c: Compression, budget: usize) -> Result<Vec<u8>> {
    match c {
        Compression::None => Ok(b.to_vec()),
        Compression::Zlib => read_bounded(flate2::read::ZlibDecoder::new(b), budget, "zlib"),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(b), budget, "gzip"),
        Compression::Bz2 => read_bounded(bzip2::read::MultiBzDecoder::new(b), budget, "bz2"),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(b), budget, "lz4"),
        Compression::Xz | Compression::Lzma => {
            let mut w = BoundedWriter {
                out: Vec::new(),
                budget,
            };
            let mut input = std::io::BufReader::new(b);
            let r = if c == Compression::Xz {
                lzma_rs::xz_decompress(&mut input, &mut w)
            } else {
                lzma_rs::lzma_decompress(&mut input, &mut w)
            };
            match r {
                Ok(()) => Ok(w.out),
                Err(_) if w.out.len() > w.budget => Err(Error::Limit(format!(
                    "{} data expands past {budget} bytes (a decompression bomb, or raise the budget)",
                    c.name()
                ))),
                Err(e) => Err(Error::Malformed {
                    format: "joblib",
                    offset: 0,
                    message: format!("{} stream: {e:?}", c.name()),
                }),
            }
        }
    }
}

struct BoundedWriter {
    out: Vec<u8>,
    budget: usize,
}

impl std::io::Write for BoundedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.budget {
            self.out.resize(self.budget + 1, 0);
            return Err(std::io::Error::other("decompression budget exceeded"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn zlib_bomb_is_refused_within_budget() {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 10 << 20]).unwrap();
        let small = e.finish().unwrap();
        let err = decompress(&small, Compression::Zlib, 1 << 20).unwrap_err();
        assert!(matches!(err, Error::Limit(_)), "{err}");
    }
}
