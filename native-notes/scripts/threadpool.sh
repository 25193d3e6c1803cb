#!/usr/bin/env bash
# Reproduces the claims of native-notes/threadpool.md: where Node 20 reads a file, for each API.
# Usage: native-notes/scripts/threadpool.sh   (writes native-notes/captures/threadpool.txt too)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
prepare 4

trace_run() { # $1 = label, rest = env assignments
  local label=$1
  shift
  env "$@" strace -f -qq -o "$tmp/$label.trace" \
    -e trace=openat,read,pread64,readv,preadv,close,clone,clone3,write,epoll_pwait,io_uring_setup,io_uring_enter \
    node "$here/file.mjs" "$file" 2>"$tmp/$label.stderr"
  main=$(sed -n 's/^main-tid //p' "$tmp/$label.stderr")
  node "$here/analyze-fs.mjs" "$tmp/$label.trace" "$file" "$main" >"$tmp/$label.json"
}

{
header threadpool
trace_run default UV_USE_IO_URING=0
echo "## a 4 MiB file read five ways (strace -f; thread ids other than main are libuv threadpool threads)"
echo "phase         opened by         read by (thread: calls)            syscalls            biggest read   threads started"
while read -r line; do
  node -e 'const p = JSON.parse(process.argv[1]); const rb = Object.entries(p.readBy).map(([k, v]) => `${k}:${v}`).join(" ") || "-"; const rc = Object.entries(p.readCalls).map(([k, v]) => `${k} x${v}`).join(" ") || "-"; console.log(`${p.phase.padEnd(13)} ${(p.openedBy.join(" ") || "-").padEnd(17)} ${rb.padEnd(34)} ${rc.padEnd(19)} ${String(p.biggestRead).padEnd(14)} ${p.threadsStarted}`)' "$line"
done < <(grep -v '"phase":"total"' "$tmp/default.json")
echo
echo "## UV_THREADPOOL_SIZE: threads the whole run started (clone3/clone calls)"
for n in 1 4 16; do
  trace_run "size$n" UV_USE_IO_URING=0 UV_THREADPOOL_SIZE=$n
  echo "  UV_THREADPOOL_SIZE=$n: $(field "size$n" total p.threadsStarted) threads"
done
echo
claim "readFileSync opens and reads on the main thread" test "$(field default readFileSync 'p.openedBy.join() + "/" + Object.keys(p.readBy).join()')" = "main/main"
claim "fs.readFile opens and reads on a threadpool thread, never the main thread" test "$(field default readFile '!p.openedBy.includes("main") && !("main" in p.readBy) && p.readBytes > 0')" = true
claim "fs.promises.readFile: same, on threadpool threads" test "$(field default promises '!p.openedBy.includes("main") && !("main" in p.readBy) && p.readBytes > 0')" = true
claim "createReadStream: same, one read per 64 KiB chunk" test "$(field default stream '!("main" in p.readBy) && p.biggestRead === 65536')" = true
claim "fs.readFile reads 512 KiB at a time with read(2) at the current position, not pread64" test "$(field default readFile 'p.biggestRead === 524288 && Object.keys(p.readCalls).join() === "read"')" = true
t1=$(field size1 total p.threadsStarted); t4=$(field size4 total p.threadsStarted); t16=$(field size16 total p.threadsStarted)
claim "UV_THREADPOOL_SIZE=N starts N pool threads: the runs differ by exactly 3 and 15 threads ($t1, $t4, $t16)" \
  test "$((t4 - t1)),$((t16 - t1))" = "3,15"
claim "dns.lookup opens /etc/hosts on a threadpool thread (getaddrinfo runs in the pool)" \
  bash -c "awk '/== phase lookup ==/{on=1} on' '$tmp/default.trace' | grep -E 'openat\(AT_FDCWD, \"/etc/hosts\"' | grep -qv \"^$(sed -n 's/^main-tid //p' "$tmp/default.stderr") \""
claim "while the pool reads, the main thread waits in epoll_pwait (woken by the pool's completion)" test "$(field default readFile 'p.mainEpollWaits > 0')" = true
finish
} | tee "$(capture_path threadpool)"
