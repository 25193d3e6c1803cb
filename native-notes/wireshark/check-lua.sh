#!/usr/bin/env bash
# Reproduces the README's claims about loading wirelab.lua with tshark: Debian's init.lua settings, the
# dissector loaded with -X lua_script as the current user (root included) and, when run as root, as
# `nobody` on the same file, and from the personal Lua plugins folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "== /etc/wireshark/init.lua:"
grep -E '^(enable_lua|run_user_scripts_when_superuser)' /etc/wireshark/init.lua || echo "(no such settings)"
tshark --version | head -1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
cp native-notes/wireshark/wirelab.lua "$tmp/"
npx tsx labs/13-retry-storm.ts --clients 2 --strategy full --scale 0.05 --pcap "$tmp/s.pcap" > /dev/null
chmod 644 "$tmp/s.pcap" "$tmp/wirelab.lua"
echo "== as $(id -un), -X lua_script:"
tshark -r "$tmp/s.pcap" -X "lua_script:$tmp/wirelab.lua" -Y wirelab 2> /dev/null | head -2
echo "== as $(id -un), from the personal plugins folder:"
mkdir -p "$tmp/home/.local/lib/wireshark/plugins"
cp "$tmp/wirelab.lua" "$tmp/home/.local/lib/wireshark/plugins/"
HOME="$tmp/home" tshark -r "$tmp/s.pcap" -Y wirelab 2> /dev/null | head -2
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
  echo "== as nobody, -X lua_script:"
  setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$tmp" tshark -r "$tmp/s.pcap" -X "lua_script:$tmp/wirelab.lua" -Y wirelab 2> /dev/null | head -2
fi
