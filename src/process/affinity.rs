//! `linux.personality` and `linux.memoryPolicy`: the execution domain
//! (personality(2)) and the NUMA memory policy (set_mempolicy(2)) the
//! container's init sets before it executes the program; both survive
//! the exec. Parsed and checked here, before the clone; applied by the
//! init with one system call each.

use libc::{c_int, c_ulong};
use oci_spec::runtime::{
    LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain, MemoryPolicyFlagType,
    MemoryPolicyModeType,
};

use crate::spec::SpecError;

/// The most NUMA nodes a policy may name (the kernel's usual
/// CONFIG_NODES_SHIFT maximum is 10: 1024 nodes).
const MAX_NODES: usize = 1024;
const WORD: usize = c_ulong::BITS as usize;

/// A memory policy ready for set_mempolicy(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemPolicy {
    /// The mode with its flags.
    pub mode: c_int,
    /// The node mask, one bit a node.
    pub nodes: Vec<c_ulong>,
    /// The number of bits of `nodes` the kernel reads (highest node + 2).
    pub maxnode: c_ulong,
}

fn invalid(field: &str, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// personality(2)'s argument for `p` (PER_LINUX or PER_LINUX32).
///
/// # Errors
/// [`SpecError::Invalid`] naming `linux.personality.flags`: the runtime
/// spec defines no flag yet.
pub(crate) fn personality(p: &LinuxPersonality) -> Result<c_ulong, SpecError> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(invalid(
            "linux.personality.flags",
            "no flag is defined by the runtime spec",
        ));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

/// set_mempolicy(2)'s arguments for `p`.
///
/// # Errors
/// [`SpecError::Invalid`] naming the field: nodes for MPOL_DEFAULT or
/// MPOL_LOCAL, none for a mode that needs them, a malformed node list.
pub(crate) fn mem_policy(p: &LinuxMemoryPolicy) -> Result<MemPolicy, SpecError> {
    use MemoryPolicyModeType as M;
    let (mode, needs_nodes) = match p.mode() {
        M::MpolDefault => (0, Some(false)),
        M::MpolPreferred => (1, None),
        M::MpolBind => (2, Some(true)),
        M::MpolInterleave => (3, Some(true)),
        M::MpolLocal => (4, Some(false)),
        M::MpolPreferredMany => (5, Some(true)),
        M::MpolWeightedInterleave => (6, Some(true)),
    };
    let text = p.nodes().as_deref().unwrap_or("").trim();
    let nodes = parse_nodes(text).map_err(|reason| invalid("linux.memoryPolicy.nodes", reason))?;
    let any = nodes.iter().any(|w| *w != 0);
    match needs_nodes {
        Some(true) if !any => {
            return Err(invalid(
                "linux.memoryPolicy.nodes",
                format!("{} needs nodes", p.mode()),
            ))
        }
        Some(false) if any => {
            return Err(invalid(
                "linux.memoryPolicy.nodes",
                format!("{} takes no nodes", p.mode()),
            ))
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let highest = nodes
        .iter()
        .enumerate()
        .rev()
        .find(|(_, w)| **w != 0)
        .map_or(0, |(i, w)| {
            i * WORD + (WORD - 1 - w.leading_zeros() as usize)
        });
    Ok(MemPolicy {
        mode: mode | flags,
        maxnode: (highest + 2) as c_ulong,
        nodes,
    })
}

/// "0-3,5" as a bit mask.
fn parse_nodes(text: &str) -> Result<Vec<c_ulong>, String> {
    let mut mask = vec![0 as c_ulong; MAX_NODES / WORD];
    if text.is_empty() {
        return Ok(mask);
    }
    for part in text.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let n = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n < MAX_NODES)
                .ok_or_else(|| {
                    format!("{part:?} is not a node or range of nodes below {MAX_NODES}")
                })
        };
        let (a, b) = (n(a)?, n(b)?);
        if a > b {
            return Err(format!("{part:?}: the range is reversed"));
        }
        for node in a..=b {
            mask[node / WORD] |= 1 << (node % WORD);
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> LinuxMemoryPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn node_lists_become_masks() {
        let p = mem_policy(&policy(
            serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-2,5"}),
        ))
        .unwrap();
        assert_eq!(p.mode, 2);
        assert_eq!(p.nodes[0], 0b100111);
        assert_eq!(p.maxnode, 7);
        let p = mem_policy(&policy(
            serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "70",
            "flags": ["MPOL_F_STATIC_NODES"]}),
        ))
        .unwrap();
        assert_eq!(p.mode, 3 | 1 << 15);
        assert_eq!(p.nodes[1], 1 << 6);
        assert_eq!(p.maxnode, 72);
        let p = mem_policy(&policy(serde_json::json!({"mode": "MPOL_LOCAL"}))).unwrap();
        assert_eq!((p.mode, p.maxnode), (4, 2));
    }

    #[test]
    fn wrong_node_lists_name_the_field() {
        for v in [
            serde_json::json!({"mode": "MPOL_BIND"}),
            serde_json::json!({"mode": "MPOL_DEFAULT", "nodes": "0"}),
            serde_json::json!({"mode": "MPOL_BIND", "nodes": "3-1"}),
            serde_json::json!({"mode": "MPOL_BIND", "nodes": "x"}),
            serde_json::json!({"mode": "MPOL_BIND", "nodes": "4096"}),
        ] {
            let e = mem_policy(&policy(v.clone())).unwrap_err().to_string();
            assert!(e.contains("linux.memoryPolicy.nodes"), "{v}: {e}");
        }
    }

    #[test]
    fn personalities() {
        let p = |v| serde_json::from_value::<LinuxPersonality>(v).unwrap();
        assert_eq!(
            personality(&p(serde_json::json!({"domain": "LINUX32"}))).unwrap(),
            8
        );
        assert_eq!(
            personality(&p(serde_json::json!({"domain": "LINUX"}))).unwrap(),
            0
        );
        let e = personality(&p(serde_json::json!({"domain": "LINUX", "flags": ["X"]})));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("linux.personality.flags"));
    }
}
