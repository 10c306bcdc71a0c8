//! Times a container's rootfs from a stored image (scripts/bench-image.sh):
//! `ImageStore::prepare` (an overlay mount of the stored layers, and
//! config.json) and `Prepared::release`, ROUNDS times; prints the medians
//! in ms as JSON.
//!
//!   prepare_bench IMAGE_ROOT NAME ROUNDS

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let (root, name, rounds) = (&a[1], &a[2], a[3].parse::<usize>()?);
    let store = rcrun::image::ImageStore::open(root)?;
    let opts = rcrun::image::UnpackOptions::new();
    let (mut prep, mut rel) = (vec![], vec![]);
    for i in 0..rounds {
        let t = Instant::now();
        let p = store.prepare(name, &format!("bench-{}-{i}", std::process::id()), &opts)?;
        prep.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        p.release()?;
        rel.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "{{\"rounds\":{rounds},\"prepare_ms\":{:.3},\"release_ms\":{:.3}}}",
        median(&mut prep),
        median(&mut rel)
    );
    Ok(())
}
