#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns one `make bench` guest run into tables, a plot and the target verdicts.

    report.py CONSOLE_LOG TCGSTAT_FILE OUT_DIR [ENV_FILE]

Reads the guest's "@@BENCH key=value ..." lines from the console log and
tcgstat.so's marker lines (host CPU time and guest instructions per vCPU, and
the per-function profile), and writes OUT_DIR/results.md (printed to stdout
too), OUT_DIR/phases.tsv (every number of every phase), OUT_DIR/ratios.tsv
and OUT_DIR/plot.gp (for gnuplot). Only the standard library.

Vocabulary. A phase is one consumer (or none) on one workload. vCPU 0 is the
consumer's alone; vCPUs 1-3 take the RX interrupts or run the in-guest
senders: they are the producing CPUs. Per-packet numbers divide by the
packets that reached the capture point (Ip InReceives), so the baseline
without a consumer has them too; "capture cost" is a phase's cost minus the
baseline's, per packet.
"""
import collections
import math
import os
import re
import subprocess
import sys

KINDS = ("pktring", "pktringb", "tpv2", "tpv3")
# rust_pktring waking the consumer per frontier move (the module's default), and with batched
# wake-ups (wake_frames/wake_usecs).
OURS = ("pktring", "pktringb")
KIND_TITLE = {"pktring": "rust_pktring", "pktringb": "rust_pktring batched", "tpv2": "TPACKET_V2",
              "tpv3": "TPACKET_V3", "none": "no capture"}
WORKLOAD_TITLE = {
    "host-udp64max": "host UDP 64 B, 60k pps offered (saturating)",
    "host-udp64rate": "host UDP 64 B, 15k pps",
    "host-udp1472": "host UDP 1472 B, 30k pps offered",
    "host-tcp": "host TCP, 4 streams (GRO)",
    "lo-udp64": "guest loopback UDP 64 B, 3 senders flat out",
    "lo-udp64k": "guest loopback UDP 65000 B (64 KiB packets), 1500/s",
    "lo-tcp": "guest loopback TCP, 1 stream (64 KiB packets)",
}


def per_mb(workload):
    """TCP moves a different mix of packet sizes under each consumer: count it per MB."""
    return "tcp" in workload


def parse_kv(text):
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


def num(v, default=0.0):
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


class Mark:
    """One tcgstat marker line."""

    def __init__(self, fields):
        self.id = int(fields[1])
        self.t_ns = int(fields[2])
        self.proc_ns = int(fields[3])
        n = int(fields[4])
        self.vcpu = [tuple(int(x) for x in fields[5 + 3 * i:8 + 3 * i]) for i in range(n)]


def read_tcgstat(path, spinby=None):
    """The markers and the per-function profiles of a tcgstat file; with a dict `spinby`, the
    who-spins lines into it too (id -> function -> [insns, episodes] per vCPU, flat)."""
    marks, prof = {}, collections.defaultdict(dict)
    if not os.path.exists(path):
        return marks, prof
    with open(path, errors="replace") as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "M":
                m = Mark(fields)
                marks[m.id] = m
            elif fields[0] == "P":
                prof[int(fields[1])][fields[2]] = [int(x) for x in fields[3:]]
            elif fields[0] == "S" and spinby is not None:
                spinby.setdefault(int(fields[1]), {})[fields[2]] = [int(x) for x in fields[3:]]
    return marks, prof


def note_or_ksym(line, notes, ksyms):
    """Takes an "@@NOTE text" line into notes or an "@@KSYM addr name" line into ksyms; returns
    whether the line was one of them."""
    i = line.find("@@NOTE ")
    if i >= 0:
        notes.append(line[i + 7:].strip())
        return True
    i = line.find("@@KSYM ")
    if i >= 0:
        parts = line[i + 7:].split()
        if len(parts) >= 2:
            try:
                ksyms.append((int(parts[0], 16), parts[1]))
            except ValueError:
                pass
        return True
    return False


def read_console(path):
    """The @@BENCH lines, @@NOTE lines and module symbols (@@KSYM addr name).

    Each phase gets the symbols of the module build loaded last before it ("ksyms"); the
    returned list is the first build's."""
    phases, notes, ksyms, first = [], [], [], None
    # What the traffic command said it sent (the guest's copy of pktgen's line, or udpgen's): it
    # goes with the phase lines of the next marker.
    sent, sent_mark = None, None
    with open(path, errors="replace") as f:
        for raw in f:
            line = raw.replace("\r", "")
            m = re.match(r"(?:pktgen udp|udpgen): sent (\d+) ", line)
            if m:
                sent, sent_mark = int(m.group(1)), None
                continue
            i = line.find("@@BENCH ")
            if i >= 0:
                phases.append(parse_kv(line[i + 8:]))
                phases[-1]["ksyms"] = ksyms
                if sent is not None:
                    if sent_mark is None:
                        sent_mark = phases[-1].get("mark")
                    if phases[-1].get("mark") == sent_mark:
                        phases[-1]["sent"] = sent
                    else:
                        sent = None
                continue
            if "@@KSYM-BEGIN" in line:
                ksyms = []
                if first is None:
                    first = ksyms
                continue
            if note_or_ksym(line, notes, ksyms):
                continue
    for ph in phases:
        ph["ksyms"].sort()
    return phases, notes, first if first is not None else ksyms


def resolve(name, ksyms):
    """Names a "@<hex>" profile entry after the module symbol it falls in."""
    if not name.startswith("@") or not ksyms:
        return name
    addr = int(name[1:], 16)
    lo, hi = 0, len(ksyms)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ksyms[mid][0] <= addr:
            lo = mid
        else:
            hi = mid
    a, sym = ksyms[lo]
    if a <= addr < a + 0x4000:
        return sym
    return name


def demangle(names):
    """Rust (v0) symbols demangled by binutils' c++filt, without crate hashes."""
    names = sorted(set(n for n in names if n.startswith("_R")))
    if not names:
        return {}
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                             check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {}
    if len(out) != len(names):
        return {}
    return {n: re.sub(r"\[[0-9a-f]+\]", "", d) for n, d in zip(names, out)}


# Functions whose instructions are a CPU waiting for a lock, not doing the work.
SPIN_FUNCS = ("queued_spin_lock_slowpath", "native_queued_spin_lock_slowpath",
              "__pv_queued_spin_lock_slowpath")


def split_label(ph):
    """workload, geom, kind, extra from a label."""
    label = ph.get("label", "")
    kind = ph.get("kind", "")
    if ph.get("mode") == "memcpy":
        return "memcpy", "", ph.get("method", ""), ""
    parts = label.split("-")
    if label.startswith("fanout-"):
        # fanout-<workload>-<variant>: none, ring (one ring), cpu or hash (a group)
        return "-".join(parts[1:-1]), "a", parts[-1], "fanout"
    if label.startswith("ab-"):
        # ab-<workload>-<geom>-<build>-<round>
        return "-".join(parts[1:-3]), parts[-3], kind, parts[-2]
    if label.startswith("multi-"):
        return "-".join(parts[1:-1]), parts[-1], kind, "multi"
    if parts[-1] == "none":
        return "-".join(parts[:-1]), "", "none", ""
    return "-".join(parts[:-2]), parts[-2], parts[-1], ""


def ring_lock_spin(ph, spins, ksyms):
    """From tcgstat's who-spins lines: the spinning that rust_pktring's code asked for (its ring
    lock: the module takes no other spin lock on the packet path), and the rest, on the
    producing CPUs and the consumer's; instructions and episodes (slowpath entries)."""
    names = {name for _, name in ksyms}
    r = dict(rspin_prod=0, rspin_cons=0, reps_prod=0, reps_cons=0, ospin_prod=0, oeps_prod=0)
    for name, counts in spins.items():
        ins, eps = counts[0::2], counts[1::2]
        # The kernel crate's SpinLockBh backend is rust_pktring's alone (a tcgstat that did not
        # skip it names it instead of the module's code that called it).
        ours = resolve(name, ksyms) in names or "SpinLockBhBackend" in name
        if ours:
            r["rspin_cons"] += ins[0] if ins else 0
            r["reps_cons"] += eps[0] if eps else 0
            r["rspin_prod"] += sum(ins[1:])
            r["reps_prod"] += sum(eps[1:])
        else:
            r["ospin_prod"] += sum(ins[1:])
            r["oeps_prod"] += sum(eps[1:])
    return r


def derive(ph, marks, prof, ksyms, spinby=None):
    """Adds the derived numbers to a phase dict."""
    wl, geom, kind, extra = split_label(ph)
    ph.update(workload=wl, geom=geom, kindl=kind, extra=extra)
    m = int(num(ph.get("mark"), -1))
    a, b = marks.get(m), marks.get(m + 1)
    hz = num(ph.get("hz"), 100) or 100
    busy = sum(num(ph.get(k)) for k in ("cpu_user", "cpu_sys", "cpu_irq", "cpu_softirq")) / hz
    ph["guest_busy_s"] = busy
    ph["guest_softirq_s"] = num(ph.get("cpu_softirq")) / hz
    n = num(ph.get("ip_in"))
    if per_mb(wl):
        n = num(ph.get("if_bytes")) / 1e6
    ph["n"] = n
    span = num(ph.get("span"))
    ph["cap_pps"] = num(ph.get("pkts")) / span if span > 0 else 0.0
    ph["cap_MBps"] = num(ph.get("cap_bytes")) / span / 1e6 if span > 0 else 0.0
    ph["has_host"] = bool(a and b and a.vcpu and b.vcpu)
    if not ph["has_host"]:
        return ph
    nv = min(len(a.vcpu), len(b.vcpu))
    cpu = [(b.vcpu[i][0] - a.vcpu[i][0]) / 1e9 for i in range(nv)]
    ins = [(b.vcpu[i][1] - a.vcpu[i][1]) + (b.vcpu[i][2] - a.vcpu[i][2]) for i in range(nv)]
    kins = [(b.vcpu[i][2] - a.vcpu[i][2]) for i in range(nv)]
    ph["wall"] = (b.t_ns - a.t_ns) / 1e9
    ph["host_proc_s"] = (b.proc_ns - a.proc_ns) / 1e9
    ph["host_vcpu_s"] = sum(cpu)
    ph["host_cons_s"] = cpu[0]
    ph["host_prod_s"] = sum(cpu[1:])
    ph["ins_cons"] = ins[0]
    ph["ins_prod"] = sum(ins[1:])
    ph["kins_total"] = sum(kins)
    if n > 0:
        ph["us_pkt"] = ph["host_vcpu_s"] / n * 1e6
        ph["us_pkt_prod"] = ph["host_prod_s"] / n * 1e6
        ph["us_pkt_cons"] = ph["host_cons_s"] / n * 1e6
        ph["ipp_prod"] = ph["ins_prod"] / n
        ph["ipp_cons"] = ph["ins_cons"] / n
        ph["guest_s_Mpkt"] = busy / n * 1e6
        if ph["host_prod_s"] > 0:
            ph["n_per_prod_s"] = n / ph["host_prod_s"]
    p = prof.get(m + 1)
    if p:
        agg = collections.defaultdict(lambda: [0, 0])
        for name, counts in p.items():
            key = resolve(name, ph.get("ksyms") or ksyms)
            agg[key][0] += counts[0] if counts else 0
            agg[key][1] += sum(counts[1:])
        ph["profile"] = dict(agg)
        spin = [agg[f] for f in SPIN_FUNCS if f in agg]
        ph["spin_cons"] = sum(x[0] for x in spin)
        ph["spin_prod"] = sum(x[1] for x in spin)
        # The owner map's own code (the bitmap), and the ring lock's (spinning aside).
        bitmap = sum(c[1] for f, c in agg.items() if "6Bitmap" in f)
        lock = sum(c[1] for f, c in agg.items()
                   if f in ("rust_helper_spin_lock", "_raw_spin_lock", "_raw_spin_unlock")
                   or "SpinLockBhBackend" in f)
        spins = (spinby or {}).get(m + 1)
        if spins is not None:
            ph.update(ring_lock_spin(ph, spins, ph.get("ksyms") or ksyms))
            ph["has_rspin"] = True
        if n > 0:
            ph["bitmap_ipp"] = bitmap / n
            ph["lock_ipp"] = lock / n
            ph["wpp_prod"] = (ph["ins_prod"] - ph["spin_prod"]) / n
            ph["spp_prod"] = ph["spin_prod"] / n
            ph["spp_cons"] = ph["spin_cons"] / n
    return ph


# The fanout section: one ring against groups of 3 (bench/guest.sh).
FANOUT_VARIANTS = ("none", "ring", "cpu", "hash", "cpupin", "hashpin")
FANOUT_GROUPS = ("cpu", "hash", "cpupin", "hashpin")
# Groups whose consumers run on the producing CPUs: there the producers' CPU time and
# instructions include the consumers', so the columns that split the two are left out.
FANOUT_PINNED = ("cpupin", "hashpin")
FANOUT_TITLE = {"none": "no capture", "ring": "one ring (pktring)", "cpu": "group of 3, cpu mode",
                "hash": "group of 3, hash mode",
                "cpupin": "group of 3, cpu mode, consumers on CPUs 3, 1, 2",
                "hashpin": "group of 3, hash mode, consumers on CPUs 3, 1, 2"}
FANOUT_WORKLOAD_TITLE = {"host-udp64": "host UDP 64 B, 120k pps offered (saturating)",
                         "lo-udp64": "guest loopback UDP 64 B, 3 senders flat out"}
# "No cross-CPU ring-lock spinning" in cpu mode, on the producing CPUs: fewer contended ring-lock
# acquisitions (spin episodes: entries into queued_spin_lock_slowpath that rust_pktring's code
# asked for) than FANOUT_EPISODES_MAX per 1000 packets, and fewer spin instructions per packet
# than FANOUT_SPIN_REL of one ring's in the same boot. Both, since under TCG an episode lasts as
# long as the host leaves the holder's vCPU thread off its CPU (from tens to tens of thousands
# of instructions in one boot): the count of episodes is the contention, the instructions are
# what it cost.
FANOUT_EPISODES_MAX = 1.0
FANOUT_SPIN_REL = 0.05
FANOUT_CAPTURE_MIN = 1.3

SUMMED = ("pkts", "k_drops", "k_packets", "polls", "spurious", "cap_bytes", "wire_bytes", "woken",
          "nvcsw", "nivcsw", "sent", "ip_in")


def merge(runs):
    """One phase from several runs of the same cell: counts summed, the rest averaged."""
    if len(runs) == 1:
        return runs[0]
    out = dict(runs[0])
    out["runs"] = len(runs)
    for k, v in runs[0].items():
        vals = [r.get(k) for r in runs]
        if isinstance(v, bool) or not all(isinstance(x, (int, float, str)) for x in vals):
            continue
        try:
            nums = [float(x) for x in vals]
        except (TypeError, ValueError):
            continue
        out[k] = sum(nums) if k in SUMMED else sum(nums) / len(nums)
    out["has_host"] = all(r.get("has_host") for r in runs)
    return out


def wakeups_per_k(ph):
    """The consumer's wake-ups per 1000 captured packets: its thread's voluntary context
    switches (None from a run before pktbench counted them)."""
    if not ph or "nvcsw" not in ph:
        return None
    return num(ph.get("nvcsw")) / max(num(ph.get("pkts")), 1) * 1000


def fmt(v, digits=0, unit=""):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fr(v):
    return "–" if v is None else f"{v:.2f}×"


def dratio(a, b):
    """The ratio of two costs over the baseline; none where either is lost in the noise."""
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return a / b


class Report:
    def __init__(self, phases, notes, marks, capture=None):
        self.phases = phases
        self.notes = notes
        self.marks = marks
        self.capture = capture
        self.out = []
        self.verdicts = []
        self.fanout_verdicts = []
        # (workload, geom, kind) -> phase; baselines under geom "". A cell measured more than
        # once is the mean of its runs (counts summed), in place of the first.
        runs = collections.defaultdict(list)
        for ph in phases:
            if ph.get("mode") == "consume" and not ph["extra"]:
                runs[(ph["workload"], ph["geom"], ph["kindl"])].append(ph)
        self.cell = {key: merge(L) for key, L in runs.items()}
        self.phases = []
        for ph in phases:
            key = (ph.get("workload"), ph.get("geom"), ph.get("kindl"))
            if ph.get("mode") == "consume" and not ph["extra"]:
                if runs[key] and runs[key][0] is ph:
                    self.phases.append(self.cell[key])
            else:
                self.phases.append(ph)

    def p(self, s=""):
        self.out.append(s)

    def fanout_cells(self):
        """The fanout section's phases, (workload, variant) -> phase, runs merged (the aggregate
        line of a group), and (workload, variant) -> member -> its runs. Per-packet numbers are
        taken per run, before the runs are averaged."""
        runs, members = collections.defaultdict(list), collections.defaultdict(dict)
        for ph in self.phases:
            if ph.get("extra") != "fanout":
                continue
            key = (ph["workload"], ph["kindl"])
            if ph.get("mode") == "fanout" and ph.get("member") != "all":
                members[key].setdefault(ph.get("member"), []).append(ph)
            elif ph.get("mode") in ("fanout", "consume"):
                runs[key].append(ph)
        bases = {wl: merge(L) for (wl, v), L in runs.items() if v == "none"}
        for (wl, v), L in runs.items():
            b = bases.get(wl)
            for ph in L:
                n = ph.get("n") or 0
                pk = num(ph.get("pkts"))
                if n and ph.get("has_rspin"):
                    ph["rspp_prod"] = ph["rspin_prod"] / n
                    ph["rspp_cons"] = ph["rspin_cons"] / n
                    ph["reps_k"] = ph["reps_prod"] / n * 1000
                    ph["ospp_prod"] = ph["ospin_prod"] / n
                if n and pk and b and "wpp_prod" in ph and "wpp_prod" in b:
                    ph["capwork"] = (ph["wpp_prod"] - b["wpp_prod"]) * n / pk
                if n and b and "spp_prod" in ph and "spp_prod" in b:
                    ph["xspp_prod"] = ph["spp_prod"] - b["spp_prod"]
                if n and "profile" in ph:
                    ph["prof_pp"] = {f: prod / n for f, (cons, prod) in ph["profile"].items()}
        cells = {}
        for key, L in runs.items():
            c = merge(L)
            c["runs"] = len(L)
            # Per-run numbers that a run may lack are averaged over the runs that have them.
            vals = [x["capwork"] for x in L if x.get("capwork") is not None]
            c["capwork"] = sum(vals) / len(vals) if vals else None
            # The mean length of a ring-lock spin episode on the producers, over all the runs.
            c["rs_per_ep"] = (c["rspin_prod"] / c["reps_prod"]
                              if c.get("has_rspin") and c.get("reps_prod") else None)
            profs = [x["prof_pp"] for x in L if "prof_pp" in x]
            if profs:
                c["prof_pp"] = {f: sum(d.get(f, 0) for d in profs) / len(profs)
                                for f in set().union(*profs)}
            cells[key] = c
        return cells, members

    def base(self, wl):
        return self.cell.get((wl, "", "none"))

    def delta(self, ph, key):
        """A phase's per-packet number minus its workload's baseline."""
        b = self.base(ph["workload"])
        if not b or key not in ph or key not in b:
            return None
        return ph[key] - b[key]

    def per_captured(self, ph):
        """The producers' work over the baseline, per captured packet: what a packet that was
        copied cost (a drop, which copies nothing, would make an offered packet look cheap).
        A merged cell's `n` is the mean of its runs' and its `pkts` their sum: a run's share."""
        d = self.delta(ph, "wpp_prod")
        if d is None or not num(ph.get("pkts")):
            return None
        return d * ph["n"] / (num(ph.get("pkts")) / ph.get("runs", 1))

    def workloads(self):
        seen = []
        for ph in self.phases:
            if ph.get("mode") == "consume" and not ph["extra"] and ph["workload"] not in seen:
                seen.append(ph["workload"])
        return seen

    # -- tables ---------------------------------------------------------
    def ratios(self):
        rows = []
        for wl in self.workloads():
            for geom in ("a", "b"):
                c = {k: self.cell.get((wl, geom, k)) for k in KINDS}
                for ours in OURS:
                    if c[ours]:
                        rows.append(self.ratio_row(wl, geom, ours, c))
        return rows

    def ratio_row(self, wl, geom, ours, c):
        """One of ours (immediate or batched) against V2 and V3 on a workload and geometry."""
        r = {"workload": wl, "geom": geom, "ours": ours}
        pr = c[ours]
        for k in ("tpv2", "tpv3"):
            o = c[k]
            r["pps_" + k] = ratio(pr["cap_pps"], o["cap_pps"]) if o else None
            r["cap_" + k] = ratio(pr.get("n_per_prod_s"), o.get("n_per_prod_s")) if o else None
            r["cost_" + k] = dratio(self.delta(pr, "us_pkt"), self.delta(o, "us_pkt")) if o else None
            r["ins_" + k] = dratio(self.delta(pr, "ipp_prod"), self.delta(o, "ipp_prod")) if o else None
            r["work_" + k] = dratio(self.per_captured(pr), self.per_captured(o)) if o else None
        r["drops"] = "/".join(str(int(num(c[k].get("k_drops")))) if c[k] else "–"
                              for k in (ours, "tpv2", "tpv3"))
        return r

    def table_ratios(self, rows):
        self.p("## Ratios: rust_pktring ÷ af_packet, same boot, same traffic")
        self.p()
        self.p("pps: captured packets/s on the guest clock (moves with the host's other load). "
               "pkts/prod-CPU: packets per second of host CPU on the producing vCPUs, the same "
               "throughput with that load taken out (higher is better). cost: host CPU per packet "
               "on all vCPUs, producers and consumer, minus the no-capture baseline (lower is "
               "better). insns: guest instructions per packet on the producing CPUs, minus the "
               "baseline (lower is better; immune to host load); work: the same without the "
               "instructions spent spinning on contended spin locks (which a preempted vCPU "
               "inflates under TCG), per captured packet. TCP rows count per MB, not per packet. –: a cost lost in "
               "the noise (not above the baseline). drops: the kernel's count, "
               "rust_pktring/V2/V3. ours: rust_pktring waking per frontier move (immediate) or "
               "with batched wake-ups (batched: a quarter of the ring or 10 ms).")
        self.p()
        self.p("| workload | geom | ours | pps ÷V2 | pps ÷V3 | pkts/prod-CPU ÷V2 | ÷V3 | cost ÷V2 | cost ÷V3 | "
               "insns ÷V2 | ÷V3 | work ÷V2 | ÷V3 | drops |")
        self.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            self.p(f"| {r['workload']} | {r['geom']} | {'batched' if r['ours'] == 'pktringb' else 'immediate'} | "
                   f"{fr(r['pps_tpv2'])} | {fr(r['pps_tpv3'])} | "
                   f"{fr(r['cap_tpv2'])} | {fr(r['cap_tpv3'])} | "
                   f"{fr(r['cost_tpv2'])} | {fr(r['cost_tpv3'])} | {fr(r['ins_tpv2'])} | "
                   f"{fr(r['ins_tpv3'])} | {fr(r['work_tpv2'])} | {fr(r['work_tpv3'])} | {r['drops']} |")
        self.p()

    def table_details(self):
        self.p("## Every phase")
        self.p()
        self.p("pps and MB/s: captured, on the guest's clock. drops: the kernel's count. guest CPU: "
               "/proc/stat non-idle seconds per million packets, all vCPUs (softirq part). host µs/pkt: "
               "host CPU of the vCPU threads per packet, producers + consumer. insns/pkt: guest "
               "instructions per packet on the producing CPUs (capture cost over the baseline) "
               "and on the consumer's CPU.")
        self.p()
        self.p("| workload | geom | consumer | pps | MB/s | drops | guest CPU s/Mpkt (softirq) | "
               "host µs/pkt prod + cons | insns/pkt prod (Δ) | of which spin | insns/pkt cons "
               "(spin) | polls/kpkt |")
        self.p("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for ph in self.phases:
            if ph.get("mode") != "consume" or ph["extra"]:
                continue
            n = ph["n"] or 1
            soft = ph["guest_softirq_s"] / n * 1e6
            d = self.delta(ph, "ipp_prod")
            polls = num(ph.get("polls")) / max(num(ph.get("pkts")), 1) * 1000
            self.p(f"| {ph['workload']} | {ph['geom'] or '–'} | {KIND_TITLE.get(ph['kindl'], ph['kindl'])} | "
                   f"{fmt(ph['cap_pps'])} | {fmt(ph['cap_MBps'], 2)} | {fmt(num(ph.get('k_drops')))} | "
                   f"{fmt(ph.get('guest_s_Mpkt'), 1)} ({fmt(soft, 1)}) | "
                   f"{fmt(ph.get('us_pkt_prod'), 1)} + {fmt(ph.get('us_pkt_cons'), 1)} | "
                   f"{fmt(ph.get('ipp_prod'))} ({'+' if d and d > 0 else ''}{fmt(d)}) | "
                   f"{fmt(ph.get('spp_prod'))} | {fmt(ph.get('ipp_cons'))} ({fmt(ph.get('spp_cons'))}) | "
                   f"{fmt(polls) if ph['kindl'] != 'none' else '–'} |")
        self.p()

    def table_consumer(self):
        self.p("## The consumer's side")
        self.p()
        self.p("Per 1000 captured packets, geometry a: wake-ups (the consumer thread's voluntary "
               "context switches: each is a sleep in poll() that a wake-up ended, a packet's or "
               "the 50 ms timeout's), poll() calls (spurious: poll() said readable and the "
               "consumer's next frame was still not ready), and instructions per packet on the "
               "consumer's CPU (its loop, poll(), the wake-ups it takes). rust_pktring wakes "
               "the poller when the release frontier moves (immediate) or once a quarter of the "
               "ring is ready or 10 ms after the first frame not woken for (batched); V2 wakes "
               "per packet; V3 per block (or after its 10 ms block timeout).")
        self.p()
        self.p("| workload | " + " | ".join(f"{KIND_TITLE[k]} wake-ups/kpkt" for k in KINDS) + " | " +
               " | ".join(f"{KIND_TITLE[k]} polls/kpkt (spurious)" for k in KINDS) + " | " +
               " | ".join(f"{KIND_TITLE[k]} insns/pkt" for k in KINDS) + " |")
        self.p("|---|" + "---|" * (3 * len(KINDS)))
        per_k = lambda x, k: num(x.get(k)) / max(num(x.get("pkts")), 1) * 1000
        for wl in self.workloads():
            c = [self.cell.get((wl, "a", k)) for k in KINDS]
            if not all(c):
                continue
            wake = " | ".join(fmt(wakeups_per_k(x), 1) for x in c)
            polls = " | ".join(f"{fmt(per_k(x, 'polls'), 1)} ({fmt(per_k(x, 'spurious'), 1)})" for x in c)
            ins = " | ".join(fmt(x.get("ipp_cons")) for x in c)
            self.p(f"| {wl} | {wake} | {polls} | {ins} |")
        self.p()

    def memcpy_rows(self):
        """The better run of each method and thread count."""
        best = {}
        for ph in self.phases:
            if ph.get("mode") != "memcpy":
                continue
            ph["per_vcpu_s"] = num(ph.get("bytes")) / ph["host_vcpu_s"] / 1e6 \
                if ph.get("host_vcpu_s") else 0.0
            key = (ph.get("method"), ph.get("threads"))
            if key not in best or ph["per_vcpu_s"] > best[key]["per_vcpu_s"]:
                best[key] = ph
        return list(best.values())

    def memcpy_per_cpu(self, method):
        for ph in self.memcpy_rows():
            if ph.get("method") == method and ph.get("threads") == "1" and ph.get("host_vcpu_s"):
                return ph["per_vcpu_s"]
        return None

    def memcpy_ipb(self, method):
        for ph in self.memcpy_rows():
            if ph.get("method") == method and ph.get("threads") == "1" and ph.get("has_host"):
                return (ph["ins_prod"] + ph["ins_cons"]) / max(num(ph.get("bytes")), 1)
        return None

    def table_memcpy(self):
        rows = self.memcpy_rows()
        if not rows:
            return
        self.p("## The guest's memcpy bandwidth (64 KiB copies)")
        self.p()
        self.p("libc is glibc's memcpy (rep movsb at this size, the CPU has ERMS); movsb is rep movsb; "
               "movq is the kernel's memcpy without FSRM (memcpy_orig: 4 × 8 bytes a turn), which is "
               "what skb_copy_bits() uses in this guest; sse2 a 16-byte vector loop. MB/s is on the "
               "guest clock; MB per vCPU-second divides by the host CPU the vCPU threads used. Each "
               "ran twice; the better run is shown. Under TCG a `rep movsb` costs a translated-block "
               "dispatch per byte, so glibc's memcpy is 10× slower here than the kernel's loop.")
        self.p()
        self.p("| method | threads | MB/s (guest clock) | MB per vCPU-second (host CPU) | insns per byte |")
        self.p("|---|---|---|---|---|")
        for ph in rows:
            per = num(ph.get("bytes")) / ph["host_vcpu_s"] / 1e6 if ph.get("host_vcpu_s") else None
            ipb = (ph.get("ins_prod", 0) + ph.get("ins_cons", 0)) / max(num(ph.get("bytes")), 1) \
                if ph.get("has_host") else None
            self.p(f"| {ph.get('method')} | {ph.get('threads')} | {fmt(num(ph.get('mbps')), 1)} | "
                   f"{fmt(per, 1)} | {fmt(ipb, 3)} |")
        self.p()

    def copy_efficiency(self):
        """The 64 KiB case: what the capture's copy costs per byte on the producing CPUs."""
        rows = []
        for wl in ("lo-udp64k", "host-tcp", "lo-tcp"):
            b = self.base(wl)
            for k in KINDS:
                ph = self.cell.get((wl, "b", k))
                if not ph or not b or not ph.get("has_host") or not b.get("has_host"):
                    continue
                wire_b = num(b.get("if_bytes")) or 1
                wire = num(ph.get("if_bytes")) or 1
                # The baseline's producer CPU and instructions, scaled to the bytes this phase
                # moved; what is left over is what the capture cost, per captured byte.
                extra_s = ph["host_prod_s"] - b["host_prod_s"] * wire / wire_b
                extra_i = ph["ins_prod"] - b["ins_prod"] * wire / wire_b
                cap = num(ph.get("cap_bytes"))
                rate = cap / extra_s / 1e6 if extra_s > 0 and cap else None
                ipb = extra_i / cap if cap else None
                rows.append((wl, k, ph, rate, ipb))
        return rows

    def table_copy(self, rows):
        if not rows:
            return
        lib, movq = self.memcpy_per_cpu("libc"), self.memcpy_per_cpu("movq")
        ilib, imovq = self.memcpy_ipb("libc"), self.memcpy_ipb("movq")
        self.p("## 64 KiB frames: copy rate on the producing CPUs")
        self.p()
        self.p("Geometry b (64 KiB frames, 4 slots). capture MB per producer CPU-s: captured bytes ÷ "
               "the extra host CPU the producing vCPUs used over the no-capture baseline (scaled to "
               "the same bytes through), against one vCPU's memcpy in MB per vCPU-second. insns/B: "
               "the extra guest instructions on the producing CPUs per captured byte, against "
               "memcpy's instructions per byte (÷: memcpy's rate over the capture's, in "
               "instructions). lo-udp64k moves the same bytes in every phase, so it is the clean one.")
        self.p()
        self.p("| workload | consumer | captured MB/s | drops | capture MB per producer CPU-s "
               "| ÷ memcpy libc | ÷ memcpy movq | insns/B | ÷ libc | ÷ movq |")
        self.p("|---|---|---|---|---|---|---|---|---|---|")
        for wl, k, ph, rate, ipb in rows:
            self.p(f"| {wl} | {KIND_TITLE[k]} | {fmt(ph['cap_MBps'], 1)} | "
                   f"{fmt(num(ph.get('k_drops')))} | {fmt(rate, 1)} | {fr(ratio(rate, lib))} | "
                   f"{fr(ratio(rate, movq))} | {fmt(ipb, 3)} | {fr(ratio(ilib, ipb))} | "
                   f"{fr(ratio(imovq, ipb))} |")
        self.p()

    def owner_rows(self):
        ab = collections.defaultdict(lambda: collections.defaultdict(list))
        for ph in self.phases:
            if ph.get("label", "").startswith("ab-") and ph.get("has_host"):
                ab[(ph["workload"], ph["geom"])][ph["extra"]].append(ph)
        return ab

    def table_owner(self):
        ab = self.owner_rows()
        if not ab:
            return []
        self.p("## Owner map and locked release vs. the build without them")
        self.p()
        self.p("rust_pktring as built (owner), `make noowner` (PKTRING_TEST_NO_OWNER_MAP: no bitmap, "
               "but the release still takes the lock) and any extra builds, alternated round by "
               "round. Per offered packet, mean over rounds (min–max): producer instructions, the "
               "same without lock spinning (work), host CPU. capture work: the producers' work "
               "over the no-capture baseline's, per captured packet (so that a run with drops, "
               "which copy nothing, does not look cheaper). The verdict compares capture work, "
               "which is exact up to the wake-ups the consumer's timing causes; host CPU on a "
               "shared 2-core host moves by more than 3% from phase to phase.")
        self.p()
        self.p("| workload | geom | build | rounds | drops | producer work insns/pkt (spin) | "
               "capture work/captured pkt | vs noowner | bitmap insns/pkt | lock insns/pkt | "
               "consumer insns/pkt | polls/kpkt (spurious) | host µs/pkt |")
        self.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        out = []
        mean = lambda L, k: sum(x.get(k, 0) for x in L) / len(L)
        rng = lambda L, k: f"{min(x.get(k, 0) for x in L):,.0f}–{max(x.get(k, 0) for x in L):,.0f}"
        def capwork(L, bw):
            """Mean capture work per captured packet."""
            v = [(x["wpp_prod"] - bw) * x["n"] / max(num(x.get("pkts")), 1) for x in L]
            return sum(v) / len(v)

        for (wl, geom), builds in ab.items():
            base = self.base(wl)
            bw = base.get("wpp_prod") if base else None
            ref = builds.get("noowner")
            ref_cap = capwork(ref, bw) if ref and bw is not None else None
            for build, L in builds.items():
                w = mean(L, "wpp_prod")
                cap = capwork(L, bw) if bw is not None else None
                rel = (cap - ref_cap) / ref_cap if cap is not None and ref_cap else None
                if build == "owner" and cap:
                    # Counted directly: the bitmap's functions, and the second lock round trip
                    # (the build without the release's lock, if there is one; else half of the
                    # two round trips).
                    bitmap = mean(L, "bitmap_ipp")
                    nolock = builds.get("nolockrel")
                    release_lock = mean(L, "lock_ipp") - (mean(nolock, "lock_ipp") if nolock
                                                          else mean(L, "lock_ipp") / 2)
                    out.append(dict(wl=wl, rel=rel, d=cap - ref_cap if ref_cap is not None else None,
                                    bitmap=bitmap, lock=release_lock, cap=cap,
                                    direct=(bitmap + release_lock) / cap))
                drops = sum(int(num(x.get("k_drops"))) for x in L)
                polls = sum(num(x.get("polls")) for x in L) / max(sum(num(x.get("pkts")) for x in L), 1)
                spur = sum(num(x.get("spurious")) for x in L) / max(sum(num(x.get("pkts")) for x in L), 1)
                self.p(f"| {wl} | {geom} | {build} | {len(L)} | {drops} | {w:,.0f} ({rng(L, 'wpp_prod')}) "
                       f"({mean(L, 'spp_prod'):,.0f}) | "
                       f"{fmt(cap)} | {'–' if rel is None else f'{rel:+.1%}'} | "
                       f"{mean(L, 'bitmap_ipp'):.1f} | {mean(L, 'lock_ipp'):.1f} | "
                       f"{mean(L, 'ipp_cons'):,.0f} | {polls * 1000:,.0f} ({spur * 1000:,.0f}) | "
                       f"{mean(L, 'us_pkt'):.1f} |")
        self.p()
        return out

    def table_multi(self):
        rows = [ph for ph in self.phases if ph.get("mode") == "multi"]
        if not rows:
            return
        self.p("## Fairness: the three consumers at once on the same packets")
        self.p()
        self.p("One process on CPU 0, one thread per ring; each ring sees every packet.")
        self.p()
        self.p("| workload | consumer | captured | drops | packets seen by the kernel | polls/kpkt |")
        self.p("|---|---|---|---|---|---|")
        for ph in rows:
            polls = num(ph.get("polls")) / max(num(ph.get("pkts")), 1) * 1000
            self.p(f"| {ph['workload']} | {KIND_TITLE.get(ph.get('kind'), ph.get('kind'))} | "
                   f"{fmt(num(ph.get('pkts')))} | {fmt(num(ph.get('k_drops')))} | "
                   f"{fmt(num(ph.get('k_packets')))} | {fmt(polls)} |")
        self.p()

    def fanout_spin(self, c):
        """Ring-lock spinning on the producers per packet, and how it was counted."""
        if c.get("rspp_prod") is not None:
            return c["rspp_prod"], "ring-lock"
        if c.get("xspp_prod") is not None:
            return max(c["xspp_prod"], 0.0), "all spinning over the baseline's"
        return None, ""

    def table_fanout(self):
        cells, members = self.fanout_cells()
        wls = [w for w in FANOUT_WORKLOAD_TITLE if any(k[0] == w for k in cells)]
        if not wls:
            return
        self.p("## Fanout: one ring against groups of 3 rings")
        self.p()
        self.p("One ring (the pktring consumer: one thread, immediate wake-ups) and fanout groups of 3 "
               "members (cpu mode: member = producing CPU % 3; hash: the symmetric flow hash), one "
               "consumer thread per member, on the same traffic in turn, in pairs of runs in opposite "
               "orders (runs: how many; summed or averaged over them). The producing CPUs are 1-3 in every "
               "phase and every consumer thread is on CPU 0, but in the pinned groups, whose member I's "
               "consumer is on CPU 3, 1 or 2 (cpu mode: beside the CPU that fills its ring), and whose "
               "columns that split producer from consumer CPU are left out (–); the group's members share the one ring's 4 MiB "
               "(22, 21 and 21 blocks of 64 KiB, 2 KiB frames). captured: packets the consumers read; "
               "by member: the kernel's packets per member. sent: what pktgen (host) or udpgen (loopback) sent; reached IP: Ip InReceives. Counts are summed over the runs. pkts/prod-CPU: packets per host "
               "CPU-second on the producing vCPUs. capture work: producer instructions without "
               "spinning, over the no-capture baseline, per captured packet. ring-lock spin: "
               "instructions in queued_spin_lock_slowpath that rust_pktring's code asked for (its ring "
               "lock), per packet, on the producers (in parentheses: episodes per 1000 packets, "
               "instructions per episode) and on the consumer's CPU; all spin: the producers' "
               "spinning on every spin lock, the ring lock's included (as in the other tables).")
        self.p()
        self.p("| workload | consumer | runs | sent | reached IP | captured | pps | drops | by member | "
               "pkts/prod-CPU | capture work/captured pkt | ring-lock spin prod (episodes/kpkt, "
               "insns/episode) | all spin prod | ring-lock spin cons | wake-ups/kpkt | "
               "host µs/pkt prod + cons |")
        self.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for wl in wls:
            for v in FANOUT_VARIANTS:
                c = cells.get((wl, v))
                if not c:
                    continue
                share = "–"
                mem = members.get((wl, v))
                if mem:
                    kp = [sum(num(x.get("k_packets")) for x in mem[i]) for i in sorted(mem, key=int)]
                    tot = sum(kp) or 1
                    share = "/".join(f"{x / tot:.0%}" for x in kp)
                cap = v != "none"
                pin = v in FANOUT_PINNED
                spin = (f"{fmt(c.get('rspp_prod'), 2)} ({fmt(c.get('reps_k'), 1)}, "
                        f"{fmt(c.get('rs_per_ep'))})" if c.get("rspp_prod") is not None else
                        f"– (all spin {fmt(c.get('spp_prod'), 1)})")
                self.p(f"| {wl} | {FANOUT_TITLE[v]} | {c['runs']} | {fmt(c.get('sent'))} | "
                       f"{fmt(num(c.get('ip_in')))} | {fmt(num(c.get('pkts'))) if cap else '–'} | {fmt(c['cap_pps']) if cap else '–'} | "
                       f"{fmt(num(c.get('k_drops'))) if cap else '–'} | {share} | "
                       f"{'–' if pin else fmt(c.get('n_per_prod_s'))} | "
                       f"{fmt(c.get('capwork')) if cap and not pin else '–'} | "
                       f"{'–' if pin else spin} | {'–' if pin else fmt(c.get('spp_prod'), 1)} | "
                       f"{'–' if pin else fmt(c.get('rspp_cons'), 2)} | "
                       f"{fmt(wakeups_per_k(c), 1) if cap else '–'} | "
                       f"{fmt(c.get('us_pkt_prod'), 1)} + {fmt(c.get('us_pkt_cons'), 1)} |")
        self.p()
        self.p("Ratios, group ÷ one ring, same boot: captured packets, captured pps (guest clock), "
               "packets per producer CPU-second, capture work per captured packet; the producers' "
               "ring-lock spinning per packet, one ring's → the group's.")
        self.p()
        self.p("| workload | group | captured ÷ | pps ÷ | pkts/prod-CPU ÷ | capture work ÷ | "
               "ring-lock spin prod insns/pkt | drops (ring / group) |")
        self.p("|---|---|---|---|---|---|---|---|")
        for wl in wls:
            r = cells.get((wl, "ring"))
            for g in FANOUT_GROUPS:
                c = cells.get((wl, g))
                if not r or not c:
                    continue
                sr, how = self.fanout_spin(r)
                sg, _ = self.fanout_spin(c)
                pct = f" ({sg / sr:.0%})" if sr and sg is not None else ""
                pin = g in FANOUT_PINNED
                self.p(f"| {wl} | {g} | {fr(ratio(num(c['pkts']) / c['runs'], num(r['pkts']) / r['runs']))} | "
                       f"{fr(ratio(c['cap_pps'], r['cap_pps']))} | "
                       f"{'–' if pin else fr(ratio(c.get('n_per_prod_s'), r.get('n_per_prod_s')))} | "
                       f"{'–' if pin else fr(dratio(c.get('capwork'), r.get('capwork')))} | "
                       f"{'–' if pin else f'{fmt(sr, 2)} → {fmt(sg, 2)}{pct}'} | "
                       f"{fmt(num(r.get('k_drops')))} / {fmt(num(c.get('k_drops')))} |")
                self.fanout_targets(wl, g, r, c)
        self.p()
        for wl in wls:
            self.table_fanout_profile(wl, cells)

    def table_fanout_profile(self, wl, cells, top=12):
        groups = tuple(g for g in FANOUT_GROUPS if g not in FANOUT_PINNED)
        c = {v: cells.get((wl, v)) for v in ("ring",) + groups}
        if not all(c.values()) or not all("prof_pp" in x for x in c.values()):
            return
        self.p(f"### Fanout, where the producers' instructions go: {wl}")
        self.p()
        self.p("Kernel instructions per packet (reaching IP) on the producing CPUs by function (tcgstat "
               "profile, the mean of the runs), the functions that differ most between one ring and "
               "the groups.")
        self.p()
        per = {v: ph["prof_pp"] for v, ph in c.items()}
        names = set().union(*[set(d) for d in per.values()])
        dm = demangle(names)
        score = {f: max(abs(per[v].get(f, 0) - per["ring"].get(f, 0)) for v in groups)
                 for f in names}
        self.p("| function | " + " | ".join(FANOUT_TITLE[v] for v in c) + " |")
        self.p("|---|" + "---|" * len(c))
        for f in sorted(names, key=lambda x: -score[x])[:top]:
            self.p(f"| `{dm.get(f, f)[-70:]}` | " + " | ".join(fmt(per[v].get(f, 0), 1) for v in c) + " |")
        self.p()

    def fanout_targets(self, wl, g, r, c):
        rc, cc = num(r["pkts"]) / r["runs"], num(c["pkts"]) / c["runs"]
        q = ratio(cc, rc)
        per_cpu = ("" if g in FANOUT_PINNED else
                   f"; per producer CPU-second {fr(ratio(c.get('n_per_prod_s'), r.get('n_per_prod_s')))}")
        self.fanout_verdicts.append((
            f"fanout {FANOUT_TITLE[g]} vs one ring, {FANOUT_WORKLOAD_TITLE[wl]}",
            q is not None and q >= FANOUT_CAPTURE_MIN,
            f"captured packets {fr(q)} one ring's with three consumers ({fmt(cc)} against {fmt(rc)} "
            f"a run; drops {fmt(num(c.get('k_drops')))} and {fmt(num(r.get('k_drops')))}){per_cpu}; "
            f"captured pps {fr(ratio(c['cap_pps'], r['cap_pps']))}; target ≥ {FANOUT_CAPTURE_MIN:.1f}×"))
        if g != "cpu":
            return
        sr, how = self.fanout_spin(r)
        sg, _ = self.fanout_spin(c)
        if sg is None or not sr:
            return
        rel = sg / sr
        eg, er = c.get("reps_k"), r.get("reps_k")
        ok = rel < FANOUT_SPIN_REL and (eg is None or eg < FANOUT_EPISODES_MAX)
        if eg is not None:
            eps = (f"{eg:.2f} contended ring-lock acquisitions per 1000 packets against one ring's "
                   f"{er:.1f} (target < {FANOUT_EPISODES_MAX:.0f}); ")
        else:
            eps = "(no episode counts: a tcgstat without the who-spins lines) "
        self.fanout_verdicts.append((
            f"fanout cpu mode: no cross-CPU ring-lock spinning, {FANOUT_WORKLOAD_TITLE[wl]}", ok,
            f"on the producing CPUs {eps}{how} spinning {sg:.2f} insns/pkt against one ring's "
            f"{sr:.2f}, {rel:.1%} of it (target < {FANOUT_SPIN_REL:.0%}); in cpu mode a member's "
            f"ring lock is taken by one producing CPU, and by its consumer only to read the "
            f"counters (poll() reads the readiness word); ring-lock spinning on the consumer's CPU "
            f"{fmt(c.get('rspp_cons'), 2)} insns/pkt (one ring {fmt(r.get('rspp_cons'), 2)})"))

    def table_profile(self, wl="lo-udp64", geom="a", top=14):
        c = {k: self.cell.get((wl, geom, k)) for k in KINDS}
        b = self.base(wl)
        if not all(c.values()) or not all("profile" in x for x in c.values()):
            return
        self.p(f"## Where the instructions go: {wl}, geometry {geom}")
        self.p()
        self.p("Kernel instructions per captured packet by function (tcgstat profile), on the "
               "producing CPUs and on the consumer's CPU, minus the no-capture baseline; the "
               "functions that differ most between the consumers.")
        self.p()
        per = {}
        for k, ph in c.items():
            n = ph["n"] or 1
            bn = (b["n"] or 1) if b and "profile" in b else None
            d = {}
            for f, (cons, prod) in ph["profile"].items():
                bp = b["profile"].get(f, [0, 0]) if bn else [0, 0]
                d[f] = (prod / n - (bp[1] / bn if bn else 0), cons / n - (bp[0] / bn if bn else 0))
            per[k] = d
        names = set().union(*[set(d) for d in per.values()])
        dm = demangle(names)
        score = {f: max(abs(per[k].get(f, (0, 0))[0]) + abs(per[k].get(f, (0, 0))[1]) for k in KINDS)
                 for f in names}
        self.p("| function | " + " | ".join(f"{KIND_TITLE[k]} prod | cons" for k in KINDS) + " |")
        self.p("|---|" + "---|---|" * len(KINDS))
        for f in sorted(names, key=lambda x: -score[x])[:top]:
            cells = []
            for k in KINDS:
                pv, cv = per[k].get(f, (0, 0))
                cells.append(f"{pv:,.0f} | {cv:,.0f}")
            self.p(f"| `{dm.get(f, f)[-70:]}` | " + " | ".join(cells) + " |")
        self.p()

    # -- verdicts -------------------------------------------------------
    def verdict(self, name, ok, text):
        self.verdicts.append((name, ok, text))

    def targets(self, rows, copy_rows, owner):
        # Saturating workloads: what the producing CPUs can take is the throughput, and the
        # packets per host CPU-second on them measure it with the host's other load taken out
        # (the guest-clock pps moves with that load, and is shown). Where every consumer keeps up,
        # the pps are the offered rate, and the verdict is about drops.
        for wl, saturating in (("host-udp64max", True), ("lo-udp64", True), ("host-udp64rate", False)):
            for ours in OURS:
                r = next((x for x in rows if x["workload"] == wl and x["geom"] == "a"
                          and x["ours"] == ours), None)
                if not r:
                    continue
                pr = self.cell.get((wl, "a", ours))
                drops = int(num(pr.get("k_drops")))
                v2, v3 = (r["cap_tpv2"], r["cap_tpv3"]) if saturating else (r["pps_tpv2"], r["pps_tpv3"])
                if saturating:
                    # Throughput: what the producing CPUs take per CPU-second.
                    t2, t3 = 1.15, 1.05
                    ok = (v2 or 0) >= t2 and (v3 or 0) >= t3
                else:
                    # The offered rate is the same for all: equal within 1%, no drops.
                    t2, t3 = 1.0, 0.9
                    ok = (v2 or 0) >= 0.99 and (v3 or 0) >= t3 and drops == 0
                what = "packets per producer CPU-s" if saturating else "captured pps"
                runs = pr.get("runs", 1)
                self.verdict(f"64 B pps, {wl}, {KIND_TITLE[ours]}", ok,
                             f"{what} {fr(v2)} V2, {fr(v3)} V3 (targets {t2:.2f}×, {t3:.2f}×); "
                             f"drops {drops}; guest-clock pps {fr(r['pps_tpv2'])} V2, "
                             f"{fr(r['pps_tpv3'])} V3; producer work per packet {fr(r['work_tpv2'])} V2, "
                             f"{fr(r['work_tpv3'])} V3; capture cost on all CPUs {fr(r['cost_tpv2'])} V2, "
                             f"{fr(r['cost_tpv3'])} V3" + (f"; mean of {runs} runs each" if runs > 1 else ""))
        # Wake-ups per 1000 packets, every workload of geometry a: batched within 2× V3's,
        # immediate no more than V2's. The saturating 64 B workloads are named, and the worst one.
        for ours, ref, want in (("pktringb", "tpv3", 2.0), ("pktring", "tpv2", 1.0)):
            got = []
            for wl in self.workloads():
                c = {k: self.cell.get((wl, "a", k)) for k in (ours, ref)}
                w = {k: wakeups_per_k(c[k]) for k in c}
                if any(v is None for v in w.values()):
                    continue
                pk = {k: num(c[k].get("polls")) / max(num(c[k].get("pkts")), 1) * 1000 for k in c}
                q = w[ours] / w[ref] if w[ref] else (1.0 if not w[ours] else math.inf)
                got.append((wl, w[ours], w[ref], q, pk[ours], pk[ref]))
            if not got:
                continue
            worst = max(got, key=lambda x: x[3])
            named = [x for x in got if x[0] in ("host-udp64max", "lo-udp64")]
            text = "; ".join(f"{wl} {o:.1f} against {r:.1f} ({fr(q)}; poll() calls {po:.1f} against {pr:.1f})"
                             for wl, o, r, q, po, pr in named)
            self.verdict(f"wake-ups per 1000 packets, {KIND_TITLE[ours]} vs {KIND_TITLE[ref]}",
                         worst[3] <= want,
                         f"{text}; the most, {worst[0]}: {worst[1]:.1f} against {worst[2]:.1f} "
                         f"({fr(worst[3])}); target ≤ {want:.0f}× in every workload of geometry a")
        lib, movq = self.memcpy_per_cpu("libc"), self.memcpy_per_cpu("movq")
        imovq = self.memcpy_ipb("movq")
        for wl, k, ph, rate, ipb in copy_rows:
            if k != "pktring" or not lib or not movq or wl != "lo-udp64k":
                continue
            rate = rate or 0.0
            by_insns = ratio(imovq, ipb)
            self.verdict(f"64 KiB copy rate, {wl}", by_insns is not None and by_insns >= 0.7,
                         f"the capture's extra producer instructions per captured byte are "
                         f"{by_insns or 0:.2f}× as few as the kernel's copy loop's (memcpy_orig, "
                         f"{movq:.0f} MB per vCPU-s; glibc's rep-movsb memcpy: {lib:.0f}); by host "
                         f"CPU {rate:.0f} MB per producer CPU-s = {rate / movq:.2f}× the copy loop "
                         f"(noisy: a 5% difference of the producer's CPU); captured "
                         f"{ph['cap_MBps']:.0f} MB/s with {int(num(ph.get('k_drops')))} drops; target 0.70×")
        for o in owner:
            ab = "–" if o["rel"] is None else f"{o['d']:+.0f} insns ({o['rel']:+.1%})"
            self.verdict(f"owner map cost, {o['wl']}", o["direct"] <= 0.02,
                         f"bitmap {o['bitmap']:.0f} + release's lock round trip {o['lock']:.0f} "
                         f"instructions per packet (counted in the profile) = {o['direct']:.1%} of "
                         f"the capture's {o['cap']:.0f}; the A/B difference in capture work is {ab}, "
                         f"which moves by a few % between rounds with the consumer's timing; "
                         f"target within 2%")

    def run(self):
        rows = self.ratios()
        copy_rows = self.copy_efficiency()
        body = Report(self.phases, self.notes, self.marks)
        body.cell = self.cell
        owner = []
        if self.phases:
            if rows:
                body.table_ratios(rows)
            if self.workloads():
                body.table_consumer()
            body.table_memcpy()
            body.table_copy(copy_rows)
            owner = body.table_owner()
            body.table_multi()
            body.table_fanout()
            if self.workloads():
                body.table_details()
            body.table_profile("lo-udp64", "a")
            body.table_profile("host-udp64max", "a")
            body.table_profile("lo-tcp", "b")
        self.targets(rows, copy_rows, owner)
        self.verdicts += body.fanout_verdicts
        if self.capture:
            self.capture.run()
            self.verdicts += self.capture.verdicts
            body.out += self.capture.out
        self.p("# rust_pktring benchmark")
        self.p()
        for n in self.notes:
            self.p(f"- {n}")
        self.p()
        self.p("## Targets")
        self.p()
        for name, ok, text in self.verdicts:
            self.p(f"- **{'met' if ok else 'MISSED'}**: {name}: {text}")
        self.p()
        self.out += body.out
        return rows


# -- the tcpdump section: the pktring CLI against tcpdump ------------------------------------

CAP_WORKLOAD_TITLE = {
    "udp64max": "64 B, flat out (saturating)",
    "udp64at86k": "64 B, 86,400 pps asked",
    "udp64at10k": "64 B, 10k pps",
    "udp1472at20k": "1472 B, 20k pps",
}
CAP_CONSUMERS = ("tcpdump", "pktring", "tcpdumpimm", "pktringimm")
CAP_TITLE = {"tcpdump": "tcpdump (TPACKET_V3)", "tcpdumpimm": "tcpdump --immediate-mode (V2)",
             "pktring": "pktring capture (batched)", "pktringimm": "pktring capture --immediate-mode",
             "none": "no capture"}
# The pairs compared: each program's default, and both in immediate mode.
CAP_PAIRS = (("default", "pktring", "tcpdump"), ("immediate", "pktringimm", "tcpdumpimm"))
CAP_SUMMED = ("sent", "ip_in", "pcap", "pcap_pkts", "drops", "prog_captured", "cpu_s", "csw", "nvcsw",
              "nivcsw", "wakeups", "self_cpu_s", "host_cons_s", "host_prod_s", "ins_cons", "uins_cons",
              "kins_cons", "ins_prod", "traffic_secs", "startup_s")


def read_capture_console(path):
    """The tcpdump section's runs: "@@CAP" lines, with the "@@CAPLOG" lines the commands printed
    and the "@@PCAPREAD" count of their pcap; its notes and module symbols."""
    caps, notes, ksyms, logs, reads = [], [], [], collections.defaultdict(list), {}
    with open(path, errors="replace") as f:
        for raw in f:
            line = raw.replace("\r", "").rstrip("\n")
            i = line.find("@@CAPLOG ")
            if i >= 0:
                parts = line[i + 9:].split(" ", 2)
                if len(parts) == 3:
                    logs[parts[0]].append((parts[1], parts[2]))
                continue
            i = line.find("@@CAP ")
            if i >= 0:
                caps.append(parse_kv(line[i + 6:]))
                continue
            i = line.find("@@PCAPREAD ")
            if i >= 0:
                kv = parse_kv(line[i + 11:])
                reads[kv.get("label")] = kv
                continue
            if note_or_ksym(line, notes, ksyms):
                continue
    ksyms.sort()
    for c in caps:
        c["log"] = logs.get(c.get("label"), [])
        c["read"] = reads.get(c.get("label"), {})
    return caps, notes, ksyms


def first_int(pattern, lines):
    for line in lines:
        m = re.search(pattern, line)
        if m:
            return [int(x) if x.isdigit() else float(x) for x in m.groups()]
    return None


def derive_capture(c, marks, prof, ksyms):
    """Adds the derived numbers to a tcpdump-section run."""
    parts = c.get("label", "").split("-")
    c["workload"], c["who"], c["round"] = (parts[1], parts[2], parts[3]) if len(parts) == 4 else ("", "", "")
    out = [line for src, line in c["log"] if src == "cap"]
    c["sent"] = num(c.get("sent"))
    c["ip_in"] = num(c.get("ip_in"))
    c["cpu_s"] = num(c.get("cpu_s"))
    c["startup_s"] = num(c.get("startup_s"))
    c["nvcsw"], c["nivcsw"] = num(c.get("nvcsw")), num(c.get("nivcsw"))
    c["csw"] = c["nvcsw"] + c["nivcsw"]
    c["traffic_secs"] = num(c.get("traffic_secs"))
    c["pcap_pkts"] = num(c.get("pcap_pkts"))
    # The packets in the pcap: what libpcap reads (tcpdump -r), else the records counted.
    r = c["read"].get("tcpdump_r")
    c["pcap"] = num(r) if r is not None else c["pcap_pkts"]
    c["checks"] = []
    if c["who"] == "none":
        return c
    if r is not None and num(r) != c["pcap_pkts"]:
        c["checks"].append(f"tcpdump -r reads {int(num(r))} packets, the file has {int(c['pcap_pkts'])} records")
    if c.get("pcap_ok") == "0":
        c["checks"].append("the pcap is not a whole file")
    if c["read"].get("err"):
        c["checks"].append("tcpdump -r: " + c["read"]["err"].replace("_", " "))
    if c.get("cap_rc") not in ("0", None):
        c["checks"].append(f"exit status {c.get('cap_rc')}")
    if c["who"].startswith("tcpdump"):
        cap = first_int(r"^(\d+) packets captured", out)
        drop = first_int(r"^(\d+) packets dropped by kernel", out)
        recv = first_int(r"^(\d+) packets received by filter", out)
        c["prog_captured"] = cap[0] if cap else 0
        c["drops"] = drop[0] if drop else 0
        c["prog_seen"] = recv[0] if recv else 0
        if not cap or not drop:
            c["checks"].append("no tcpdump statistics in its output")
    else:
        pk = first_int(r"^packets:\s+(\d+) in", out)
        kern = first_int(r"^kernel:\s+(\d+) packets, (\d+) drops", out)
        cons = first_int(r"^consumer:\s+(\d+) wake-ups .*CPU ([0-9.]+) s user \+ ([0-9.]+) s system, "
                         r"(\d+) context switches", out)
        c["prog_captured"] = pk[0] if pk else 0
        c["drops"] = kern[1] if kern else 0
        c["prog_seen"] = kern[0] if kern else 0
        if cons:
            c["wakeups"] = cons[0]
            c["self_cpu_s"] = cons[1] + cons[2]
        if not pk or not kern:
            c["checks"].append("no pktring summary in its output")
    if c["prog_captured"] != c["pcap_pkts"]:
        c["checks"].append(f"says it captured {int(c['prog_captured'])}, the pcap has {int(c['pcap_pkts'])}")
    m = int(num(c.get("mark"), -1))
    a, b = marks.get(m), marks.get(m + 1)
    if a and b and a.vcpu and b.vcpu:
        nv = min(len(a.vcpu), len(b.vcpu))
        d = [[b.vcpu[i][j] - a.vcpu[i][j] for j in range(3)] for i in range(nv)]
        c["host_cons_s"] = d[0][0] / 1e9
        c["uins_cons"], c["kins_cons"] = d[0][1], d[0][2]
        c["ins_cons"] = d[0][1] + d[0][2]
        c["host_prod_s"] = sum(x[0] for x in d[1:]) / 1e9
        c["ins_prod"] = sum(x[1] + x[2] for x in d[1:])
        c["has_host"] = True
    p = prof.get(m + 1)
    if p:
        agg = collections.defaultdict(lambda: [0, 0])
        for name, counts in p.items():
            key = resolve(name, ksyms)
            agg[key][0] += counts[0] if counts else 0
            agg[key][1] += sum(counts[1:])
        c["profile"] = dict(agg)
    return c


class CaptureReport:
    """The tcpdump section's tables and verdicts."""

    def __init__(self, caps, notes):
        self.notes = notes
        self.out = []
        self.verdicts = []
        runs = collections.defaultdict(list)
        for c in caps:
            runs[(c["workload"], c["who"])].append(c)
        self.runs = runs
        self.cell = {}
        for key, L in runs.items():
            m = {k: sum(num(x.get(k)) for x in L) for k in CAP_SUMMED}
            m["runs"] = len(L)
            m["has_host"] = all(x.get("has_host") for x in L)
            m["checks"] = [f"round {x['round']}: {t}" for x in L for t in x["checks"]]
            prof = collections.defaultdict(lambda: [0, 0])
            for x in L:
                for f, (cons, prod) in x.get("profile", {}).items():
                    prof[f][0] += cons
                    prof[f][1] += prod
            m["profile"] = dict(prof)
            self.cell[key] = m
        self.workloads = [w for w in CAP_WORKLOAD_TITLE if any(k[0] == w for k in runs)]

    def p(self, s=""):
        self.out.append(s)

    @staticmethod
    def per_k(c, key):
        return num(c.get(key)) / c["pcap"] * 1000 if c and c.get("pcap") else None

    @staticmethod
    def per_pkt(c, key, scale=1.0):
        return num(c.get(key)) / c["pcap"] * scale if c and c.get("pcap") else None

    def pair(self, wl, ours, theirs):
        return self.cell.get((wl, ours)), self.cell.get((wl, theirs))

    def run(self):
        if not self.cell:
            return
        self.table_ratios()
        self.table_runs()
        self.table_checks()
        for wl in ("udp64max", "udp1472at20k", "udp64at10k"):
            self.table_profile(wl)
        self.targets()

    def table_ratios(self):
        self.p("## pktring capture vs tcpdump: ratios, same boot, same traffic")
        self.p()
        self.p("A virtme-ng boot of the same kernel and module; the host's tcpdump "
               "and the pktring CLI write pcaps to a tmpfs, in turn, each alone on CPU 0, with 4 MiB "
               "rings, 64 flows from the host (bench/tcpdump.sh). default: each program as it "
               "comes (pktring batches its wake-ups; tcpdump's libpcap uses TPACKET_V3); immediate: "
               "both with --immediate-mode (tcpdump's libpcap then uses TPACKET_V2). captured: "
               "packets in the pcap (tcpdump -r in the guest), summed over the rounds. CPU: the "
               "capture process's user + system time from the moment it captured to its exit "
               "(wait4(); the guest's clock, so it moves with the host's load); insns: guest "
               "instructions on CPU 0, the capture process's own CPU, per captured packet, user + "
               "kernel (exact). per CPU 0 s: captured packets per second of host CPU that vCPU 0's "
               "thread got, the capture's throughput with the host's scheduling taken out (under "
               "TCG a consumer that cannot keep up captures what the host lets its vCPU run). csw: "
               "context switches per 1000 captured packets. ÷: pktring ÷ tcpdump.")
        self.p()
        self.p("| workload | mode | captured ÷ | captured (pktring / tcpdump) | of reached IP | "
               "CPU s ÷ | CPU µs/pkt ÷ | insns/pkt ÷ | per CPU 0 s ÷ | csw/kpkt (pktring / tcpdump) | "
               "drops (pktring / tcpdump) |")
        self.p("|---|---|---|---|---|---|---|---|---|---|---|")
        for wl in self.workloads:
            for mode, ours, theirs in CAP_PAIRS:
                a, b = self.pair(wl, ours, theirs)
                if not a or not b:
                    continue
                frac = lambda c: f"{c['pcap'] / c['ip_in']:.0%}" if c["ip_in"] else "–"
                self.p(f"| {CAP_WORKLOAD_TITLE[wl]} | {mode} | {fr(ratio(a['pcap'], b['pcap']))} | "
                       f"{fmt(a['pcap'])} / {fmt(b['pcap'])} | {frac(a)} / {frac(b)} | "
                       f"{fr(ratio(a['cpu_s'], b['cpu_s']))} | "
                       f"{fr(ratio(self.per_pkt(a, 'cpu_s'), self.per_pkt(b, 'cpu_s')))} | "
                       f"{fr(ratio(self.per_pkt(a, 'ins_cons'), self.per_pkt(b, 'ins_cons'))) if a['has_host'] and b['has_host'] else '–'} | "
                       f"{fr(ratio(ratio(a['pcap'], a['host_cons_s']), ratio(b['pcap'], b['host_cons_s'])))} | "
                       f"{fmt(self.per_k(a, 'csw'), 1)} / {fmt(self.per_k(b, 'csw'), 1)} | "
                       f"{fmt(a['drops'])} / {fmt(b['drops'])} |")
        self.p()

    def table_runs(self):
        self.p("## pktring capture vs tcpdump: every consumer, summed over the rounds")
        self.p()
        self.p("sent: pktgen's count; reached IP: Ip InReceives in the guest over the run; in the pcap: "
               "what tcpdump -r reads in the guest (the pcaps stay there: 10-120 MB a run is too much "
               "for the serial line); drops: tcpdump's \"dropped by kernel\", pktring's summary "
               "\"kernel: ... drops\". CPU s: the capture process, user + system, from ready to "
               "exit (its start-up apart, shown as start); its own report (pktring) in "
               "parentheses. csw: voluntary + involuntary context switches per 1000 captured "
               "packets; wake-ups: pktring's own count. CPU 0: the host CPU of vCPU 0's thread "
               "(the capture process's CPU: RX interrupts and the traffic go elsewhere) and its "
               "guest instructions per captured packet, user + kernel.")
        self.p()
        self.p("| workload | consumer | rounds | sent | reached IP | in the pcap | drops | CPU s (own) | "
               "start s | CPU µs/pkt | csw/kpkt | wake-ups/kpkt | CPU 0 host s | CPU 0 insns/pkt user + kernel |")
        self.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for wl in self.workloads:
            for who in ("none",) + CAP_CONSUMERS:
                c = self.cell.get((wl, who))
                if not c:
                    continue
                cap = who != "none"
                own = f" ({c['self_cpu_s']:.2f})" if who.startswith("pktring") else ""
                ins = (f"{fmt(self.per_pkt(c, 'uins_cons'))} + {fmt(self.per_pkt(c, 'kins_cons'))}"
                       if cap and c["has_host"] else "–")
                self.p(f"| {CAP_WORKLOAD_TITLE[wl]} | {CAP_TITLE[who]} | {c['runs']} | {fmt(c['sent'])} | "
                       f"{fmt(c['ip_in'])} | {fmt(c['pcap']) if cap else '–'} | "
                       f"{fmt(c['drops']) if cap else '–'} | "
                       f"{c['cpu_s']:.2f}{own} | {c['startup_s']:.2f} | "
                       f"{fmt(self.per_pkt(c, 'cpu_s', 1e6), 1) if cap else '–'} | "
                       f"{fmt(self.per_k(c, 'csw'), 1) if cap else '–'} | "
                       f"{fmt(self.per_k(c, 'wakeups'), 1) if who.startswith('pktring') else '–'} | "
                       f"{c['host_cons_s']:.2f} | {ins} |")
        self.p()

    def table_checks(self):
        bad = [(wl, who, t) for (wl, who), c in self.cell.items() for t in c["checks"]]
        if not bad:
            self.p("Checks: every pcap is whole, tcpdump -r reads every record, and each program's "
                   "own count of what it captured is the pcap's.")
            self.p()
            return
        self.p("Checks that failed:")
        self.p()
        for wl, who, t in bad:
            self.p(f"- {wl}, {CAP_TITLE.get(who, who)}: {t}")
        self.p()

    def table_profile(self, wl, top=16):
        cells = {who: self.cell.get((wl, who)) for who in CAP_CONSUMERS}
        if not all(cells.values()) or not all(c["profile"] and c["pcap"] for c in cells.values()):
            return
        self.p(f"## pktring capture vs tcpdump: where the instructions go, {CAP_WORKLOAD_TITLE[wl]}")
        self.p()
        self.p("Guest instructions per captured packet by kernel function (tcgstat profile), on CPU 0 "
               "(the capture process: cons) and on CPUs 1-3 (RX softirq and the hooks or af_packet's "
               "tpacket_rcv: prod); \"user space\" is CPU 0's user-mode instructions. The functions "
               "that differ most between the consumers.")
        self.p()
        per = {}
        for who, c in cells.items():
            n = c["pcap"]
            per[who] = {f: (prod / n, cons / n) for f, (cons, prod) in c["profile"].items()}
            per[who]["(user space)"] = (0.0, c["uins_cons"] / n)
        names = set().union(*[set(d) for d in per.values()])
        dm = demangle(names)
        score = {f: max(per[w].get(f, (0, 0))[0] + per[w].get(f, (0, 0))[1] for w in CAP_CONSUMERS) -
                 min(per[w].get(f, (0, 0))[0] + per[w].get(f, (0, 0))[1] for w in CAP_CONSUMERS)
                 for f in names}
        self.p("| function | " + " | ".join(f"{CAP_TITLE[w]} prod | cons" for w in CAP_CONSUMERS) + " |")
        self.p("|---|" + "---|---|" * len(CAP_CONSUMERS))
        for f in sorted(names, key=lambda x: (x != "(user space)", -score[x]))[:top]:
            row = []
            for w in CAP_CONSUMERS:
                pv, cv = per[w].get(f, (0, 0))
                row.append(f"{pv:,.0f} | {cv:,.0f}")
            self.p(f"| `{dm.get(f, f)[-70:]}` | " + " | ".join(row) + " |")
        tot = []
        for w in CAP_CONSUMERS:
            c = cells[w]
            tot.append(f"{c['ins_prod'] / c['pcap']:,.0f} | {c['ins_cons'] / c['pcap']:,.0f}")
        self.p("| **all** | " + " | ".join(tot) + " |")
        self.p()

    def targets(self):
        for wl, key, want, what in (("udp64max", "pcap", 1.2, "captured packets"),
                                    ("udp64at10k", "cpu_s", 1.0, "capture-process CPU"),
                                    ("udp1472at20k", "pcap", 1.5, "captured packets")):
            for mode, ours, theirs in CAP_PAIRS:
                a, b = self.pair(wl, ours, theirs)
                if not a or not b:
                    continue
                r = ratio(a[key], b[key])
                more = key == "pcap"
                ok = r is not None and (r >= want if more else r <= want)
                extra = ""
                if key == "cpu_s":
                    extra = (f" ({a['cpu_s']:.2f} s against {b['cpu_s']:.2f} s; captured "
                             f"{fmt(a['pcap'])} and {fmt(b['pcap'])}; guest instructions on the "
                             f"capture's CPU per packet "
                             f"{fr(ratio(self.per_pkt(a, 'ins_cons'), self.per_pkt(b, 'ins_cons')))})")
                else:
                    extra = (f" ({fmt(a['pcap'])} against {fmt(b['pcap'])} of {fmt(a['sent'])} and "
                             f"{fmt(b['sent'])} sent, {fmt(a['ip_in'])} and {fmt(b['ip_in'])} reaching IP; "
                             f"drops {fmt(a['drops'])} and {fmt(b['drops'])}; per host CPU-second of the "
                             f"capture's vCPU "
                             f"{fr(ratio(ratio(a['pcap'], a['host_cons_s']), ratio(b['pcap'], b['host_cons_s'])))}; "
                             f"CPU 0 instructions per packet "
                             f"{fr(ratio(self.per_pkt(a, 'ins_cons'), self.per_pkt(b, 'ins_cons')))})")
                self.verdict(f"pktring capture vs tcpdump, {CAP_WORKLOAD_TITLE[wl]}, {mode}", ok,
                             f"{what} {fr(r)} tcpdump's{extra}; target {'≥' if more else '≤'} {want:.1f}×")

    def verdict(self, name, ok, text):
        self.verdicts.append((name, ok, text))


def write_tsv(path, phases):
    keys = ["label", "workload", "geom", "kindl", "extra", "cap_pps", "cap_MBps", "pkts", "cap_bytes",
            "k_packets", "k_drops", "n", "polls", "blocks", "span", "wall", "guest_busy_s",
            "guest_softirq_s", "guest_s_Mpkt", "host_vcpu_s", "host_prod_s", "host_cons_s",
            "host_proc_s", "ins_prod", "ins_cons", "us_pkt", "us_pkt_prod", "us_pkt_cons",
            "ipp_prod", "ipp_cons", "wpp_prod", "spp_prod", "spp_cons", "if_bytes", "mbps", "bytes", "method",
            "threads", "percpu", "woken", "nvcsw", "nivcsw", "wake_frames", "wake_usecs",
            "fanout", "members", "member", "block_nr", "frame_nr", "rspin_prod", "reps_prod",
            "rspin_cons", "reps_cons", "ospin_prod", "oeps_prod"]
    with open(path, "w") as f:
        f.write("\t".join(keys) + "\n")
        for ph in phases:
            f.write("\t".join(str(ph.get(k, "")) for k in keys) + "\n")


def write_capture_tsv(path, caps):
    keys = ["label", "workload", "who", "round", "sent", "ip_in", "pcap", "pcap_pkts", "prog_captured",
            "prog_seen", "drops", "cpu_s", "startup_s", "self_cpu_s", "nvcsw", "nivcsw", "wakeups",
            "traffic_secs", "host_cons_s", "host_prod_s", "uins_cons", "kins_cons", "ins_prod", "checks"]
    with open(path, "w") as f:
        f.write("\t".join(keys) + "\n")
        for c in caps:
            f.write("\t".join(str(c.get(k, "")) for k in keys) + "\n")


def write_plot(out_dir, rows, rep):
    """ratios.tsv, cost.tsv and plot.gp: the ratios, and where the instructions go per consumer."""
    nan = float("nan")
    with open(os.path.join(out_dir, "ratios.tsv"), "w") as f:
        f.write("case\tpps_v2\tpps_v3\twork_v2\twork_v3\n")
        # The cases where every consumer copies what it captures: small packets into 2 KiB frames,
        # 64 KiB packets into 64 KiB frames (with 4 slots and small packets, drops dominate).
        for r in rows:
            large = r["workload"] in ("lo-udp64k", "host-tcp", "lo-tcp")
            if r["geom"] != ("b" if large else "a"):
                continue
            v = [r[k] if r[k] is not None else nan for k in ("pps_tpv2", "pps_tpv3", "work_tpv2", "work_tpv3")]
            case = f"{r['workload']}/{r['geom']}" + (" batched" if r["ours"] == "pktringb" else "")
            f.write(f"{case}\t" + "\t".join(f"{x:.4f}" for x in v) + "\n")
    with open(os.path.join(out_dir, "cost.tsv"), "w") as f:
        f.write("case\t" + "\t".join(f"prod_{k}" for k in KINDS) + "\t" +
                "\t".join(f"cons_{k}" for k in KINDS) + "\n")
        for r in rows:
            if r["geom"] != "a" or per_mb(r["workload"]) or r["ours"] != "pktring":
                continue
            prod, cons = [], []
            for k in KINDS:
                ph = rep.cell.get((r["workload"], "a", k))
                d = rep.delta(ph, "wpp_prod") if ph else None
                prod.append(d if d is not None else nan)
                cons.append(ph.get("ipp_cons", nan) if ph else nan)
            f.write(f"{r['workload']}\t" + "\t".join(f"{x:.1f}" for x in prod + cons) + "\n")
    with open(os.path.join(out_dir, "plot.gp"), "w") as f:
        f.write("""set terminal pngcairo size 1400,1000 font ",10" noenhanced
set output 'bench.png'
set datafile separator "\\t"
set datafile missing "nan"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -25 left
set key top left
set grid ytics
set multiplot layout 2,1 title "rust_pktring vs AF_PACKET TPACKET_V2/V3, one TCG guest boot (ratios within the run)"
set title "rust_pktring / af_packet: captured pps (higher is better) and producer work per packet over no capture (guest instructions without lock spinning; lower is better)"
set yrange [0:2.5]
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 front
plot 'ratios.tsv' using 2:xtic(1) title 'pps / V2', '' using 3 title 'pps / V3', \\
     '' using 4 title 'work / V2', '' using 5 title 'work / V3'
unset arrow 1
set title "guest instructions per packet, geometry a: the capture's work on the producing CPUs (over no capture), and the consumer's CPU"
set yrange [0:*]
plot 'cost.tsv' using 2:xtic(1) title 'producers: rust_pktring', '' using 3 title 'producers: rust_pktring batched', \\
     '' using 4 title 'producers: TPACKET_V2', '' using 5 title 'producers: TPACKET_V3', \\
     '' using 6 title 'consumer: rust_pktring', '' using 7 title 'consumer: rust_pktring batched', \\
     '' using 8 title 'consumer: TPACKET_V2', '' using 9 title 'consumer: TPACKET_V3'
unset multiplot
""")


USAGE = """usage: report.py [CONSOLE_LOG TCGSTAT_FILE] [--tcpdump CONSOLE_LOG TCGSTAT_FILE]
                 [--env ENV_FILE] OUT_DIR
       report.py CONSOLE_LOG TCGSTAT_FILE OUT_DIR [ENV_FILE]"""


def parse_args(argv):
    """The boots' files (the initramfs one, the tcpdump section's), the env file and OUT_DIR."""
    pos, tcpdump, env = [], None, None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--tcpdump" and i + 2 < len(argv):
            tcpdump = (argv[i + 1], argv[i + 2])
            i += 3
        elif a == "--env" and i + 1 < len(argv):
            env = argv[i + 1]
            i += 2
        elif a.startswith("--"):
            sys.exit(f"report.py: unknown or incomplete option '{a}'\n{USAGE}")
        else:
            pos.append(a)
            i += 1
    if len(pos) == 4 and env is None:
        env = pos.pop()
    if len(pos) == 3:
        boot = (pos[0], pos[1])
    elif len(pos) == 1 and tcpdump:
        boot = None
    else:
        sys.exit(USAGE)
    return boot, tcpdump, env, pos[-1]


def main():
    boot, tcpdump, env, out_dir = parse_args(sys.argv[1:])
    phases, notes, ksyms, marks = [], [], [], {}
    if boot:
        phases, notes, ksyms = read_console(boot[0])
        if not phases:
            sys.exit("report.py: no @@BENCH lines in " + boot[0])
        spinby = {}
        marks, prof = read_tcgstat(boot[1], spinby)
        for ph in phases:
            derive(ph, marks, prof, ksyms, spinby)
        if not marks:
            notes.append("no tcgstat data: host CPU and instruction columns are empty")
    if env and os.path.exists(env):
        with open(env) as f:
            notes = [line.strip() for line in f if line.strip()] + notes
    capture = None
    if tcpdump:
        caps, cnotes, cksyms = read_capture_console(tcpdump[0])
        if not caps:
            sys.exit("report.py: no @@CAP lines in " + tcpdump[0])
        cmarks, cprof = read_tcgstat(tcpdump[1])
        for c in caps:
            derive_capture(c, cmarks, cprof, cksyms)
        if not cmarks:
            cnotes.append("tcpdump section: no tcgstat data: the CPU 0 columns are empty")
        notes += cnotes
        capture = CaptureReport(caps, cnotes)
    rep = Report(phases, notes, marks, capture)
    rows = rep.run()
    os.makedirs(out_dir, exist_ok=True)
    text = "\n".join(rep.out) + "\n"
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    write_tsv(os.path.join(out_dir, "phases.tsv"), phases)
    if capture:
        write_capture_tsv(os.path.join(out_dir, "tcpdump.tsv"), caps)
    write_plot(out_dir, rows, rep)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
