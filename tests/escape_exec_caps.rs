//! Attack class: capabilities that outlive the exec'd program
//! (CVE-2022-29162). `exec --cap` used to add the capability to the
//! inheritable set too: any program with that file capability in its
//! inheritable set (`setcap cap_net_admin+ei`) then gained it even run by
//! an unprivileged user. As runc 1.1.2 does, `--cap` adds to the bounding,
//! effective and permitted sets, and to the ambient set only where the
//! process already has an inheritable set (ambient needs inheritable).

mod common;
use common::*;
use serde_json::json;

const CAP_NET_ADMIN: u64 = 1 << 12;
const CAP_KILL: u64 = 1 << 5;

/// The named capability sets of `exec --cap CAP_NET_ADMIN`'s process.
fn exec_caps(c: &Ct) -> (u64, u64, u64, u64) {
    let o = c.rcrun(&[
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        &c.id,
        "grep",
        "^Cap",
        "/proc/self/status",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    let get = |name: &str| {
        let l = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"));
        u64::from_str_radix(l[name.len()..].trim(), 16).unwrap()
    };
    (
        get("CapInh:"),
        get("CapEff:"),
        get("CapPrm:"),
        get("CapAmb:"),
    )
}

#[test]
fn exec_cap_is_not_inheritable() {
    let mut c = Ct::new("sleep 100");
    c.cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
        "inheritable": []
    });
    c.start();
    let (inh, eff, prm, amb) = exec_caps(&c);
    assert_eq!(inh, 0, "CapInh");
    assert_eq!(amb, 0, "CapAmb");
    assert_eq!(eff, CAP_KILL | CAP_NET_ADMIN, "CapEff");
    assert_eq!(prm, CAP_KILL | CAP_NET_ADMIN, "CapPrm");
}

#[test]
fn exec_cap_without_any_inheritable_set() {
    let mut c = Ct::new("sleep 100");
    c.cfg["process"]["capabilities"] =
        json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
    c.start();
    let (inh, eff, _, amb) = exec_caps(&c);
    assert_eq!((inh, amb), (0, 0), "CapInh, CapAmb");
    assert_eq!(eff, CAP_KILL | CAP_NET_ADMIN, "CapEff");
}

#[test]
fn exec_cap_for_a_process_without_capabilities() {
    // No `capabilities` at all: --cap gives exactly that capability, not
    // oci-spec's defaults (which fill every set, inheritable included).
    let mut c = Ct::new("sleep 100");
    c.cfg["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    c.start();
    let (inh, eff, prm, amb) = exec_caps(&c);
    assert_eq!((inh, amb), (0, 0), "CapInh, CapAmb");
    assert_eq!((eff, prm), (CAP_NET_ADMIN, CAP_NET_ADMIN), "CapEff, CapPrm");
}
