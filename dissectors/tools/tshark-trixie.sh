#!/bin/sh
# The tshark of Debian trixie (Wireshark 4.4, Lua 5.4) run from a chroot, to test the
# dissector on a newer Wireshark than the machine's own (Debian bookworm has 4.0 only).
#
#   tshark-trixie.sh build [ROOT]   debootstrap ROOT (default /opt/trixie-ws), install tshark
#   tshark-trixie.sh ARGS...        run that tshark with ARGS, as tshark itself would be run
#
# Running needs root (a private mount namespace, bind mounts, chroot).  /tmp, /dev, /proc,
# the current folder's top folder and that of every absolute path in ARGS are bound into
# the chroot at the same places, so paths mean the same inside.  Wireshark 4.4 runs no Lua
# script as root unless its global init.lua says so: the build writes that one line.  NETDUMP_TRIXIE_ROOT names
# another ROOT.  The tests run it when NETDUMP_TSHARK_NEWER names this script.
set -eu
ROOT=${NETDUMP_TRIXIE_ROOT:-/opt/trixie-ws}

if [ "${1:-}" = build ]; then
    ROOT=${2:-$ROOT}
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
    [ -x "$ROOT/usr/bin/apt-get" ] || debootstrap --variant=minbase trixie "$ROOT" http://deb.debian.org/debian
    chroot "$ROOT" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive;
        apt-get update -qq && apt-get install -y -qq --no-install-recommends tshark >/dev/null'
    for d in "$ROOT"/usr/lib/*/wireshark/plugins; do
        echo 'run_user_scripts_when_superuser = true' > "$d/init.lua"
    done
    chroot "$ROOT" tshark --version | head -1
    exit 0
fi

[ -x "$ROOT/usr/bin/tshark" ] || { echo "tshark-trixie.sh: no tshark in $ROOT (run: $0 build)" >&2; exit 2; }

# top folders to bind: /tmp, the current folder's, and those of absolute paths in the args
tops="/tmp $(printf '%s\n' "$PWD" "$@" | sed -n 's#^[^/]*\(/[^/,:]*\).*#\1#p' | sort -u | tr '\n' ' ')"
exec unshare -m --propagation private /bin/sh -c '
    root=$1; shift; tops=$1; shift
    for d in /dev /proc $tops; do
        case $d in /|/usr|/lib*|/bin|/sbin|/etc|/var|/opt) continue ;; esac
        [ -d "$d" ] || continue
        mkdir -p "$root$d" && mount --rbind "$d" "$root$d"
    done
    exec chroot "$root" /bin/sh -c "cd \"\$0\" && exec /usr/bin/tshark \"\$@\"" "$PWD" "$@"
' sh "$ROOT" "$tops" "$@"
