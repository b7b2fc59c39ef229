// SPDX-License-Identifier: GPL-2.0

//! Fanout groups: rings behind one hook, which picks one member ring for every packet.
//!
//! A group is af_packet's `PACKET_FANOUT` for rings: its hook is registered with its first
//! member and taken down with its last, and every packet it takes goes to one member, picked by
//! the producing CPU, a symmetric flow hash, the RX queue or round robin. Each member is a ring
//! as a lone one is, with its own lock, filter and readers: the group changes which ring a
//! producer claims in, never how it claims.
//!
//! # Rollover
//!
//! With rollover, a packet whose member has no free slot goes to the next member that has one.
//! A producer claims in one member at a time, each under that member's ring lock alone: it
//! never holds two ring locks, so members need no order among themselves, and a claim is
//! refused or granted by the member's lock as a lone ring's is (never by an unlocked peek at its
//! head, which could overwrite a frame another producer claimed meanwhile: the loom model in
//! `userspace/model` checks both). A packet that every member refused is one drop, counted by
//! the member that was picked.
//!
//! # Members
//!
//! The hook reads the members from an [`RcuSlot`]: an array of rings in the order they joined,
//! replaced as a whole when a member joins or leaves, under [`Fanout::groups`]. A leaving member
//! waits for the grace period after which no producer can be filling it any more. Each member
//! allocates, when it joins, the array that its leaving will publish, so that a release never
//! has to allocate.

use core::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use kernel::bindings;
use kernel::net::namespace::{Namespace, PassiveRef};
use kernel::net::netfilter::{Detached, Hook, HookOptions, HookState, Registration, Verdict};
use kernel::net::skbuff::SkBuff;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::{new_mutex, Arc, BhDisabled, Mutex, RcuSlot};

use crate::errno;
use crate::ring::{detached_errno, Refusal, Ring};
use crate::uapi::{FanoutMode, FanoutRequest, Selection, PKTRING_FANOUT_MAX_MEMBERS};

/// A group's members in the order they joined: the array the hook picks from. Every one a group
/// publishes comes from [`new_members`], with room for `PKTRING_FANOUT_MAX_MEMBERS` rings.
type Members = KVec<Arc<Ring>>;

/// Allocates an empty member array with room for the most members a group may have, so that
/// filling it never allocates.
fn new_members() -> Result<KBox<Members>> {
    Ok(KBox::new(
        KVec::with_capacity(PKTRING_FANOUT_MAX_MEMBERS, GFP_KERNEL)?,
        GFP_KERNEL,
    )?)
}

/// A fanout group: its hook's data.
pub(crate) struct Group {
    /// The id, mode and flags it was made with, which every member joined with.
    req: FanoutRequest,
    /// The network namespace its hook is registered in, which its members capture in.
    net: PassiveRef,
    /// What its first member selects, which every member selects.
    selection: Selection,
    /// The members, which the hook reads with bottom halves disabled.
    members: RcuSlot<Members>,
    /// How many members there are: written under [`Fanout::groups`], read anywhere.
    count: AtomicU32,
    /// Round robin's next member.
    next: AtomicU32,
    /// The errno that ended the group's capture (`ENETDOWN`, `ENONET`), or 0.
    error: AtomicU32,
}

impl Group {
    /// Returns the id, mode and flags of the group.
    pub(crate) fn request(&self) -> &FanoutRequest {
        &self.req
    }

    /// Returns how many members the group has now.
    pub(crate) fn members(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Returns the index of the member of `n` that `skb` goes to.
    fn pick(&self, skb: &SkBuff, n: usize, bh: &BhDisabled<'_>) -> usize {
        match self.req.mode {
            FanoutMode::Cpu => bh.cpu() as usize % n,
            // Scaled into `0..n` as af_packet's `reciprocal_scale()` does.
            FanoutMode::Hash => ((u64::from(skb.symmetric_hash()) * n as u64) >> 32) as usize,
            FanoutMode::Queue => usize::from(skb.rx_queue().unwrap_or(0)) % n,
            FanoutMode::Lb => self.next.fetch_add(1, Ordering::Relaxed) as usize % n,
        }
    }

    /// The producer path of a group: pick a member, run its filter, claim in it, or in the
    /// next members with rollover, one ring lock at a time (see the module documentation).
    fn receive(
        &self,
        members: &[Arc<Ring>],
        skb: &SkBuff,
        state: &HookState<'_>,
        bh: &BhDisabled<'_>,
    ) {
        // The members select alike: any of them answers for all.
        match members.first() {
            Some(first) if first.accepts(skb, state) => {}
            _ => return,
        }
        let n = members.len();
        let picked = self.pick(skb, n, bh);
        let Some(ring) = members.get(picked) else {
            return;
        };
        let Some(admitted) = ring.admit(skb, bh) else {
            return;
        };
        if !self.req.rollover {
            if let Some(claim) = ring.claim(Refusal::Drop, false, bh) {
                ring.deliver(claim, skb, state, admitted, bh);
            }
            return;
        }
        for i in 0..n {
            let Some(member) = members.get((picked + i) % n) else {
                continue;
            };
            if let Some(claim) = member.claim(Refusal::Pass, i != 0, bh) {
                member.deliver(claim, skb, state, admitted, bh);
                return;
            }
        }
        ring.count_drop(bh);
    }

    /// Publishes the member array `array`: the members there are now, but for `leaving`, and then
    /// `joining`. Returns when no producer can be using the array it replaced. Called under
    /// [`Fanout::groups`], which makes it the only writer, in process context with no other lock
    /// held, where [`RcuSlot::replace`] does not fail.
    fn publish(
        &self,
        mut array: KBox<Members>,
        leaving: Option<&Arc<Ring>>,
        joining: Option<&Arc<Ring>>,
    ) -> Result {
        let mut push = |ring: &Arc<Ring>| {
            // `array` comes from `new_members`, with room for every member a group may have
            // (`join` checks the count): `push` does not allocate, and cannot fail.
            let _ = array.push(ring.clone(), GFP_NOWAIT);
        };
        BhDisabled::with(|bh| {
            for ring in self.members.get(bh).into_iter().flatten() {
                if !leaving.is_some_and(|leaving| Arc::ptr_eq(leaving, ring)) {
                    push(ring);
                }
            }
        });
        if let Some(ring) = joining {
            push(ring);
        }
        let count = array.len() as u32;
        // The old array is dropped after the grace period that `replace` waits for.
        self.members.replace(Some(array))?;
        self.count.store(count, Ordering::Relaxed);
        Ok(())
    }
}

impl Hook for Group {
    fn hook(&self, skb: &SkBuff, state: &HookState<'_>, bh: &BhDisabled<'_>) -> Verdict {
        if let Some(members) = self.members.get(bh) {
            self.receive(members, skb, state, bh);
        }
        Verdict::Accept
    }

    /// Ends every member's capture. A member joining meanwhile sees `error` after it published
    /// itself, if this did not see it: the fences order each side's store before its load.
    fn detached(&self, why: Detached) {
        self.error.store(detached_errno(why), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        BhDisabled::with(|bh| {
            for ring in self.members.get(bh).into_iter().flatten() {
                ring.end(detached_errno(why));
            }
        });
    }
}

/// The fanout groups of every network namespace: the registry's.
#[pin_data]
pub(crate) struct Fanout {
    /// Lock 1 of the lock order (see the crate documentation): taken to join and leave a group,
    /// with no other lock held. Hooks are registered and unregistered, arrays allocated and RCU
    /// grace periods waited for under it; neither the hook nor `mmap` takes it.
    #[pin]
    groups: Mutex<Groups>,
}

/// The groups, each by the key it was made with.
struct Groups {
    next: u64,
    map: RBTree<u64, Pin<KBox<Registration<Group>>>>,
}

impl Fanout {
    /// Makes the table with no groups in it.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            groups <- new_mutex!(Groups { next: 0, map: RBTree::new() }, "pktring_fanout"),
        })
    }

    /// Makes `ring` a member of the group `req` names in `net`, or of a new group with a hook
    /// registered at `opts`: the hook then fills it. `EINVAL` if the group selects other than
    /// `selection` or was made with another mode or flags, `ENOSPC` if it is full, `ENODEV`
    /// (`ENONET`) if its hook was taken down with its device (namespace).
    ///
    /// May sleep, takes the RTNL lock: call it with no lock held.
    pub(crate) fn join(
        self: &Arc<Self>,
        net: &Namespace,
        req: &FanoutRequest,
        opts: HookOptions,
        selection: &Selection,
        ring: &Arc<Ring>,
    ) -> Result<Membership> {
        let array = new_members()?;
        let spare = new_members()?;
        let mut groups = self.groups.lock();
        let found = groups.map.iter().find_map(|(key, hook)| {
            let group = hook.data();
            (group.req.id == req.id && group.net.is(net)).then(|| (*key, group.clone()))
        });
        let (key, group) = match found {
            Some((key, group)) => {
                if group.req != *req || group.selection != *selection {
                    return Err(EINVAL);
                }
                match group.error.load(Ordering::Relaxed) {
                    0 => {}
                    bindings::ENONET => return Err(errno(bindings::ENONET)),
                    _ => return Err(ENODEV),
                }
                if group.members() as usize >= PKTRING_FANOUT_MAX_MEMBERS {
                    return Err(ENOSPC);
                }
                group.publish(array, None, Some(ring))?;
                (key, group)
            }
            None => {
                let group = Arc::new(
                    Group {
                        req: *req,
                        net: net.passive(),
                        selection: *selection,
                        members: RcuSlot::new(),
                        count: AtomicU32::new(0),
                        next: AtomicU32::new(0),
                        error: AtomicU32::new(0),
                    },
                    GFP_KERNEL,
                )?;
                group.publish(array, None, Some(ring))?;
                let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
                let hook =
                    KBox::pin_init(Registration::register(net, opts, group.clone()), GFP_KERNEL)?;
                let key = groups.next;
                groups.next += 1;
                groups.map.insert(node.into_node(key, hook));
                (key, group)
            }
        };
        drop(groups);
        // A hook taken down while this ring was joining may have ended only the members before
        // it: see `detached`.
        fence(Ordering::SeqCst);
        match group.error.load(Ordering::Relaxed) {
            0 => {}
            errno => ring.end(errno),
        }
        Ok(Membership {
            fanout: self.clone(),
            key,
            group,
            ring: ring.clone(),
            spare: Some(spare),
            left: AtomicBool::new(false),
        })
    }
}

/// A ring's place in a group, held by its capture: the ring leaves the group when it is dropped,
/// if it did not leave before, and the group goes with its last member.
pub(crate) struct Membership {
    fanout: Arc<Fanout>,
    key: u64,
    group: Arc<Group>,
    ring: Arc<Ring>,
    /// The array that leaving on release publishes, allocated when the ring joined.
    spare: Option<KBox<Members>>,
    /// The ring left the group: written under lock 1.
    left: AtomicBool,
}

impl Membership {
    /// Returns the group.
    pub(crate) fn group(&self) -> &Group {
        &self.group
    }

    /// Returns `true` once the ring has left the group.
    pub(crate) fn has_left(&self) -> bool {
        self.left.load(Ordering::Relaxed)
    }

    /// `PKTRING_IOC_LEAVE_FANOUT`: leaves the group while the ring stays readable. Once this
    /// returns, no producer fills the ring any more. `ENOENT` if it left already, `ENOMEM`.
    /// Takes lock 1, with no other lock held; may sleep.
    pub(crate) fn leave(&self) -> Result {
        let array = new_members()?;
        if self.leave_with(Some(array)) {
            Ok(())
        } else {
            Err(ENOENT)
        }
    }

    /// Leaves the group, publishing the members that stay in `array` (`None` only for the
    /// last member, whose group goes). Returns `false` if the ring had left already.
    fn leave_with(&self, array: Option<KBox<Members>>) -> bool {
        let mut groups = self.fanout.groups.lock();
        // Under lock 1, as every change of the group is.
        if self.left.swap(true, Ordering::Relaxed) {
            return false;
        }
        if self.group.members() <= 1 {
            // The last member: the group goes, and unregistering its hook waits for the
            // producers still in it.
            drop(groups.map.remove(&self.key));
            self.group.count.store(0, Ordering::Relaxed);
            return true;
        }
        if let Some(array) = array {
            // Process context, bottom halves enabled: `publish` cannot fail. Were it to, the ring
            // would stay in the array, which keeps it alive, and only be filled for nothing.
            let _ = self.group.publish(array, Some(&self.ring), None);
        }
        true
    }
}

impl Drop for Membership {
    /// Leaves the group, if the ring is still a member: once this returns, no producer fills
    /// the ring any more. Takes lock 1, with no other lock held; may sleep. Never allocates.
    fn drop(&mut self) {
        let spare = self.spare.take();
        self.leave_with(spare);
    }
}
