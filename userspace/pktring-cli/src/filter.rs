//! Capture filters: tcpdump's expressions compiled by libpcap into classic BPF for the ring's
//! `PKTRING_IOC_SET_FILTER`, the link type the ring's frames have (and the filter is compiled
//! for), and tcpdump's `-d`, `-dd` and `-ddd` listings of a program.
//!
//! libpcap is linked through a small FFI of its own: `pcap_open_dead()` for the link type and
//! snaplen, `pcap_compile()` (optimised, netmask unknown, as tcpdump without an interface
//! address) and `pcap_geterr()`; `bpf_image()` formats an instruction as `tcpdump -d` does.
//!
//! The guest's binary is static (`make -C userspace guest`). Debian's `libpcap.a` wants
//! `-ldbus-1 -lsystemd` (`pcap-config --static --libs`) for its D-Bus capture source, and there
//! is no `libsystemd.a`: the static build defines that source's two entry points itself
//! ([`static_stubs`]), as "no such device", so that the linker never pulls `pcap-dbus.o` out of
//! the archive and neither library is needed. Nothing here opens a capture device anyway.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::fmt::Write as _;
use std::fs;
use std::sync::Mutex;

use pktring::uapi::SockFilter;

/// `LINKTYPE_ETHERNET` / `DLT_EN10MB`.
pub(crate) const LINKTYPE_ETHERNET: u16 = 1;
/// `LINKTYPE_RAW`: the packet starts at its IPv4 or IPv6 header.
pub(crate) const LINKTYPE_RAW: u16 = 101;
/// `DLT_RAW` on Linux: what `pcap_open_dead()` takes for `LINKTYPE_RAW`.
const DLT_RAW: c_int = 12;
/// `PCAP_NETMASK_UNKNOWN`.
const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;

/// `ARPHRD_ETHER`, `ARPHRD_LOOPBACK`: the device types whose packets start with an Ethernet
/// header (loopback's all zero).
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;

/// The link type of a capture: what its frames start with, what the filter is compiled for and
/// what the file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkType {
    /// An Ethernet header (`LINKTYPE_ETHERNET`, `DLT_EN10MB`).
    Ethernet,
    /// The IP header (`LINKTYPE_RAW`, `DLT_RAW`).
    Raw,
}

impl LinkType {
    /// The link type of a capture at `hook` (`starts_at_network_header`: `LOCAL_OUT` or
    /// `POST_ROUTING`) on a device of `ARPHRD_*` type `arphrd` (`None`: any device, or one
    /// whose type is not known): raw at the egress inet hooks, where frames always start at the
    /// network header, and on devices without an Ethernet header (`ARPHRD_NONE` of tun and
    /// WireGuard, tunnels); Ethernet on Ethernet and loopback devices, and on any device, where
    /// a frame without a link-layer header gets a made-up one (see [`synthetic_ethernet`]).
    pub(crate) fn choose(starts_at_network_header: bool, arphrd: Option<u16>) -> Self {
        match arphrd {
            _ if starts_at_network_header => Self::Raw,
            None | Some(ARPHRD_ETHER) | Some(ARPHRD_LOOPBACK) => Self::Ethernet,
            Some(_) => Self::Raw,
        }
    }

    /// The pcap `LINKTYPE_*` value, for the file.
    pub(crate) fn linktype(self) -> u16 {
        match self {
            Self::Ethernet => LINKTYPE_ETHERNET,
            Self::Raw => LINKTYPE_RAW,
        }
    }

    /// The `DLT_*` value, for `pcap_open_dead()`.
    fn dlt(self) -> c_int {
        match self {
            Self::Ethernet => LINKTYPE_ETHERNET.into(),
            Self::Raw => DLT_RAW,
        }
    }

    /// tcpdump's name of the link type (`-y`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ethernet => "EN10MB",
            Self::Raw => "RAW",
        }
    }
}

/// The 14-byte Ethernet header written in front of a frame that has no link-layer header in a
/// capture whose link type is Ethernet (an inet hook on any device, where some devices have
/// none): zero addresses, and the EtherType `sll_protocol` (network byte order, as in the
/// `sockaddr_ll`).
pub(crate) fn synthetic_ethernet(sll_protocol: u16) -> [u8; 14] {
    let mut header = [0u8; 14];
    header[12..].copy_from_slice(&sll_protocol.to_ne_bytes());
    header
}

/// The `ARPHRD_*` type of interface `name`, from `/sys/class/net/NAME/type`.
pub(crate) fn interface_type(name: &str) -> Option<u16> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    fs::read_to_string(format!("/sys/class/net/{name}/type"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// libpcap's `struct bpf_insn`: the layout of `struct sock_filter`.
type BpfInsn = SockFilter;

/// libpcap's `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut BpfInsn,
}

#[link(name = "pcap")]
extern "C" {
    fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut c_void;
    fn pcap_close(p: *mut c_void);
    fn pcap_compile(
        p: *mut c_void,
        fp: *mut BpfProgram,
        expr: *const c_char,
        optimize: c_int,
        netmask: u32,
    ) -> c_int;
    fn pcap_geterr(p: *mut c_void) -> *mut c_char;
    fn pcap_freecode(fp: *mut BpfProgram);
    fn bpf_image(insn: *const BpfInsn, n: c_int) -> *mut c_char;
}

/// libpcap's compiler and `bpf_image()` keep state in globals: one call at a time.
static PCAP: Mutex<()> = Mutex::new(());

/// Compiles the filter expression `expr` for `link` and `snaplen` (accepted packets return
/// it), optimised as tcpdump does; `Err` has libpcap's message.
pub(crate) fn compile(expr: &str, link: LinkType, snaplen: u32) -> Result<Vec<SockFilter>, String> {
    let expr = CString::new(expr).map_err(|_| "a NUL byte in the expression".to_string())?;
    let snaplen = c_int::try_from(snaplen).map_err(|_| format!("snaplen {snaplen}"))?;
    let _guard = PCAP.lock().unwrap_or_else(|poison| poison.into_inner());
    // SAFETY: libpcap's documented use: a dead handle (checked for NULL), a program it fills
    // in and we free with pcap_freecode() after copying its `bf_len` instructions, the error
    // string read before the handle is closed; all under the lock (libpcap's globals).
    unsafe {
        let p = pcap_open_dead(link.dlt(), snaplen);
        if p.is_null() {
            return Err("pcap_open_dead() failed".into());
        }
        let mut program = BpfProgram {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        };
        let result = if pcap_compile(p, &mut program, expr.as_ptr(), 1, PCAP_NETMASK_UNKNOWN) != 0 {
            Err(CStr::from_ptr(pcap_geterr(p))
                .to_string_lossy()
                .into_owned())
        } else {
            let insns = if program.bf_insns.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(program.bf_insns, program.bf_len as usize).to_vec()
            };
            pcap_freecode(&mut program);
            Ok(insns)
        };
        pcap_close(p);
        result
    }
}

/// A program as tcpdump lists it: `-d` (`level` 1) in `bpf_image()`'s human form, `-dd` (2) as
/// a C array, `-ddd` (3 or more) in decimal with the length first; as libpcap's `bpf_dump()`.
pub(crate) fn dump(program: &[SockFilter], level: u8) -> String {
    let mut out = String::new();
    match level {
        3.. => {
            let _ = writeln!(out, "{}", program.len());
            for insn in program {
                let _ = writeln!(out, "{} {} {} {}", insn.code, insn.jt, insn.jf, insn.k);
            }
        }
        2 => {
            for insn in program {
                let _ = writeln!(
                    out,
                    "{{ 0x{:x}, {}, {}, 0x{:08x} }},",
                    insn.code, insn.jt, insn.jf, insn.k
                );
            }
        }
        _ => {
            let _guard = PCAP.lock().unwrap_or_else(|poison| poison.into_inner());
            for (i, insn) in program.iter().enumerate() {
                // SAFETY: bpf_image() formats one instruction into a static buffer, which we
                // copy before the next call; the lock keeps other threads from it.
                let line = unsafe { CStr::from_ptr(bpf_image(insn, i as c_int)) };
                let _ = writeln!(out, "{}", line.to_string_lossy());
            }
        }
    }
    out
}

/// The static build's stand-ins for libpcap's D-Bus capture source (see the module docs): no
/// D-Bus devices to list, and no device is one.
#[cfg(target_feature = "crt-static")]
mod static_stubs {
    use std::ffi::{c_char, c_int, c_void};

    /// `int dbus_findalldevs(pcap_if_list_t *devlistp, char *err_str)`: none, no error.
    #[no_mangle]
    extern "C" fn dbus_findalldevs(_devlistp: *mut c_void, _err_str: *mut c_char) -> c_int {
        0
    }

    /// `pcap_t *dbus_create(const char *device, char *ebuf, int *is_ours)`: never ours.
    ///
    /// # Safety
    ///
    /// `is_ours` is a valid pointer, as libpcap's `pcap_create()` passes it.
    #[no_mangle]
    unsafe extern "C" fn dbus_create(
        _device: *const c_char,
        _ebuf: *mut c_char,
        is_ours: *mut c_int,
    ) -> *mut c_void {
        // SAFETY: libpcap passes a pointer to its local flag (see above).
        unsafe { *is_ours = 0 };
        std::ptr::null_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// `tcpdump -y EN10MB -d icmp` (libpcap 1.10), and with `-dd` and `-ddd`.
    const ICMP_D: &str = "\
(000) ldh      [12]
(001) jeq      #0x800           jt 2\tjf 5
(002) ldb      [23]
(003) jeq      #0x1             jt 4\tjf 5
(004) ret      #262144
(005) ret      #0
";
    const ICMP_DD: &str = "\
{ 0x28, 0, 0, 0x0000000c },
{ 0x15, 0, 3, 0x00000800 },
{ 0x30, 0, 0, 0x00000017 },
{ 0x15, 0, 1, 0x00000001 },
{ 0x6, 0, 0, 0x00040000 },
{ 0x6, 0, 0, 0x00000000 },
";
    const ICMP_DDD: &str =
        "6\n40 0 0 12\n21 0 3 2048\n48 0 0 23\n21 0 1 1\n6 0 0 262144\n6 0 0 0\n";

    /// `tcpdump -y RAW -s 128 -d icmp`: the IP version from the first byte, no EtherType.
    const RAW_ICMP_D: &str = "\
(000) ldb      [0]
(001) and      #0xf0
(002) jeq      #0x40            jt 3\tjf 6
(003) ldb      [9]
(004) jeq      #0x1             jt 5\tjf 6
(005) ret      #128
(006) ret      #0
";

    #[test]
    fn expressions_compile_as_tcpdump_compiles_them() {
        let icmp = compile("icmp", LinkType::Ethernet, 262_144).unwrap();
        assert_eq!(dump(&icmp, 1), ICMP_D);
        assert_eq!(dump(&icmp, 2), ICMP_DD);
        assert_eq!(dump(&icmp, 3), ICMP_DDD);
        assert_eq!(dump(&icmp, 4), ICMP_DDD, "-dddd is -ddd");
        assert_eq!(
            icmp[1],
            SockFilter {
                code: 0x15,
                jt: 0,
                jf: 3,
                k: 0x800
            }
        );
        let raw = compile("icmp", LinkType::Raw, 128).unwrap();
        assert_eq!(dump(&raw, 1), RAW_ICMP_D);
        // No expression: accept everything, up to the snaplen.
        assert_eq!(
            dump(&compile("", LinkType::Ethernet, 64).unwrap(), 1),
            "(000) ret      #64\n"
        );
        // A longer one, through every listing.
        let tcp80 = compile("tcp port 80 or icmp", LinkType::Ethernet, 262_144).unwrap();
        assert!(tcp80.len() > 10);
        let ddd = dump(&tcp80, 3);
        assert_eq!(ddd.lines().count(), tcp80.len() + 1);
        assert_eq!(ddd.lines().next(), Some(tcp80.len().to_string().as_str()));
    }

    /// The listings match the host's tcpdump, where it has one that runs (`-y` with `-d`
    /// needs no capture device, but older tcpdumps open one; skipped then).
    #[test]
    fn listings_match_the_host_s_tcpdump() {
        for (link, expr) in [
            (LinkType::Ethernet, "tcp port 80 or icmp"),
            (LinkType::Ethernet, "udp and src port 40001"),
            (LinkType::Raw, "ip6 or (ip and len > 100)"),
            (LinkType::Ethernet, "arp or vlan 10"),
        ] {
            let program = compile(expr, link, 262_144).unwrap();
            for (flag, level) in [("-d", 1), ("-dd", 2), ("-ddd", 3)] {
                let Ok(out) = Command::new("tcpdump")
                    .args(["-y", link.name(), flag, expr])
                    .output()
                else {
                    eprintln!("no tcpdump: skipped");
                    return;
                };
                if !out.status.success() {
                    eprintln!("tcpdump {flag} failed: skipped");
                    return;
                }
                assert_eq!(
                    dump(&program, level),
                    String::from_utf8_lossy(&out.stdout),
                    "{flag} {expr}"
                );
            }
        }
    }

    #[test]
    fn bad_expressions_say_why() {
        let err = compile("tcp port eighty-ish and", LinkType::Ethernet, 262_144).unwrap_err();
        assert!(!err.is_empty() && !err.contains('\n'), "{err}");
        let err = compile("ether host 1:2:3:4:5:6", LinkType::Raw, 262_144).unwrap_err();
        assert!(err.contains("link") || err.contains("ether"), "{err}");
        assert!(compile("icmp\0", LinkType::Raw, 64).is_err());
    }

    #[test]
    fn the_link_type_follows_the_hook_and_the_device() {
        use LinkType::*;
        for (network_header, arphrd, link) in [
            (false, None, Ethernet),
            (false, Some(1), Ethernet),
            (false, Some(772), Ethernet),
            (false, Some(65534), Raw),
            (false, Some(778), Raw),
            (true, None, Raw),
            (true, Some(1), Raw),
        ] {
            assert_eq!(
                LinkType::choose(network_header, arphrd),
                link,
                "{network_header} {arphrd:?}"
            );
        }
        assert_eq!((Ethernet.linktype(), Raw.linktype()), (1, 101));
        assert_eq!(Raw.dlt(), 12);
        assert_eq!(interface_type("lo"), Some(772));
        assert_eq!(interface_type("../lo"), None);
        assert_eq!(interface_type("no-such-if0"), None);
        assert_eq!(
            synthetic_ethernet(0x86ddu16.to_be()),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd]
        );
    }
}
