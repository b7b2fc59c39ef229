//! Checks the mirrors of `pktring::uapi` against `rust_pktring_uapi.h`: a C program compiled
//! against the header prints the size, alignment and every field's offset and size of each
//! structure, and each constant and ioctl number; each must equal what Rust has.
//!
//! The `TP_STATUS_*` and `TPACKET_*` constants come from the host's `<linux/if_packet.h>`, which
//! may predate some (Debian 12's 6.1 headers lack `TP_STATUS_GSO_TCP`): those it lacks are not
//! checked.

use std::fmt::Write as _;
use std::process::Command;
use std::{env, fs};

use pktring::uapi::*;

/// Returns the size of the field that `field` selects.
fn field_size<T, F>(_field: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// A C expression, and the value Rust has for it.
struct Check {
    expr: String,
    rust: u64,
    /// A macro of `<linux/if_packet.h>`, checked only if the host's header has it.
    optional: bool,
}

/// Everything to check.
fn expectations() -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |expr: String, rust: u64, optional: bool| {
        checks.push(Check {
            expr,
            rust,
            optional,
        })
    };
    macro_rules! structure {
        ($c:literal, $rust:ty, $($field:ident),+) => {
            check(format!("sizeof(struct {})", $c), size_of::<$rust>() as u64, false);
            check(format!("_Alignof(struct {})", $c), align_of::<$rust>() as u64, false);
            $(
                let field = stringify!($field);
                check(
                    format!("offsetof(struct {}, {field})", $c),
                    std::mem::offset_of!($rust, $field) as u64,
                    false,
                );
                check(
                    format!("sizeof(((struct {} *)0)->{field})", $c),
                    field_size(|s: &$rust| &s.$field) as u64,
                    false,
                );
            )+
        };
    }
    macro_rules! constants {
        ($optional:literal: $($name:ident),+) => {
            $(check(stringify!($name).to_string(), $name as u64, $optional);)+
        };
    }
    structure!(
        "pktring_req",
        PktringReq,
        size,
        version,
        block_size,
        block_nr,
        frame_size,
        frame_nr,
        snaplen,
        family,
        hook,
        ifindex,
        priority,
        wake_frames,
        wake_usecs,
        ethertype,
        reserved
    );
    structure!(
        "pktring_info",
        PktringInfo,
        size,
        version,
        mmap_size,
        block_size,
        block_nr,
        frame_size,
        frame_nr,
        hdr_len,
        sll_offset,
        snaplen,
        error,
        reserved
    );
    structure!("pktring_stats", PktringStats, packets, drops, filtered);
    structure!(
        "pktring_fanout",
        PktringFanout,
        id,
        mode,
        flags,
        members,
        reserved,
        rollover
    );
    structure!("sock_filter", SockFilter, code, jt, jf, k);
    structure!("sock_fprog", SockFprog, len, filter);
    structure!(
        "pktring_frame",
        PktringFrame,
        tp_status,
        tp_len,
        tp_snaplen,
        tp_mac,
        tp_net,
        tp_sec,
        tp_nsec,
        tp_vlan_tci,
        tp_vlan_tpid,
        cpu,
        rx_queue
    );
    structure!(
        "sockaddr_ll",
        SockaddrLl,
        sll_family,
        sll_protocol,
        sll_ifindex,
        sll_hatype,
        sll_pkttype,
        sll_halen,
        sll_addr
    );
    constants!(
        false: PKTRING_VERSION,
        PKTRING_FAMILY_IPV4,
        PKTRING_FAMILY_IPV6,
        PKTRING_FAMILY_BOTH,
        PKTRING_HOOK_PRE_ROUTING,
        PKTRING_HOOK_LOCAL_IN,
        PKTRING_HOOK_INGRESS,
        PKTRING_HOOK_LOCAL_OUT,
        PKTRING_HOOK_POST_ROUTING,
        PKTRING_HOOK_EGRESS,
        PKTRING_ETH_P_ALL,
        PACKET_OUTGOING,
        BPF_MAXINSNS,
        PKTRING_MAX_SNAPLEN,
        PKTRING_MAX_RING_BYTES,
        PKTRING_NO_RX_QUEUE,
        PKTRING_FANOUT_CPU,
        PKTRING_FANOUT_HASH,
        PKTRING_FANOUT_QUEUE,
        PKTRING_FANOUT_LB,
        PKTRING_FANOUT_FLAG_ROLLOVER,
        PKTRING_FANOUT_MAX_MEMBERS,
        PKTRING_IOC_MAGIC,
        PKTRING_IOC_SET_RING,
        PKTRING_IOC_GET_INFO,
        PKTRING_IOC_GET_STATS,
        PKTRING_IOC_SET_FILTER,
        PKTRING_IOC_DETACH_FILTER,
        PKTRING_IOC_JOIN_FANOUT,
        PKTRING_IOC_GET_FANOUT,
        PKTRING_IOC_LEAVE_FANOUT
    );
    constants!(
        true: TP_STATUS_KERNEL,
        TP_STATUS_USER,
        TP_STATUS_LOSING,
        TP_STATUS_CSUMNOTREADY,
        TP_STATUS_VLAN_VALID,
        TP_STATUS_VLAN_TPID_VALID,
        TP_STATUS_CSUM_VALID,
        TP_STATUS_GSO_TCP,
        TPACKET_ALIGNMENT,
        TPACKET2_HDRLEN
    );
    checks
}

#[test]
fn uapi_mirrors_match_the_header() {
    let top = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let dir = env!("CARGO_TARGET_TMPDIR");
    let (source, program) = (format!("{dir}/uapi_layout.c"), format!("{dir}/uapi_layout"));
    let checks = expectations();

    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"rust_pktring_uapi.h\"\n\n\
         int main(void)\n{\n",
    );
    for Check { expr, optional, .. } in &checks {
        let print = format!("\tprintf(\"%llu\\n\", (unsigned long long)({expr}));");
        if *optional {
            writeln!(
                c,
                "#ifdef {expr}\n{print}\n#else\n\tputs(\"absent\");\n#endif"
            )
            .unwrap();
        } else {
            writeln!(c, "{print}").unwrap();
        }
    }
    c.push_str("\treturn 0;\n}\n");
    fs::write(&source, c).unwrap();

    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-std=gnu11",
            "-Wall",
            "-Werror",
            "-I",
            top,
            "-o",
            &program,
            &source,
        ])
        .status()
        .unwrap_or_else(|err| panic!("{cc}: {err}"));
    assert!(status.success(), "{cc} failed on {source}");
    let output = Command::new(&program).output().unwrap();
    assert!(output.status.success());

    let stdout = String::from_utf8(output.stdout).unwrap();
    let c_values: Vec<&str> = stdout.lines().collect();
    assert_eq!(c_values.len(), checks.len());
    let mismatches: Vec<String> = checks
        .iter()
        .zip(c_values)
        .filter(|(check, c)| *c != "absent" && c.parse() != Ok(check.rust))
        .map(|(check, c)| format!("{}: C says {c}, Rust {}", check.expr, check.rust))
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
