# Shared by the native-notes scripts: a header naming the machine, and claim checks that print ok/FAIL.
# Source it; then call `header NAME`, `claim "text" test-command...`, and `finish`.
failed=0

header() {
  echo "# native-notes/scripts/$1.sh"
  echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel:   $(uname -srm)"
  echo "node:     $(node -v) (libuv $(node -p process.versions.uv))"
  echo "strace:   $(strace -V | head -1)"
  echo "io_uring: kernel.io_uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 'n/a (sysctl absent)')"
  echo
}

claim() {
  local text=$1
  shift
  if "$@"; then
    echo "ok    $text"
  else
    echo "FAIL  $text"
    failed=1
  fi
}

finish() {
  echo
  if [ "$failed" = 0 ]; then echo "every claim held"; else echo "SOME CLAIMS FAILED"; fi
  return "$failed"
}

need_strace() {
  if ! command -v strace >/dev/null; then
    echo "strace is not installed (apt-get install strace)" >&2
    exit 2
  fi
  # ptrace may be forbidden (containers without CAP_SYS_PTRACE, yama ptrace_scope=3): say so plainly.
  if ! strace -qq -e trace=none true 2>/dev/null; then
    echo "strace cannot trace here (ptrace refused: check /proc/sys/kernel/yama/ptrace_scope and the container's seccomp/capabilities)" >&2
    exit 2
  fi
}
