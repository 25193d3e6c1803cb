#!/usr/bin/env bash
# Reproduces the claims of native-notes/io_uring.md: whether this Node's libuv uses io_uring, for files
# and for sockets, with and without UV_USE_IO_URING=1.
# Usage: native-notes/scripts/io_uring.sh   (writes native-notes/captures/io_uring.txt too)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
prepare 4
calls=openat,read,pread64,readv,preadv,close,clone,clone3,write,epoll_ctl,epoll_pwait,io_uring_setup,io_uring_enter,io_uring_register

run_file() { # $1 = label, $2 = UV_USE_IO_URING value or "unset"
  if [ "$2" = unset ]; then
    env -u UV_USE_IO_URING strace -f -qq -o "$tmp/$1.trace" -e trace=$calls node "$here/file.mjs" "$file" readFileSync readFile stream 2>"$tmp/$1.stderr"
  else
    UV_USE_IO_URING=$2 strace -f -qq -o "$tmp/$1.trace" -e trace=$calls node "$here/file.mjs" "$file" readFileSync readFile stream 2>"$tmp/$1.stderr"
  fi
  node "$here/analyze-fs.mjs" "$tmp/$1.trace" "$file" "$(sed -n 's/^main-tid //p' "$tmp/$1.stderr")" >"$tmp/$1.json"
}
run_sock() { # $1 = label, $2 = UV_USE_IO_URING value
  UV_USE_IO_URING=$2 strace -f -qq -o "$tmp/$1.trace" -e trace=$calls node "$here/sock.mjs" 2>/dev/null
}
count() { grep -cE "$2" "$tmp/$1.trace" || true; }

{
header io_uring
run_file unset unset
run_file off 0
run_file on 1
run_sock sock-off 0
run_sock sock-on 1
echo "## file reads (4 MiB), traced with strace -f"
printf '%-22s %-14s %-16s %-20s %-20s\n' "UV_USE_IO_URING" "io_uring_setup" "io_uring_enter" "readFile: read(2)s" "stream: read(2)s"
for l in unset off on; do
  printf '%-22s %-14s %-16s %-20s %-20s\n' "$l" "$(count $l 'io_uring_setup\(')" "$(count $l 'io_uring_enter\(')" \
    "$(field $l readFile 'Object.values(p.readCalls).reduce((a, b) => a + b, 0)')" "$(field $l stream 'Object.values(p.readCalls).reduce((a, b) => a + b, 0)')"
done
echo
echo "## the rings libuv sets up with UV_USE_IO_URING=1 (one pair per libuv loop in the process)"
grep -E 'io_uring_setup\(' "$tmp/on.trace" | sed -E 's/^[0-9]+ +//; s/, sq_thread_cpu.*//' | sort | uniq -c
echo
echo "## a socket exchange (sock.mjs): epoll_ctl syscalls vs io_uring_enter"
printf '%-22s %-12s %-16s\n' "UV_USE_IO_URING" "epoll_ctl" "io_uring_enter"
for l in sock-off sock-on; do
  printf '%-22s %-12s %-16s\n' "${l#sock-}" "$(count $l 'epoll_ctl\(')" "$(count $l 'io_uring_enter\(')"
done
echo
claim "by default (variable unset) this Node never calls io_uring_setup: io_uring is opt-in" test "$(count unset 'io_uring_setup\(')" = 0
claim "UV_USE_IO_URING=1 sets up an SQPOLL ring (file operations) and a plain ring (epoll_ctl batching)" \
  bash -c "grep -q 'flags=IORING_SETUP_SQPOLL' '$tmp/on.trace' && grep -q 'io_uring_setup(256, {flags=0' '$tmp/on.trace'"
claim "without io_uring, fs.readFile's reads are read(2) calls on pool threads" test "$(field off readFile 'Object.values(p.readCalls).reduce((a, b) => a + b, 0) > 0 && !("main" in p.readBy)')" = true
claim "with UV_USE_IO_URING=1, fs.readFile makes no read(2) at all: the kernel's SQPOLL thread reads (invisible to strace)" \
  test "$(field on readFile 'Object.values(p.readCalls).reduce((a, b) => a + b, 0)')" = 0
claim "with UV_USE_IO_URING=1, createReadStream's reads go through the ring too" test "$(field on stream 'Object.values(p.readCalls).reduce((a, b) => a + b, 0)')" = 0
claim "readFileSync is unchanged by io_uring: one read(2) on the main thread" test "$(field on readFileSync 'JSON.stringify(p.readBy)')" = '{"main":1}'
claim "with UV_USE_IO_URING=1, most epoll_ctl syscalls are batched into io_uring_enter" \
  test "$(count sock-on 'epoll_ctl\(')" -lt "$(count sock-off 'epoll_ctl\(')"
finish
} | tee "$(capture_path io_uring)"
