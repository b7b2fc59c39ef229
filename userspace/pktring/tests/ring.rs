//! The consumer against rings in memory, filled by producers that follow the module's protocol.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use pktring::fake::{Claim, FakePacket, FakeRing, Producer};
use pktring::uapi::{PktringFrame, PKTRING_NO_RX_QUEUE, TP_STATUS_LOSING, TP_STATUS_USER};
use pktring::{Error, Geometry, Op};

fn ring(block_size: u32, block_nr: u32, frame_size: u32, snaplen: u32) -> FakeRing {
    let geometry = Geometry {
        block_size,
        block_nr,
        frame_size,
    };
    FakeRing::new(geometry, snaplen).unwrap()
}

/// A 60-byte IPv4 Ethernet packet carrying `seq`, from 02:00:00:00:00:xx.
fn packet(seq: u64) -> Vec<u8> {
    let mut p = vec![0xff; 6];
    p.extend([2, 0, 0, 0, 0, seq as u8]);
    p.extend([0x08, 0x00]);
    p.extend(seq.to_be_bytes());
    p.resize(60, 0xee);
    p
}

/// The `seq` of a packet made by [`packet`].
fn seq_of(data: &[u8]) -> u64 {
    u64::from_be_bytes(data[14..22].try_into().unwrap())
}

/// Claims the head slot, waiting for the consumer as long as it takes.
fn claim<'p, 'm>(producer: &'p Producer<'m>) -> Claim<'p, 'm> {
    loop {
        if let Some(claim) = producer.claim() {
            return claim;
        }
        thread::yield_now();
    }
}

/// Fills `claim` with the packet of its index and publishes it.
fn publish(mut claim: Claim<'_, '_>) {
    let data = packet(claim.index());
    claim.fill(&FakePacket {
        data: &data,
        ..FakePacket::default()
    });
    claim.release(TP_STATUS_USER);
}

/// A wait function for `next_frame` that sleeps a little and looks again.
fn nap(left: Option<Duration>) -> io::Result<bool> {
    thread::sleep(left.unwrap_or(Duration::MAX).min(Duration::from_millis(1)));
    Ok(true)
}

#[test]
fn frames_come_in_ring_order_with_their_fields() {
    let mut ring = ring(4096, 2, 1024, 0);
    let (mut reader, producer) = ring.split();
    for seq in 0..5u16 {
        let mut claim = producer.claim().unwrap();
        claim.fill(&FakePacket {
            data: &packet(seq.into()),
            timestamp: Duration::new(1_700_000_000 + u64::from(seq), 123_456_789),
            cpu: seq,
            rx_queue: if seq == 4 {
                PKTRING_NO_RX_QUEUE
            } else {
                seq % 2
            },
            ifindex: 2,
            ..FakePacket::default()
        });
        claim.release(TP_STATUS_USER);
    }
    for seq in 0..5u16 {
        let frame = reader.try_next().unwrap().unwrap();
        assert_eq!(frame.slot(), u32::from(seq));
        assert_eq!(frame.data(), packet(seq.into()));
        assert_eq!(frame.wire_len(), 60);
        assert_eq!(
            frame.timestamp(),
            Duration::new(1_700_000_000 + u64::from(seq), 123_456_789)
        );
        assert_eq!(frame.cpu(), seq);
        assert_eq!(frame.rx_queue(), (seq != 4).then_some(seq % 2));
        assert_eq!(frame.vlan(), None);
        assert_eq!((frame.header().tp_mac, frame.header().tp_net), (66, 80));
        assert_eq!(frame.network(), Some(&packet(seq.into())[14..]));
        let link = frame.link();
        assert_eq!((link.protocol(), link.sll_ifindex), (0x0800, 2));
        assert_eq!(link.addr(), [2, 0, 0, 0, 0, seq as u8]);
    }
    assert!(reader.try_next().unwrap().is_none());
    assert_eq!(reader.head(), 5);
}

#[test]
fn a_small_ring_goes_round_many_laps() {
    let mut ring = ring(4096, 1, 1024, 0);
    let (mut reader, producer) = ring.split();
    let (mut next, mut published) = (0, 0);
    while next < 1000 {
        // Fill every free slot: a full ring refuses the next claim.
        while let Some(claim) = producer.claim() {
            publish(claim);
            published += 1;
        }
        assert_eq!(published - next, 4, "four slots, all of them full");
        // Take one to three of them.
        for _ in 0..=(next % 3) {
            let frame = reader.try_next().unwrap().unwrap();
            assert_eq!(
                (frame.slot(), seq_of(frame.data())),
                ((next % 4) as u32, next)
            );
            next += 1;
        }
    }
}

#[test]
fn a_later_slot_published_first_does_not_move_the_head() {
    let mut ring = ring(4096, 1, 1024, 0);
    let (mut reader, producer) = ring.split();
    let (first, second) = (producer.claim().unwrap(), producer.claim().unwrap());
    publish(second);
    assert!(!reader.is_ready());
    assert!(reader.try_next().unwrap().is_none());
    let waited = reader.next_frame(Some(Duration::from_millis(20)), nap);
    assert!(waited.unwrap().is_none());
    assert_eq!(reader.head(), 0);

    publish(first);
    for slot in 0..2 {
        let frame = reader.try_next().unwrap().unwrap();
        assert_eq!((frame.slot(), seq_of(frame.data())), (slot, slot.into()));
    }
}

#[test]
fn concurrent_producers_every_frame_once_in_order() {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 5000;
    let mut ring = ring(4096, 1, 256, 0);
    let (mut reader, producer) = ring.split();
    // Releases of a slot after a later slot was released: the out-of-order publication the
    // consumer must wait through.
    let inversions = AtomicU64::new(0);
    let latest = AtomicU64::new(0);

    thread::scope(|s| {
        for _ in 0..PRODUCERS {
            s.spawn(|| {
                for _ in 0..PER_PRODUCER {
                    let claim = claim(&producer);
                    let index = claim.index();
                    if index % 50 == 0 {
                        // A slow copy: producers behind us publish first.
                        thread::sleep(Duration::from_millis(1));
                    }
                    if latest.fetch_max(index, Ordering::Relaxed) > index {
                        inversions.fetch_add(1, Ordering::Relaxed);
                    }
                    publish(claim);
                }
            });
        }
        for expected in 0..PRODUCERS * PER_PRODUCER {
            let frame = reader
                .next_frame(Some(Duration::from_secs(30)), |_| {
                    thread::yield_now();
                    Ok(true)
                })
                .unwrap()
                .expect("producers are running");
            assert_eq!(seq_of(frame.data()), expected);
            assert_eq!(frame.slot() as u64, expected % 16);
        }
    });
    assert!(reader.try_next().unwrap().is_none());
    assert!(inversions.load(Ordering::Relaxed) > 0);
}

#[test]
fn hostile_headers_are_corrupt_frames_handed_back() {
    let mut ring = ring(4096, 1, 1024, 512);
    let (mut reader, producer) = ring.split();
    let good = PktringFrame {
        tp_len: 60,
        tp_snaplen: 60,
        tp_mac: 66,
        tp_net: 80,
        ..PktringFrame::default()
    };
    let cases = [
        (
            PktringFrame {
                tp_mac: u16::MAX,
                ..good
            },
            "past the frame",
        ),
        (
            PktringFrame {
                tp_mac: 960,
                tp_net: 974,
                tp_snaplen: 65,
                tp_len: 65,
                ..good
            },
            "past the frame",
        ),
        (
            PktringFrame {
                tp_snaplen: u32::MAX,
                ..good
            },
            "past the frame",
        ),
        (PktringFrame { tp_mac: 10, ..good }, "into the frame header"),
        (
            PktringFrame {
                tp_snaplen: 61,
                ..good
            },
            "larger than tp_len",
        ),
        (
            PktringFrame {
                tp_snaplen: 600,
                tp_len: 900,
                ..good
            },
            "the ring's snaplen",
        ),
        (PktringFrame { tp_net: 60, ..good }, "before tp_mac"),
        (
            PktringFrame {
                tp_nsec: 1_000_000_000,
                ..good
            },
            "tp_nsec",
        ),
    ];
    let mut expected = 0;
    for (header, why) in cases {
        let mut claim = producer.claim().unwrap();
        let slot = claim.slot();
        claim.write_header(&header);
        claim.release(TP_STATUS_USER);
        let err = match reader.try_next() {
            Err(err) => err,
            Ok(frame) => panic!("{header:?} accepted: {:?}", frame.map(|f| *f.header())),
        };
        assert_eq!(err.slot, slot);
        assert!(err.to_string().contains(why), "{header:?}: {err}");
        assert_eq!(
            producer.tp_status(slot),
            0,
            "a corrupt frame is handed back"
        );
        expected += 1;
        assert_eq!(reader.head(), expected % 4);
    }

    // A status without TP_STATUS_USER, and a link-layer address longer than sll_addr.
    let claim = producer.claim().unwrap();
    claim.release(TP_STATUS_LOSING);
    let err = reader.try_next().err().unwrap();
    assert!(err.reason.contains("TP_STATUS_USER"), "{err}");
    let mut claim = producer.claim().unwrap();
    claim.fill(&FakePacket {
        data: &packet(0),
        ..FakePacket::default()
    });
    let mut link = pktring::uapi::SockaddrLl {
        sll_halen: 200,
        ..Default::default()
    };
    link.sll_addr[0] = 1;
    claim.write_link(&link);
    claim.release(TP_STATUS_USER);
    let err = Error::from(reader.try_next().err().unwrap());
    assert!(err.to_string().contains("sll_halen"), "{err}");

    // The ring goes on.
    let claim = producer.claim().unwrap();
    let index = claim.index();
    publish(claim);
    assert_eq!(seq_of(reader.try_next().unwrap().unwrap().data()), index);
}

#[test]
fn dropping_a_frame_hands_its_slot_back() {
    let mut ring = ring(4096, 1, 1024, 0);
    let (mut reader, producer) = ring.split();
    while let Some(claim) = producer.claim() {
        publish(claim);
    }
    let frame = reader.try_next().unwrap().unwrap();
    assert_eq!(producer.tp_status(0), TP_STATUS_USER);
    assert!(
        producer.claim().is_none(),
        "the slot is ours while the frame lives"
    );
    drop(frame);
    assert_eq!(producer.tp_status(0), 0);
    assert_eq!(producer.claim().map(|claim| claim.slot()), Some(0));
}

#[test]
fn next_frame_times_out_gives_up_and_wakes_for_a_frame() {
    let mut ring = ring(4096, 1, 1024, 0);
    let (mut reader, producer) = ring.split();

    let start = Instant::now();
    assert!(reader
        .next_frame(Some(Duration::from_millis(30)), nap)
        .unwrap()
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(30));

    let start = Instant::now();
    assert!(reader.next_frame(None, |_| Ok(false)).unwrap().is_none());
    assert!(start.elapsed() < Duration::from_secs(1));

    let err = reader
        .next_frame(None, |_| Err(io::ErrorKind::Other.into()))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Io { op: Op::Poll, .. }), "{err}");

    thread::scope(|s| {
        let start = Instant::now();
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            publish(producer.claim().unwrap());
        });
        let frame = reader
            .next_frame(Some(Duration::from_secs(10)), nap)
            .unwrap()
            .expect("published during the wait");
        assert_eq!(frame.slot(), 0);
        assert!(start.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn frames_too_small_for_the_packet_hold_what_fits() {
    // 64 bytes: no room for a MAC header at tp_mac 66; the module records only the metadata,
    // with tp_net past the frame.
    let mut small = ring(4096, 1, 64, 0);
    let (mut reader, producer) = small.split();
    publish(producer.claim().unwrap());
    let frame = reader.try_next().unwrap().unwrap();
    assert_eq!((frame.data(), frame.wire_len()), (&[][..], 60));
    assert_eq!((frame.header().tp_mac, frame.header().tp_net), (52, 66));
    assert_eq!(frame.network(), None);
    assert_eq!(frame.link().addr(), [2, 0, 0, 0, 0, 0]);

    // Snaplen 1: one byte, no network header.
    let mut snap1 = ring(4096, 1, 2048, 1);
    let (mut reader, producer) = snap1.split();
    publish(producer.claim().unwrap());
    let frame = reader.try_next().unwrap().unwrap();
    assert_eq!((frame.data(), frame.network()), (&[0xff][..], None));
}
