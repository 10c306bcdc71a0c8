//! sha256 digests, checked while the content streams.

use std::io::Read;

use sha2::{Digest as _, Sha256};

use super::ImageError;

/// A `sha256:<64 hex>` digest, validated (it names files in the store).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; nothing else is accepted.
    ///
    /// ```
    /// let d = rcrun::image::Digest::parse(
    ///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    /// )?;
    /// assert_eq!(&d.hex()[..4], "e3b0");
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError::Reference`] for any other form.
    pub fn parse(s: &str) -> Result<Digest, ImageError> {
        let ok = s.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Digest(s.to_string()))
        } else {
            Err(ImageError::Reference {
                reference: s.to_string(),
                why: "not a sha256 digest (sha256:<64 lowercase hex>)".into(),
            })
        }
    }

    /// An oci-spec descriptor's digest, held to the same form.
    pub(crate) fn from_oci(d: &oci_spec::image::Digest) -> Result<Digest, ImageError> {
        Digest::parse(d.as_ref())
    }

    /// The digest of `bytes`.
    ///
    /// ```
    /// let d = rcrun::image::Digest::of(b"");
    /// assert!(d.as_str().starts_with("sha256:e3b0c442"));
    /// ```
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{:x}", Sha256::digest(bytes)))
    }

    /// The 64 hex characters.
    ///
    /// ```
    /// assert_eq!(rcrun::image::Digest::of(b"").hex().len(), 64);
    /// ```
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// `sha256:<hex>`.
    ///
    /// ```
    /// assert!(rcrun::image::Digest::of(b"x").as_str().starts_with("sha256:"));
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reader that hashes and counts what passes through it.
pub(crate) struct Hashing<R> {
    inner: R,
    hash: Sha256,
    n: u64,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            n: 0,
        }
    }

    /// Reads what is left (a tar's padding, a gzip trailer), then
    /// returns the digest and the byte count.
    pub(crate) fn finish(mut self) -> std::io::Result<(Digest, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok((Digest(format!("sha256:{:x}", self.hash.finalize())), self.n))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// Checks `got` against the descriptor's digest and size.
pub(crate) fn verify(
    want: &Digest,
    want_size: Option<u64>,
    got: &Digest,
    got_size: u64,
) -> Result<(), ImageError> {
    if let Some(s) = want_size.filter(|&s| s != got_size) {
        return Err(ImageError::Mismatch {
            digest: want.to_string(),
            what: "size",
            expected: s.to_string(),
            actual: got_size.to_string(),
        });
    }
    if got != want {
        return Err(ImageError::Mismatch {
            digest: want.to_string(),
            what: "sha256",
            expected: want.to_string(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_with_64_lowercase_hex_parses() {
        let h = "a".repeat(64);
        assert!(Digest::parse(&format!("sha256:{h}")).is_ok());
        for bad in [
            format!("sha512:{h}"),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:../{}", "a".repeat(61)),
            h.clone(),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashing_reader_counts_and_hashes_all_of_the_stream() {
        let mut r = Hashing::new(&b"hello world"[..]);
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of(b"hello world"));
        assert!(verify(&d, Some(11), &d, 11).is_ok());
        let e = verify(&d, Some(12), &d, 11).unwrap_err().to_string();
        assert!(e.contains("size is 11, the descriptor says 12"), "{e}");
    }
}
