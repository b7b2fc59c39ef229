# SPDX-License-Identifier: GPL-2.0
#
# `make` builds rust_pktring.ko against the project's cached kernel (built
# first if needed), or against any Rust-enabled kernel with
# `make KDIR=/path/to/build LLVM=1`.
#
# `make run` is the main job, `make test` runs every test: see README.md.

CACHE ?= $(or $(PKTRING_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rust-pktring)
KDIR ?= $(CACHE)/build-base
LLVM ?= -19
export PATH := /usr/bin:$(PATH):$(HOME)/.cargo/bin

KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) RUSTC=/usr/bin/rustc

.PHONY: modules setup kernel kernel-debug clippy rustfmt-check clean run test

modules: $(if $(filter $(CACHE)/%,$(KDIR)),kernel)
	+$(KMAKE) modules

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
	rustfmt --edition 2021 --check rust_pktring.rs ring.rs uapi.rs

clean:
	+$(KMAKE) clean 2>/dev/null || true
	$(MAKE) -C selftests clean

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh
