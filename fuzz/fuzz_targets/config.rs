//! Fuzzes what rcrun does with an untrusted config.json before any
//! system call: parsing (with field paths in errors), validation, and the
//! pure planners that turn fields into kernel values (mount options,
//! cgroup v1 and v2 settings, the v2 device eBPF program).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = rcrun::spec::parse(data) else {
        return;
    };
    // Errors must render (they name fields from the input).
    if let Err(e) = rcrun::spec::validate(&spec) {
        let _ = e.to_string();
    }
    for m in spec.mounts().iter().flatten() {
        if let Some(o) = m.options() {
            let _ = rcrun::rootfs::options::parse(o);
        }
    }
    if let Some(res) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        let _ = rcrun::cgroups::resources::v1(res);
        let _ = rcrun::cgroups::resources::v2(res);
        if let Some(d) = res.devices() {
            let _ = rcrun::cgroups::bpf::program(d);
        }
    }
});
