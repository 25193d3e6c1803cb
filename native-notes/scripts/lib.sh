# Shared by the native-notes scripts: a header naming the machine, and claim checks that print ok/FAIL.
# Source it; then call `header NAME`, `claim "text" test-command...`, and `finish`.
failed=0

# Where the output is kept: native-notes/captures/NAME.txt, or nowhere with NATIVE_NOTES_NO_CAPTURE=1 (tests).
capture_path() {
  if [ "${NATIVE_NOTES_NO_CAPTURE:-}" = 1 ]; then echo /dev/null; else echo "$here/../captures/$1.txt"; fi
}

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

# Checks strace can run, makes a scratch directory $tmp (removed at exit) and, if asked, a random test file
# $file of $1 MiB in it.
prepare() {
  need_strace
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if [ -n "${1:-}" ]; then
    file="$tmp/data.bin"
    head -c $(($1 * 1024 * 1024)) /dev/urandom >"$file"
  fi
}

# field LABEL PHASE EXPR: a value from analyze-fs.mjs output $tmp/LABEL.json, for phase PHASE (p is the phase).
field() {
  node -e 'const [f, ph, expr] = process.argv.slice(1); const p = require("fs").readFileSync(f, "utf8").trim().split("\n").map(JSON.parse).find((x) => x.phase === ph); console.log(eval(expr))' "$tmp/$1.json" "$2" "$3"
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
