//! The shim's idle footprint. A shim lives as long as its pod and is
//! idle nearly all that time; each request (a create above all) faults
//! in, with the kernel's fault-around, most of the executable's text.
//! Once requests settle ([`crate::publish`] calls this when no event came
//! for a while), those pages are dropped from the shim's page tables.

/// Drops the shim's clean pages of its own executable from its page
/// tables: start-up faulted in (with the kernel's fault-around) nearly
/// all of its text, which a long-lived shim mostly never runs again. They
/// stay in the page cache, and a later fault maps one back at no I/O.
/// Only mappings without an anonymous page are touched: a page written
/// since the exec (a private copy: relocated data) is never discarded.
/// (Dirty page-cache pages, of a binary just written, are the file's, not
/// the mapping's.)
pub fn release_clean_exe_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let exe = exe.to_string_lossy().into_owned();
    let mut cur: Option<(usize, usize, bool)> = None;
    let mut anon = 0u64;
    let flush = |c: Option<(usize, usize, bool)>, anon: u64| {
        if let Some((start, end, true)) = c {
            if anon == 0 {
                // SAFETY: the range is a whole mapping of this process's
                // executable with no private copy of a page, all file pages:
                // MADV_DONTNEED only unmaps them, a later access faults the
                // same bytes back from the file.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
                };
            }
        }
    };
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first
            .split_once('-')
            .filter(|(a, _)| a.chars().all(|c| c.is_ascii_hexdigit()))
        {
            flush(cur.take(), anon);
            anon = 0;
            let perms = f.next().unwrap_or("");
            let path = line.split_whitespace().nth(5).unwrap_or("");
            let ours = path == exe && !perms.contains('w');
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                cur = Some((a, b, ours));
            }
        } else if first == "Anonymous:" {
            anon += f.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    flush(cur, anon);
}
