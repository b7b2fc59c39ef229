#!/bin/sh
# virtme-ng's user shell for `make shell` (qemu/boot.sh --shell): the guest
# set-up of vng-run.sh, the module loaded, then an interactive shell.
exec "$(dirname "$0")/vng-run.sh" --shell
