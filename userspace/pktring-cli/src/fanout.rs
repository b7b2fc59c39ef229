//! Fanout groups: `pktring capture --fanout MODE --threads N` sets up N rings as the members of
//! one group (the library's [`RingBuilder::fanout`], which joins each before its set-up), each
//! packet the group's selection takes going to one of them, and a consumer thread per member
//! writes its own file.
//!
//! At the end a member leaves its group ([`Ring::leave_fanout`]): from then on no packet goes
//! to its ring, and the consumer drains it, so that nothing the group captured is lost while
//! its members go one by one.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use pktring::uapi::{PktringFanout, PktringStats, PKTRING_FANOUT_MAX_MEMBERS};
use pktring::{FanoutMode, Frame, Layout, Op, Ring, RingBuilder};
use rustix::io::Errno;

use crate::capture::FrameSource;

/// How a group picks the member of a packet (`--fanout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// The CPU the packet is captured on, modulo the rings.
    Cpu,
    /// A symmetric flow hash: both directions of a flow go to one ring.
    Hash,
    /// The device's RX queue.
    Queue,
    /// Round robin (load balancing).
    Lb,
}

impl From<Mode> for FanoutMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Cpu => FanoutMode::Cpu,
            Mode::Hash => FanoutMode::Hash,
            Mode::Queue => FanoutMode::Queue,
            Mode::Lb => FanoutMode::Lb,
        }
    }
}

impl From<FanoutMode> for Mode {
    /// The option's value of a mode, to name it as the command line does.
    fn from(mode: FanoutMode) -> Self {
        match mode {
            FanoutMode::Cpu => Mode::Cpu,
            FanoutMode::Hash => Mode::Hash,
            FanoutMode::Queue => Mode::Queue,
            FanoutMode::Lb => Mode::Lb,
        }
    }
}

/// Returns `true` if a `-w` pattern has a `%d` for the member's index.
pub(crate) fn has_index(pattern: &Path) -> bool {
    pattern
        .as_os_str()
        .as_bytes()
        .windows(2)
        .any(|pair| pair == b"%d")
}

/// Returns the file of member `index`: `pattern` with each `%d` replaced by the index.
pub(crate) fn member_path(pattern: &Path, index: usize) -> PathBuf {
    let bytes = pattern.as_os_str().as_bytes();
    let number = index.to_string();
    let mut path = Vec::with_capacity(bytes.len() + number.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"%d") {
            path.extend_from_slice(number.as_bytes());
            i += 2;
        } else {
            path.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(path))
}

/// Says in one line what a failed fanout call of group `id` ([`pktring::Error::Fanout`]) means
/// for the capture, in the options' words.
pub(crate) fn explain(id: u32, op: Op, source: &io::Error) -> String {
    match (op, Errno::from_io_error(source)) {
        (Op::JoinFanout, Some(Errno::NOTTY)) => {
            "this rust_pktring has no fanout groups (ENOTTY): load one built from the same \
             rust_pktring_uapi.h as this tool"
                .into()
        }
        (Op::JoinFanout, Some(Errno::INVAL)) => format!(
            "the module refused to join fanout group {id} (EINVAL): is it built from the same \
             rust_pktring_uapi.h as this tool?"
        ),
        (Op::SetRing, Some(Errno::INVAL)) => format!(
            "the module refused a member of fanout group {id} (EINVAL): the group has members \
             that capture other packets or in another mode (every member needs the same \
             --hook, --family or --ethertype, interface, --priority, --fanout and --rollover): \
             use another --fanout-id"
        ),
        (Op::SetRing, Some(Errno::NOSPC)) => format!(
            "fanout group {id} is full: it has {PKTRING_FANOUT_MAX_MEMBERS} members (ENOSPC)"
        ),
        (Op::SetRing, Some(Errno::NODEV)) => {
            format!("fanout group {id} has ended: its interface went away (ENODEV)")
        }
        (Op::SetRing, Some(Errno::NONET)) => {
            format!("fanout group {id} has ended: its network namespace is going away (ENONET)")
        }
        _ => format!("{op} (fanout group {id}): {source}"),
    }
}

/// A member of a fanout group: its ring, which leaves the group at the end of the capture.
///
/// Dropping it closes the ring, which leaves the group if the member had not left before.
pub(crate) struct Member {
    ring: Ring,
    /// The ring has left its group.
    left: bool,
}

impl Member {
    /// Sets up a ring with `builder`, which names the group ([`RingBuilder::fanout`]): the ring
    /// joins it, gets the filter (before it captures, so that no packet escapes it) and is set
    /// up, a member of the group from then on.
    pub(crate) fn open(builder: &RingBuilder) -> Result<Self> {
        Ok(Self {
            ring: builder.open()?,
            left: false,
        })
    }

    /// Returns the layout the module reported.
    pub(crate) fn layout(&self) -> &Layout {
        self.ring.layout()
    }

    /// Returns the group, its members now (0 once this ring has left) and this ring's rollovers
    /// (`PKTRING_IOC_GET_FANOUT`).
    pub(crate) fn fanout(&self) -> Result<PktringFanout> {
        // A member is in its group from its set-up on, so `None` (ENOENT) does not come; it
        // would mean no members and no rollover.
        Ok(self.ring.fanout()?.unwrap_or_default())
    }
}

impl FrameSource for Member {
    fn try_next(&mut self) -> Result<Option<Frame<'_>>, pktring::Error> {
        FrameSource::try_next(&mut self.ring)
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame<'_>>, pktring::Error> {
        FrameSource::next_frame(&mut self.ring, timeout)
    }

    fn take_stats(&mut self) -> Result<PktringStats, pktring::Error> {
        FrameSource::take_stats(&mut self.ring)
    }

    fn wakeups(&self) -> u64 {
        self.ring.wakeups()
    }

    /// `PKTRING_IOC_LEAVE_FANOUT`: once it returns, no packet goes to the ring, and its frames
    /// stay readable. `ENOENT` (`false`): the ring is no member any more, which is as good.
    fn leave(&mut self) -> Result<bool> {
        if !self.left {
            self.ring.leave_fanout()?;
            self.left = true;
        }
        Ok(true)
    }
}

/// Says which files a pattern makes, for messages: `out-0.pcap to out-2.pcap`.
pub(crate) fn file_range(pattern: &Path, members: usize) -> String {
    let first = member_path(pattern, 0);
    match members {
        0 | 1 => first.display().to_string(),
        _ => format!(
            "{} to {}",
            first.display(),
            member_path(pattern, members - 1).display()
        ),
    }
}

/// The name of a pattern for messages (its bytes, lossily).
pub(crate) fn pattern_name(pattern: &Path) -> std::borrow::Cow<'_, str> {
    OsStr::to_string_lossy(pattern.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modes_are_the_library_s() {
        let modes = [Mode::Cpu, Mode::Hash, Mode::Queue, Mode::Lb];
        assert_eq!(
            modes.map(|mode| FanoutMode::from(mode).uapi()),
            [0, 1, 2, 3]
        );
        for mode in modes {
            assert_eq!(Mode::from(FanoutMode::from(mode)), mode);
        }
    }

    #[test]
    fn a_pattern_names_each_member_s_file() {
        let pattern = Path::new("/tmp/out-%d.pcap");
        assert!(has_index(pattern));
        assert_eq!(member_path(pattern, 0), Path::new("/tmp/out-0.pcap"));
        assert_eq!(member_path(pattern, 12), Path::new("/tmp/out-12.pcap"));
        assert_eq!(
            member_path(Path::new("%d/x-%d.pcapng"), 3),
            Path::new("3/x-3.pcapng")
        );
        for plain in ["out.pcap", "out-%s.pcap", "out%", "%D"] {
            assert!(!has_index(Path::new(plain)), "{plain}");
            assert_eq!(member_path(Path::new(plain), 5), Path::new(plain));
        }
        assert_eq!(file_range(pattern, 3), "/tmp/out-0.pcap to /tmp/out-2.pcap");
        assert_eq!(file_range(pattern, 1), "/tmp/out-0.pcap");
    }

    #[test]
    fn fanout_errors_explain_themselves() {
        let error = |op, errno: Errno| explain(42, op, &errno.into());
        assert!(error(Op::JoinFanout, Errno::NOTTY).contains("no fanout groups (ENOTTY)"));
        let mismatch = error(Op::SetRing, Errno::INVAL);
        assert!(
            mismatch.contains("fanout group 42 (EINVAL)") && mismatch.contains("--fanout-id"),
            "{mismatch}"
        );
        assert!(error(Op::SetRing, Errno::NOSPC).contains("256 members (ENOSPC)"));
        let other = error(Op::LeaveFanout, Errno::NOMEM);
        assert!(
            other.starts_with("PKTRING_IOC_LEAVE_FANOUT (fanout group 42): "),
            "{other}"
        );
        for op in [Op::JoinFanout, Op::SetRing, Op::GetFanout, Op::LeaveFanout] {
            for errno in [Errno::INVAL, Errno::NOSPC, Errno::NODEV, Errno::PERM] {
                assert!(!error(op, errno).contains('\n'));
            }
        }
    }

    /// Without the module, opening a member fails as a lone ring's opening does.
    #[test]
    fn a_member_of_a_missing_device_says_so() {
        let member = |device: &str| {
            Member::open(
                &RingBuilder::new()
                    .device(device)
                    .fanout(Some(pktring::Fanout {
                        id: 1,
                        mode: FanoutMode::Hash,
                        rollover: false,
                    })),
            )
        };
        let err = member("/nonexistent/pktring").err().unwrap();
        assert!(matches!(
            err.downcast_ref::<pktring::Error>(),
            Some(pktring::Error::Open { .. })
        ));
        // /dev/null is no ring: the join is refused (ENOTTY), before anything is set up.
        assert!(member("/dev/null").is_err());
    }
}
