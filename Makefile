# SPDX-License-Identifier: GPL-2.0
#
# `make` builds rust_pktring.ko against the project's cached kernel (built
# first if needed), or against any Rust-enabled kernel with
# `make KDIR=/path/to/build LLVM=1`.
#
# `make run` is the main job, `make test` runs every test: see README.md.

# The cache: $PKTRING_CACHE, or testnet.env's PKTRING_CACHE_DEFAULT.
CACHE ?= $(or $(PKTRING_CACHE),$(shell . ./testnet.env && echo "$$PKTRING_CACHE_DEFAULT"))
KDIR ?= $(CACHE)/build-base
LLVM ?= -19
export PATH := /usr/bin:$(PATH):$(HOME)/.cargo/bin

KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) RUSTC=/usr/bin/rustc

.PHONY: modules noowner debug-module setup kernel kernel-debug clippy rustfmt-check clean run shell test test-debug vng-test kunit bench soak series series-export

modules: $(if $(filter $(CACHE)/%,$(KDIR)),kernel)
	+$(KMAKE) modules

# Module builds of their own, in build/NAME/, that never replace
# ./rust_pktring.ko: the sources are copied there and built with M= that
# directory.
#   make noowner       the race reproducer's test-only module, without the
#                      rx_owner_map (PKTRING_TEST_NO_OWNER_MAP=1)
#   make debug-module  the module for the debug kernel
MODULE_SRCS := rust_pktring.rs fanout.rs ring.rs uapi.rs Kbuild rust_pktring_uapi.h uapi_layout.c
define module_elsewhere # directory, kernel build, extra make arguments
	@mkdir -p $(1)
	cp -p $(MODULE_SRCS) $(1)/
	+$(MAKE) -C $(2) M=$(1) LLVM=$(LLVM) RUSTC=/usr/bin/rustc $(3) modules
endef

noowner: $(if $(filter $(CACHE)/%,$(KDIR)),kernel)
	$(call module_elsewhere,$(CURDIR)/build/noowner,$(KDIR),PKTRING_TEST_NO_OWNER_MAP=1)

debug-module: kernel-debug
	$(call module_elsewhere,$(CURDIR)/build/debug,$(CACHE)/build-debug,)

setup:
	@bash scripts/setup.sh

kernel: setup
	@bash scripts/kernel.sh base >/dev/null

kernel-debug: setup
	@bash scripts/kernel.sh debug >/dev/null

# The patch series (kernel crate and sample) and the module, with clippy.
clippy: kernel
	@bash scripts/kernel.sh base --clippy >/dev/null
	+$(KMAKE) CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver modules

rustfmt-check:
	rustfmt --edition 2021 --check rust_pktring.rs fanout.rs ring.rs uapi.rs

clean:
	+$(KMAKE) clean 2>/dev/null || true
	rm -rf build userspace/target
	$(MAKE) -C selftests clean

run:
	@bash scripts/run.sh

# An interactive shell in a virtme-ng guest with the module loaded (scripts/shell.sh).
shell:
	@bash scripts/shell.sh

test:
	@bash scripts/test.sh

# The guest suite on the debug kernel (KASAN, lockdep, atomic-sleep checks,
# a kmemleak scan at the end); `make test` runs it too.
test-debug:
	@bash scripts/test.sh debug

# The guest suite on the base kernel booted by virtme-ng (`vng --run`) with
# 4 vCPUs and the multiqueue NIC; `make test` runs it too.
vng-test:
	@bash scripts/test.sh vng

# The boot-time KUnit doctests of the base kernel only (about a minute).
kunit:
	@bash scripts/test.sh kunit

bench:
	@bash bench/run.sh

# The race reproducer's long runs (hours; not part of `make test`): scripts/soak.sh.
soak:
	@bash scripts/soak.sh

# The patch series as a git branch, for editing it as commits (scripts/series.sh):
# `make series` checks kernel/patches out as the branch "series" of a work tree in
# $(CACHE)/series, on the pristine Debian source; `make series-export` writes the
# branch back to kernel/patches with git format-patch, cover letter included.
series:
	@bash scripts/series.sh import

series-export:
	@bash scripts/series.sh export
