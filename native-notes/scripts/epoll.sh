#!/usr/bin/env bash
# Reproduces the claims of native-notes/epoll.md: what Node 20 does underneath for a socket read.
# Usage: native-notes/scripts/epoll.sh   (writes native-notes/captures/epoll.txt too)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
prepare

{
header epoll
strace -f -qq -o "$tmp/trace" \
  -e trace=socket,bind,listen,connect,accept4,epoll_create1,epoll_ctl,epoll_pwait,epoll_wait,read,write,io_uring_setup,io_uring_enter \
  node "$here/sock.mjs" 2>"$tmp/stderr"
main=$(sed -n 's/^main-tid //p' "$tmp/stderr")
t="$tmp/trace"
readline=$(grep -m1 'read([0-9]*, "wirelab-socket-marker"' "$t")
fd=$(sed -E 's/^[0-9]+ +read\(([0-9]+),.*/\1/' <<<"$readline")
reader=$(awk '{print $1}' <<<"$readline")

echo "main thread id: $main; the server's socket: fd $fd"
echo
echo "## the main thread's syscalls on fd $fd and its epoll_pwait calls around the read (excerpt)"
grep -n -E "^$main +(accept4|epoll_ctl\([0-9]+, EPOLL_CTL_(ADD|MOD), $fd,|epoll_pwait|read\($fd,|write\($fd,)" "$t" \
  | grep -B4 -A2 'wirelab-socket-marker' | sed 's/^[0-9]*://' | cut -c1-200
echo
echo "## every thread that ran an epoll syscall: thread id, epoll fd, calls"
grep -E '^[0-9]+ +epoll_(pwait|wait|ctl)\(' "$t" | sed -E 's/^([0-9]+) +epoll_[a-z]+\(([0-9]+),.*/\1 \2/' | sort | uniq -c \
  | awk -v m="$main" '{print "  tid " $2 (($2==m)?" (main)":"       ") "  epoll fd " $3 ": " $1 " calls"}'
echo
claim "the socket's bytes are read by the main thread (read(2) on tid $main)" test "$reader" = "$main"
claim "the accepted socket is non-blocking (accept4 with SOCK_NONBLOCK)" grep -qE "^$main +accept4\(.*SOCK_NONBLOCK.*\) = $fd$" "$t"
claim "the socket is registered with epoll for EPOLLIN (epoll_ctl ADD or MOD on fd $fd)" grep -qE "^$main +epoll_ctl\([0-9]+, EPOLL_CTL_(ADD|MOD), $fd, \{events=EPOLLIN" "$t"
claim "the main thread waits in epoll_pwait, which reports fd $fd readable before the read" \
  bash -c "grep -E '^$main +(epoll_pwait|read\($fd, \"wirelab)' '$t' | grep -B1 -m1 'wirelab-socket-marker' | head -1 | grep -qE 'data=\{u32=$fd,'"
claim "no other thread touches the socket (every syscall on fd $fd is on the main thread)" \
  bash -c "! grep -E '^[0-9]+ +[a-z_0-9]+\\($fd,' '$t' | awk '{print \$1}' | grep -qv '^$main\$'"
claim "the other epoll user is a separate loop on its own epoll fd (Node's platform thread), not this socket" \
  bash -c "! grep -E '^[0-9]+ +epoll_ctl\\([0-9]+, EPOLL_CTL_[A-Z]+, $fd,' '$t' | awk '{print \$1}' | grep -qv '^$main\$'"
claim "between events the loop sleeps in epoll_pwait with the next timer as its timeout (a positive timeout that expires with 0 events)" \
  grep -qE "^$main +epoll_pwait\([0-9]+, \[\], [0-9]+, [1-9][0-9]*, NULL, 8\) = 0" "$t"
finish
} | tee "$(capture_path epoll)"
