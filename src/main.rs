//! The rcrun command line: parses runc's flags and calls the library.
//!
//! The image commands (`rcrun image`, `run --image`) live in a sibling
//! binary, `rcrun-image` (src/bin/rcrun-image.rs), built from the same
//! command line: rcrun hands them over with an exec, so that none of the
//! image code (tar, inflate, sha256, zstd) is in this binary, whose
//! every page a `run` may fault in (scripts/bench.sh).

mod cli;

fn main() {
    cli::main::<false>()
}
