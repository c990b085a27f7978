#!/usr/bin/env bash
# tests/e2e/demo.sh — `make demo` does what the README says: in a short run without a
# terminal, preoomd asks the cache, the cache gives memory back, the leaker is stopped, the
# kernel kills nobody, and everything the demo started is gone afterwards. Root only.
. "$(dirname "$0")/lib.sh"

if ! is_root || ! cg_root >/dev/null; then skip "demo: needs root and a memory cgroup"; t_done; fi
before_cg=$(ls -d /sys/fs/cgroup/memory/preoom-demo-* /sys/fs/cgroup/preoom-demo-* 2>/dev/null | wc -l)
out=$(DEMO_SECONDS=22 BUILD=$BUILD "$TOP/scripts/demo.sh" 2>&1); rc=$?
echo "$out" | sed -n '/== what happened/,$p' | sed 's/^/# /'
check "the demo exits 0" [ "$rc" -eq 0 ]
check "the demo shows the cache asked" grep -q "asked cache (pid [0-9]*) to give back" <<<"$out"
check "the demo shows the cache giving memory back" grep -Eq "cache \(pid [0-9]+\) answered in [0-9]+ms and gave back [1-9][0-9.]*MiB" <<<"$out"
check "the demo shows the leaker stopped" grep -q "stopped leaker (pid [0-9]*) with SIGTERM" <<<"$out"
check "the demo says the kernel killed nobody" grep -q "The kernel's OOM killer killed nobody" <<<"$out"
after_cg=$(ls -d /sys/fs/cgroup/memory/preoom-demo-* /sys/fs/cgroup/preoom-demo-* 2>/dev/null | wc -l)
check "the demo removed its cgroup" [ "$after_cg" -eq "$before_cg" ]
check "the demo removed its registry" bash -c '! ls /dev/shm/preoom.demo* >/dev/null 2>&1'
t_done
