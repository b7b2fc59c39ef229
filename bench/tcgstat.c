// SPDX-License-Identifier: GPL-2.0
/*
 * tcgstat: a QEMU TCG plugin that lets the benchmark measure what a phase of
 * guest work cost the host, immune to the other load on the machine.
 *
 * Under TCG the guest's own clock (and so /proc/stat in the guest) is host
 * wall time: a vCPU thread that the host scheduler preempts still "runs" for
 * the guest. What does not inflate is the host CPU time each vCPU thread
 * really consumed, and the number of guest instructions it executed. The
 * guest marks the start and end of each phase by executing a marker
 * instruction; at each marker this plugin appends one line to its output
 * file:
 *
 *	M <id> <host monotonic ns> <process cpu ns> <nvcpu>
 *	  { <vcpu thread cpu ns> <user insns> <kernel insns> } * nvcpu
 *
 * The marker is the 8-byte no-op `nopl 0xID(%rax,%rax,1)` (0f 1f 84 00 +
 * 32-bit displacement) executed in user mode with the displacement's top 16
 * bits 0x5042 ("PB"); the low 16 bits are the id. Compilers pad with
 * displacement 0, so nothing else matches.
 *
 * vCPU threads are found by name ("CPU <n>/TCG": QEMU needs
 * `-name NAME,debug-threads=on`). Instruction counting (insns=on, the
 * default) adds a callback per executed translation block, which slows the
 * guest down by a constant factor; the thread CPU times include it.
 *
 * With symbols=System.map, kernel instructions are also counted per
 * function (the one each translation block starts in), and each end marker
 * (odd id) is followed by the phase's profile, the functions that ran since
 * the start marker (id - 1):
 *
 *	P <id> <function> { <insns on vcpu i> } * nvcpu
 *
 * Code outside System.map (modules) is counted per translation block
 * address, as "@<hex address>"; the guest's /proc/kallsyms names it.
 *
 * The profile also says who spins: the instructions a vCPU executes in
 * queued_spin_lock_slowpath (a contended spin lock) are counted again under
 * the function that asked for the lock, and so are the episodes (slowpath
 * entries), one line per such function after the P lines:
 *
 *	S <id> <function> { <spin insns on vcpu i> <episodes on vcpu i> } * nvcpu
 *
 * The function is the last kernel function the vCPU ran before it entered
 * the slowpath, the lock functions (_raw_spin_lock*, rust_helper_spin_lock*,
 * the Rust spin lock backends, the rwlock slowpaths) skipped: for rust_pktring's ring lock, the module's
 * code ("@<hex>", which the guest's /proc/kallsyms names). A slowpath entered
 * from the kernel's entry code (an interrupt returning into the spinning)
 * goes on with the episode it interrupted. Counted for the first
 * MAX_SPIN_VCPUS vCPUs.
 *
 *	-plugin /path/tcgstat.so,out=FILE[,insns=on|off][,symbols=System.map]
 *
 * Only the few declarations of QEMU's plugin API (version 1, QEMU 7.2) that
 * this file uses are declared here, so that it builds without QEMU's source.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* --- the QEMU plugin API, as qemu/qemu-plugin.h declares it ----------- */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
					    qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;
/* ---------------------------------------------------------------------- */

#define MAX_VCPUS	64
#define MARK_MAGIC	0x5042u
#define KERNEL_START	0xffff800000000000ull

/* One cache line per vCPU: the counters are written by that vCPU's thread only. */
struct vcpu {
	uint64_t insns[2];	/* [0] user, [1] kernel */
	uint64_t pad[6];
};

static struct vcpu vcpus[MAX_VCPUS] __attribute__((aligned(64)));

/*
 * The profile: functions from System.map, then TB addresses outside it.
 * prof[vcpu * nslots + slot], written by that vCPU's thread only.
 */
#define MAX_DYN		65536
struct sym {
	uint64_t addr;
	char *name;
};
static struct sym *syms;
static size_t nsyms, nslots;
static uint64_t text_start, text_end;
static uint64_t *prof, *prof_start;
static uint64_t dyn_addr[MAX_DYN];
static size_t ndyn;
static pthread_mutex_t dyn_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *out;
static bool count_insns = true;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Who spins: per profile slot, what it is (SK_*), and per vCPU the last
 * kernel functions (slots) it ran outside the slowpath, newest first, and
 * the function its current spinning is counted for.
 */
#define MAX_SPIN_VCPUS	8
#define SPIN_HIST	6
enum { SK_OTHER, SK_SPIN, SK_LOCK, SK_ENTRY };
static uint8_t *slot_kind;
static uint64_t entry_start, entry_end;
static uint64_t *spin_insns, *spin_eps, *spin_start;	/* [vcpu * nslots + slot]; start: both */
struct spinner {
	uint32_t hist[SPIN_HIST];
	uint32_t owner;
	bool in_spin, have_owner;
	uint8_t pad[64 - 4 * SPIN_HIST - 4 - 2 - 2];
};
_Static_assert(sizeof(struct spinner) == 64, "one cache line per vCPU");
static struct spinner spinners[MAX_SPIN_VCPUS] __attribute__((aligned(64)));

/* A kernel TB of profile slot `slot`, `n` instructions, ran on `vcpu`. */
static void spin_account(unsigned int vcpu, size_t slot, unsigned int n)
{
	struct spinner *s = &spinners[vcpu];
	uint8_t k = slot_kind[slot];

	if (k == SK_SPIN) {
		if (!s->in_spin) {
			s->in_spin = true;
			/* Back from an interrupt: the same episode goes on. */
			if (!s->have_owner || slot_kind[s->hist[0]] != SK_ENTRY) {
				unsigned int i;

				for (i = 0; i < SPIN_HIST - 1 && slot_kind[s->hist[i]] == SK_LOCK; i++)
					;
				s->owner = s->hist[i];
				s->have_owner = true;
				spin_eps[vcpu * nslots + s->owner]++;
			}
		}
		spin_insns[vcpu * nslots + s->owner] += n;
		return;
	}
	s->in_spin = false;
	if (s->hist[0] != slot) {
		memmove(&s->hist[1], &s->hist[0], sizeof(s->hist[0]) * (SPIN_HIST - 1));
		s->hist[0] = slot;
	}
}

/* udata: insns << 1 | kernel, or with a profile slot: slot << 24 | insns << 1 | kernel. */
static void on_tb_exec(unsigned int vcpu, void *udata)
{
	uintptr_t v = (uintptr_t)udata;
	unsigned int n = (v >> 1) & 0x7fffff;

	if (vcpu >= MAX_VCPUS)
		return;
	vcpus[vcpu].insns[v & 1] += n;
	if (prof && (v & 1)) {
		prof[vcpu * nslots + (v >> 24)] += n;
		if (vcpu < MAX_SPIN_VCPUS)
			spin_account(vcpu, v >> 24, n);
	}
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* What a function is, for who-spins: the slowpath, a lock function, or other. */
static uint8_t kind_of_sym(const char *name)
{
	static const char *const spin[] = { "queued_spin_lock_slowpath",
					    "native_queued_spin_lock_slowpath",
					    "__pv_queued_spin_lock_slowpath" };
	static const char *const lock[] = { "_raw_spin_lock", "rust_helper_spin_lock",
					    "rust_helper_raw_spin_lock", "do_raw_spin_lock",
					    "queued_read_lock_slowpath", "queued_write_lock_slowpath" };

	for (size_t i = 0; i < sizeof(spin) / sizeof(spin[0]); i++)
		if (!strcmp(name, spin[i]))
			return SK_SPIN;
	for (size_t i = 0; i < sizeof(lock) / sizeof(lock[0]); i++)
		if (starts_with(name, lock[i]))
			return SK_LOCK;
	/* The Rust spin lock backends (kernel::sync::lock::spinlock*), which jump to the helpers. */
	if (starts_with(name, "_R") && strstr(name, "SpinLock") && strstr(name, "Backend"))
		return SK_LOCK;
	return SK_OTHER;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Reads the text symbols of System.map; sets up the profile. */
static int load_symbols(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], name[400], type;
	unsigned long long addr;
	size_t cap = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %399s", &addr, &type, name) != 3)
			continue;
		if (!strcmp(name, "_stext"))
			text_start = addr;
		if (!strcmp(name, "_etext"))
			text_end = addr;
		if (!strcmp(name, "__entry_text_start"))
			entry_start = addr;
		if (!strcmp(name, "__entry_text_end"))
			entry_end = addr;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (nsyms == cap) {
			cap = cap ? 2 * cap : 65536;
			syms = realloc(syms, cap * sizeof(*syms));
		}
		syms[nsyms++] = (struct sym){ addr, strdup(name) };
	}
	fclose(f);
	if (!nsyms || !text_end)
		return -1;
	qsort(syms, nsyms, sizeof(*syms), cmp_sym);
	nslots = nsyms + MAX_DYN;
	prof = calloc(MAX_VCPUS * nslots, sizeof(*prof));
	prof_start = calloc(MAX_VCPUS * nslots, sizeof(*prof));
	slot_kind = calloc(nslots, 1);
	spin_insns = calloc(MAX_SPIN_VCPUS * nslots, sizeof(*spin_insns));
	spin_eps = calloc(MAX_SPIN_VCPUS * nslots, sizeof(*spin_eps));
	spin_start = calloc(2 * MAX_SPIN_VCPUS * nslots, sizeof(*spin_start));
	if (!prof || !prof_start || !slot_kind || !spin_insns || !spin_eps || !spin_start)
		return -1;
	for (size_t i = 0; i < nsyms; i++) {
		slot_kind[i] = kind_of_sym(syms[i].name);
		if (syms[i].addr >= entry_start && syms[i].addr < entry_end)
			slot_kind[i] = SK_ENTRY;
	}
	return 0;
}

/* The profile slot of a kernel TB at `pc`. */
static size_t slot_of(uint64_t pc)
{
	size_t lo = 0, hi = nsyms, i;

	if (pc >= text_start && pc < text_end) {
		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;

			if (syms[mid].addr <= pc)
				lo = mid;
			else
				hi = mid;
		}
		return lo;
	}
	pthread_mutex_lock(&dyn_lock);
	for (i = 0; i < ndyn && dyn_addr[i] != pc; i++)
		;
	if (i == ndyn && ndyn < MAX_DYN)
		dyn_addr[ndyn++] = pc;
	pthread_mutex_unlock(&dyn_lock);
	return i < MAX_DYN ? nsyms + i : 0;
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The CPU clock of thread `tid` of this process (glibc's MAKE_THREAD_CPUCLOCK). */
static uint64_t thread_cpu_ns(pid_t tid)
{
	return clock_ns((clockid_t)((~(unsigned int)tid << 3) | 6));
}

/* Finds the vCPU threads by name: "CPU <n>/TCG". Returns how many vCPUs. */
static int find_vcpu_threads(pid_t *tids)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300], comm[32] = "";
		unsigned int cpu;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && sscanf(comm, "CPU %u/TCG", &cpu) == 1 &&
		    cpu < MAX_VCPUS) {
			tids[cpu] = atoi(de->d_name);
			if ((int)cpu + 1 > n)
				n = cpu + 1;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/* The S lines of an end marker (who spun since the start marker); then starts anew. */
static void print_spinners(unsigned int id, int nvcpu)
{
	size_t slot, n = (size_t)MAX_SPIN_VCPUS * nslots;
	int i;

	for (slot = 0; slot < nslots && (id & 1); slot++) {
		uint64_t d[2 * MAX_SPIN_VCPUS], any = 0;

		for (i = 0; i < nvcpu; i++) {
			size_t j = i * nslots + slot;

			d[2 * i] = __atomic_load_n(&spin_insns[j], __ATOMIC_RELAXED) - spin_start[j];
			d[2 * i + 1] = __atomic_load_n(&spin_eps[j], __ATOMIC_RELAXED) - spin_start[n + j];
			any |= d[2 * i] | d[2 * i + 1];
		}
		if (!any)
			continue;
		if (slot < nsyms)
			fprintf(out, "S %u %s", id, syms[slot].name);
		else
			fprintf(out, "S %u @%llx", id, (unsigned long long)dyn_addr[slot - nsyms]);
		for (i = 0; i < nvcpu; i++)
			fprintf(out, " %llu %llu", (unsigned long long)d[2 * i],
				(unsigned long long)d[2 * i + 1]);
		fputc('\n', out);
	}
	for (slot = 0; slot < n; slot++) {
		spin_start[slot] = __atomic_load_n(&spin_insns[slot], __ATOMIC_RELAXED);
		spin_start[n + slot] = __atomic_load_n(&spin_eps[slot], __ATOMIC_RELAXED);
	}
}

static void on_mark(unsigned int vcpu, void *udata)
{
	static pid_t tids[MAX_VCPUS];
	static int nvcpu;
	unsigned int id = (uintptr_t)udata;
	struct rusage ru;
	uint64_t proc_ns = 0;
	int i;

	pthread_mutex_lock(&out_lock);
	if (!nvcpu)
		nvcpu = find_vcpu_threads(tids);
	if (!getrusage(RUSAGE_SELF, &ru))
		proc_ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
			  (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
	fprintf(out, "M %u %llu %llu %d", id, (unsigned long long)clock_ns(CLOCK_MONOTONIC),
		(unsigned long long)proc_ns, nvcpu);
	for (i = 0; i < nvcpu; i++)
		fprintf(out, " %llu %llu %llu",
			(unsigned long long)(tids[i] ? thread_cpu_ns(tids[i]) : 0),
			(unsigned long long)__atomic_load_n(&vcpus[i].insns[0], __ATOMIC_RELAXED),
			(unsigned long long)__atomic_load_n(&vcpus[i].insns[1], __ATOMIC_RELAXED));
	fputc('\n', out);
	if (prof && nvcpu) {
		size_t slot;

		for (slot = 0; slot < nslots && (id & 1); slot++) {
			uint64_t d[MAX_VCPUS], any = 0;

			for (i = 0; i < nvcpu; i++) {
				d[i] = __atomic_load_n(&prof[i * nslots + slot], __ATOMIC_RELAXED) -
				       prof_start[i * nslots + slot];
				any |= d[i];
			}
			if (!any)
				continue;
			if (slot < nsyms)
				fprintf(out, "P %u %s", id, syms[slot].name);
			else
				fprintf(out, "P %u @%llx", id, (unsigned long long)dyn_addr[slot - nsyms]);
			for (i = 0; i < nvcpu; i++)
				fprintf(out, " %llu", (unsigned long long)d[i]);
			fputc('\n', out);
		}
		for (slot = 0; slot < (size_t)nvcpu * nslots; slot++)
			prof_start[slot] = __atomic_load_n(&prof[slot], __ATOMIC_RELAXED);
		print_spinners(id, nvcpu < MAX_SPIN_VCPUS ? nvcpu : MAX_SPIN_VCPUS);
	}
	fflush(out);
	pthread_mutex_unlock(&out_lock);
}

static bool is_mark(const uint8_t *b, size_t len)
{
	return len == 8 && b[0] == 0x0f && b[1] == 0x1f && b[2] == 0x84 && b[3] == 0x00 &&
	       (b[6] | b[7] << 8) == MARK_MAGIC;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb), i;
	bool kernel = qemu_plugin_tb_vaddr(tb) >= KERNEL_START;

	if (count_insns) {
		uintptr_t v = (n > 0x7fffff ? 0x7fffff : n) << 1 | kernel;

		if (prof && kernel)
			v |= (uintptr_t)slot_of(qemu_plugin_tb_vaddr(tb)) << 24;
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS,
						     (void *)v);
	}
	if (kernel)
		return;
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		const uint8_t *b = qemu_plugin_insn_data(insn);

		if (is_mark(b, qemu_plugin_insn_size(insn)))
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
							       (void *)(uintptr_t)(b[4] | b[5] << 8));
	}
}

static void at_exit_cb(qemu_plugin_id_t id, void *udata)
{
	if (out)
		fclose(out);
	out = NULL;
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	const char *path = NULL;
	int i;

	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4))
			path = argv[i] + 4;
		else if (!strcmp(argv[i], "insns=off"))
			count_insns = false;
		else if (!strcmp(argv[i], "insns=on"))
			count_insns = true;
		else if (!strncmp(argv[i], "symbols=", 8)) {
			if (load_symbols(argv[i] + 8)) {
				qemu_plugin_outs("tcgstat: cannot read the symbols\n");
				return -1;
			}
		}
		else {
			qemu_plugin_outs("tcgstat: unknown argument (out=FILE, insns=on|off, symbols=FILE)\n");
			return -1;
		}
	}
	if (!path) {
		qemu_plugin_outs("tcgstat: out=FILE is required\n");
		return -1;
	}
	out = fopen(path, "w");
	if (!out)
		return -1;
	fprintf(out, "# tcgstat insns=%s symbols=%zu\n", count_insns ? "on" : "off", nsyms);
	fflush(out);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit_cb, NULL);
	return 0;
}
