//! One layer from blob to directory: decompress (gzip, zstd or none, by
//! magic number), check the blob's digest and the diffID as it streams,
//! apply. Optionally copies the blob as read (into the store).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use super::digest::{verify, Digest, Hashing};
use super::layer::{Applier, Counts, Whiteouts};
use super::source::{Files, Layer};
use super::ImageError;

/// Copies what is read into `out` too.
struct Tee<'a, R> {
    inner: R,
    out: Option<&'a mut File>,
    err: Option<std::io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(o) = self.out.as_mut() {
            if let Err(e) = o.write_all(&buf[..n]) {
                self.err = Some(e);
                self.out = None;
            }
        }
        Ok(n)
    }
}

/// Called with the number of compressed bytes read so far.
pub(crate) type Progress<'a> = &'a (dyn Fn(u64) + Sync);

struct Counting<'a, R> {
    inner: R,
    n: u64,
    progress: Option<Progress<'a>>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        if let Some(p) = self.progress {
            p(self.n);
        }
        Ok(n)
    }
}

/// Applies `layer` from `files` onto `target`, verified; with `copy`,
/// the raw blob is written there as it streams. Returns what was applied
/// and the blob's own digest and size (a docker archive's layer may be
/// compressed: then they are not its diffID's).
pub(crate) fn unpack_layer(
    files: &Files,
    layer: &Layer,
    target: &Path,
    mode: Whiteouts,
    copy: Option<&mut File>,
    progress: Option<Progress<'_>>,
) -> Result<(Counts, Digest, u64), ImageError> {
    let name = layer.name();
    let (raw, _) = files.open(&layer.member)?;
    // Never more than the descriptor says (and one byte to notice).
    let limit = layer
        .blob
        .as_ref()
        .map_or(u64::MAX, |b| b.1.saturating_add(1));
    let counted = Counting {
        inner: raw.take(limit),
        n: 0,
        progress,
    };
    let mut tee = Tee {
        inner: counted,
        out: copy,
        err: None,
    };
    let mut blob = Hashing::new(&mut tee);
    let tar_err = |source| ImageError::Tar {
        layer: name.clone(),
        source,
    };
    let counts;
    let diff;
    {
        let mut buffered = BufReader::with_capacity(256 << 10, &mut blob);
        let magic = buffered.fill_buf().map_err(tar_err)?;
        let stream: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(tar_err)?)
        } else {
            Box::new(buffered)
        };
        let mut hashed = Hashing::new(stream);
        let guarded = super::headers::Guard::new(&mut hashed);
        counts = Applier::new(target, mode, &name)?.apply(guarded)?;
        diff = hashed.finish().map_err(tar_err)?;
    }
    let (blob_digest, blob_size) = blob.finish().map_err(tar_err)?;
    if let Some(e) = tee.err.take() {
        return Err(ImageError::Io {
            path: target.to_path_buf(),
            source: e,
        });
    }
    if let Some((d, size)) = &layer.blob {
        verify(d, Some(*size), &blob_digest, blob_size)?;
    }
    if diff.0 != layer.diff_id {
        return Err(ImageError::Mismatch {
            digest: name,
            what: "diffID",
            expected: layer.diff_id.to_string(),
            actual: diff.0.to_string(),
        });
    }
    Ok((counts, blob_digest, blob_size))
}
