//! A guard in front of the tar reader: the tar crate reads a GNU long
//! name or link (`L`, `K`) and a PAX header (`x`, `g`) whole into memory
//! before anything can look at it, so a 2 MB gzip layer could make it
//! allocate gigabytes. This reader follows the stream's 512-byte blocks
//! itself and fails on such a header bigger than [`MAX_META`] before the
//! tar crate sees it.

use std::io::{Error, ErrorKind, Read};

/// The largest long name, long link or PAX header accepted.
pub(crate) const MAX_META: u64 = 1 << 20;

pub(crate) struct Guard<R> {
    inner: R,
    /// Bytes of the current header block seen so far.
    header: [u8; 512],
    filled: usize,
    /// Bytes of member data (with padding) still to pass before the
    /// next header.
    skip: u64,
    /// A PAX header's body, kept to find its `size` record.
    pax: Option<Vec<u8>>,
    /// The next member's size, as a PAX `size` record gives it.
    pax_size: Option<u64>,
}

impl<R: Read> Guard<R> {
    pub(crate) fn new(inner: R) -> Self {
        Guard {
            inner,
            header: [0; 512],
            filled: 0,
            skip: 0,
            pax: None,
            pax_size: None,
        }
    }

    /// Looks at a complete header block.
    fn header_done(&mut self) -> std::io::Result<()> {
        let h = &self.header;
        if h.iter().all(|&b| b == 0) {
            return Ok(()); // end-of-archive blocks
        }
        let kind = h[156];
        let mut size = parse_size(&h[124..136])?;
        if let Some(s) = self.pax_size.take() {
            size = s;
        }
        if matches!(kind, b'L' | b'K' | b'x' | b'g') {
            if size > MAX_META {
                return Err(Error::new(
                    ErrorKind::InvalidData,
                    format!(
                        "a tar header of type '{}' of {size} bytes (at most {MAX_META})",
                        kind as char
                    ),
                ));
            }
            if kind == b'x' {
                self.pax = Some(Vec::with_capacity(size as usize));
            }
        }
        self.skip = size.div_ceil(512) * 512;
        if kind == b'x' && size == 0 {
            self.pax = None;
        }
        Ok(())
    }

    /// Follows `buf`, which the inner reader just filled.
    fn follow(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            if self.skip > 0 {
                let n = (self.skip.min(buf.len() as u64)) as usize;
                if let Some(p) = self.pax.as_mut() {
                    let room = (MAX_META as usize).saturating_sub(p.len()).min(n);
                    p.extend_from_slice(&buf[..room]);
                }
                self.skip -= n as u64;
                buf = &buf[n..];
                if self.skip == 0 {
                    if let Some(p) = self.pax.take() {
                        self.pax_size = pax_size(&p);
                    }
                }
                continue;
            }
            let n = (512 - self.filled).min(buf.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&buf[..n]);
            self.filled += n;
            buf = &buf[n..];
            if self.filled == 512 {
                self.filled = 0;
                self.header_done()?;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.follow(&buf[..n])?;
        Ok(n)
    }
}

/// A header's size field: octal, or base-256 when its top bit is set.
fn parse_size(f: &[u8]) -> std::io::Result<u64> {
    if f[0] & 0x80 != 0 {
        let mut v: u64 = 0;
        for &b in &f[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(b as u64))
                .ok_or_else(|| bad("size overflows"))?;
        }
        return Ok(v);
    }
    let s: Vec<u8> = f.iter().copied().filter(|&b| b != 0 && b != b' ').collect();
    if s.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(&s).map_err(|_| bad("size is not octal"))?;
    u64::from_str_radix(s, 8).map_err(|_| bad("size is not octal"))
}

fn bad(why: &str) -> Error {
    Error::new(ErrorKind::InvalidData, format!("tar header: {why}"))
}

/// The `size` record of a PAX header body, if any.
fn pax_size(body: &[u8]) -> Option<u64> {
    let mut rest = body;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > rest.len() {
            return None;
        }
        let rec = &rest[sp + 1..len];
        if let Some(v) = rec.strip_prefix(b"size=") {
            let v = v.strip_suffix(b"\n").unwrap_or(v);
            return std::str::from_utf8(v).ok()?.parse().ok();
        }
        rest = &rest[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u8, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(size);
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    fn pass(stream: &[u8]) -> std::io::Result<u64> {
        let mut g = Guard::new(stream);
        std::io::copy(&mut g, &mut std::io::sink())
    }

    #[test]
    fn a_huge_long_name_or_pax_header_is_refused_before_it_is_read() {
        for kind in [b'L', b'K', b'x', b'g'] {
            let e = pass(&header(kind, 256 << 20)).unwrap_err();
            assert!(e.to_string().contains("of 268435456 bytes"), "{e}");
        }
        // A big file is fine, and so is a small long name before it.
        let mut s = header(b'L', 300);
        s.extend(vec![b'a'; 512]);
        s.extend(header(b'0', 5 << 20));
        s.extend(vec![0u8; 5 << 20]);
        s.extend(header(b'L', 2 << 20)); // after the file: still seen
        assert!(pass(&s).is_err());
    }

    #[test]
    fn a_pax_size_record_moves_the_next_header() {
        let body = b"16 size=1048576\n";
        let mut s = header(b'x', body.len() as u64);
        s.extend_from_slice(body);
        s.extend(vec![0u8; 512 - body.len()]);
        // The ustar size says 0; PAX says 1 MiB of data follows.
        s.extend(header(b'0', 0));
        s.extend(vec![b'L'; 1 << 20]); // data, not headers
        s.extend(header(b'L', 8 << 20));
        let e = pass(&s).unwrap_err();
        assert!(e.to_string().contains("of 8388608 bytes"), "{e}");
    }
}
