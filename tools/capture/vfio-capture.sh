#!/usr/bin/env bash
# vfio-capture.sh: capture a live host's VFIO activity as a vfio-trace file.
#
#   sudo tools/capture/vfio-capture.sh > capture.jsonl            # Ctrl-C to stop
#   sudo tools/capture/vfio-capture.sh --comm qemu-system-x86 > capture.jsonl
#   sudo tools/capture/vfio-capture.sh --comm qemu-system-x86,qemu-kvm > capture.jsonl
#   sudo tools/capture/vfio-capture.sh --pid 4242 > capture.jsonl  # a running VMM
#   sudo tools/capture/vfio-capture.sh --header-only               # just the header
#
# Prints the header (kernel, page size, type1 module parameters, and the
# topology read from /sys/kernel/iommu_groups and /sys/class/iommu), then
# runs vfio-capture.bt under bpftrace into a temporary file until Ctrl-C or
# SIGTERM, and then writes every event captured, in order, as vfio-trace
# format version 2 (vfio-capture.awk). It exits 0 when stopped that way.
#
# Which processes: by default every process from its first open of
# /dev/vfio/* (what it mapped before that is not seen; a VMM's guest RAM is
# usually allocated before, so its mmaps are missed); --comm NAME follows
# processes named NAME (up to four, comma-separated) from their exec (start the capture first, then the
# VMM: nothing is missed); --pid PID attaches to a running process (what it
# mapped, pinned and opened before is not in the capture). Children forked
# by a followed process are followed too.
#
# Needs root, bpftrace 0.17+, a BTF kernel (CONFIG_DEBUG_INFO_BTF), awk and
# the vfio modules loaded. Set TRACE_ID to name the trace, GUEST_MEMORY to
# the VM's memory (bytes, or 16G, 4096M: powers of 1024) so the memlock
# answer is compared with libvirt's default limit for it, and BPFTRACE to
# the bpftrace binary (default: bpftrace on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
me=vfio-capture.sh

usage() { echo "$me: $1 (usage: $me [--comm NAME | --pid PID] [--header-only])" >&2; exit 2; }
follow_pid=0 follow_comm="" header_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pid) [ $# -ge 2 ] || usage "--pid needs a process id"
      [[ "$2" =~ ^[1-9][0-9]*$ ]] || usage "--pid $2: not a process id"
      [ -d "/proc/$2" ] || usage "--pid $2: no such process"
      follow_pid="$2"; shift 2 ;;
    --comm) [ $# -ge 2 ] && [ -n "$2" ] || usage "--comm needs a process name"
      [[ "$2" =~ ^[^[:space:],\\\"]{1,15}(,[^[:space:],\\\"]{1,15}){0,3}$ ]] ||
        usage "--comm $2: one to four process names, comma-separated, each 1 to 15 characters (the kernel's comm), no spaces or quotes"
      follow_comm="$2"; shift 2 ;;
    --header-only) header_only=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) usage "unknown argument $1" ;;
  esac
done
[ "$follow_pid" = 0 ] || [ -z "$follow_comm" ] || usage "--pid and --comm cannot be used together"
bpftrace="${BPFTRACE:-bpftrace}"
IFS=, read -r -a comms <<< "$follow_comm,,,,"

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

param() {
  local f="/sys/module/vfio_iommu_type1/parameters/$1"
  if [ -r "$f" ]; then cat "$f"; else echo "$2"; fi
}

# GUEST_MEMORY as a JSON member ("guest_memory":"<bytes>"), or nothing.
guest_memory_json() {
  local v="${GUEST_MEMORY:-}" n unit
  [ -n "$v" ] || return 0
  if [[ "$v" =~ ^([0-9]+)([KkMmGgTt]?)(i?[Bb])?$ ]]; then
    n="${BASH_REMATCH[1]}"
    unit="${BASH_REMATCH[2],,}"
    case "$unit" in k) n=$((n << 10)) ;; m) n=$((n << 20)) ;; g) n=$((n << 30)) ;; t) n=$((n << 40)) ;; esac
    printf ',"guest_memory":"%s"' "$n"
  else
    echo "vfio-capture.sh: GUEST_MEMORY=$v: expected bytes or a size such as 16G" >&2
    exit 2
  fi
}

header() {
  local trace_id="${TRACE_ID:-$(hostname)/$(date -u +%Y%m%dT%H%M%SZ)}"
  local limit unsafe hp
  limit="$(param dma_entry_limit 65535)"
  unsafe="$(param allow_unsafe_interrupts N)"
  hp="$(param disable_hugepages N)"
  local bool_unsafe=false bool_hp=false
  [ "$unsafe" = Y ] && bool_unsafe=true
  [ "$hp" = Y ] && bool_hp=true

  # IOMMU units: their reserved regions are the union of their groups'.
  local iommus="" groups="" g dev unit parent
  declare -A unit_resv=()
  for g in /sys/kernel/iommu_groups/*; do
    [ -d "$g" ] || continue
    local id devs="" mdev_parent="" unit_name=""
    id="$(basename "$g")"
    for dev in "$g"/devices/*; do
      [ -e "$dev" ] || continue
      devs="${devs:+$devs,}$(json_str "$(basename "$dev")")"
      if [ -e "$dev/mdev_type" ]; then
        parent="$(basename "$(dirname "$(readlink -f "$dev")")")"
        mdev_parent="$parent"
      elif [ -L "$dev/iommu" ]; then
        unit_name="$(basename "$(readlink -f "$dev/iommu")")"
      fi
    done
    if [ -n "$mdev_parent" ]; then
      groups="${groups:+$groups,}{\"id\":$id,\"mdev_parent\":$(json_str "$mdev_parent"),\"devices\":[$devs]}"
    else
      unit_name="${unit_name:-default}"
      unit_resv[$unit_name]+=""
      groups="${groups:+$groups,}{\"id\":$id,\"iommu\":$(json_str "$unit_name"),\"devices\":[$devs]}"
      if [ -r "$g/reserved_regions" ]; then
        while read -r start end type; do
          case "$type" in direct-relaxable) continue ;; esac
          unit_resv[$unit_name]+="${unit_resv[$unit_name]:+,}{\"start\":\"$start\",\"end\":\"$end\",\"type\":\"$type\"}"
        done < "$g/reserved_regions"
      fi
    fi
  done
  for unit in "${!unit_resv[@]}"; do
    # Duplicates (one per group) are harmless: the windows are the same.
    iommus="${iommus:+$iommus,}{\"id\":$(json_str "$unit"),\"reserved\":[${unit_resv[$unit]}]}"
  done
  printf '{"type":"header","format":"vfio-trace","version":2,"trace_id":%s,"segment":0,"host":%s,"kernel":%s,"arch":%s,"page_size":%s,"captured_by":"vfio-capture.sh (bpftrace %s)"%s%s%s,"module_params":{"dma_entry_limit":%s,"allow_unsafe_interrupts":%s,"disable_hugepages":%s},"topology":{"iommus":[%s],"groups":[%s]}}\n' \
    "$(json_str "$trace_id")" "$(json_str "$(hostname)")" "$(json_str "$(uname -r)")" "$(json_str "$(uname -m)")" \
    "$(getconf PAGESIZE 2>/dev/null || echo 4096)" "$bpftrace_version" "$guest_memory" "$attached" "$end_record" "$limit" "$bool_unsafe" "$bool_hp" "$iommus" "$groups"
}

guest_memory="$(guest_memory_json)" || exit 2
attached=""
if [ "$follow_pid" != 0 ]; then
  attached_comm="$(cat "/proc/$follow_pid/comm" 2>/dev/null || echo '?')"
  attached=",\"attached\":[{\"pid\":$follow_pid,\"comm\":$(json_str "$attached_comm")}]"
fi
bpftrace_version="$("$bpftrace" --version 2>/dev/null | head -1 | sed 's/^bpftrace //')" || bpftrace_version="unknown"
# A capture ends with the awk's end record, so its header promises one: a
# reader never takes a capture that is still being written (--header-only
# writes no events and no end record, so it promises none).
end_record=',"end_record":true'
[ "$header_only" = 1 ] && end_record=""
header
[ "$header_only" = 1 ] && exit 0

# kernel_cap_t became { u64 val } in 6.3; older kernels have cap[2].
script="$here/vfio-capture.bt"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
read -r major minor _ < <(uname -r | tr '.-' '  ')
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 3 ]; }; then
  sed 's/cap_effective\.val/cap_effective.cap[0]/' "$script" > "$work/capture.bt"
  script="$work/capture.bt"
fi

# A process attached to is already running: its limit, capability and VFIO
# descriptors are read from /proc and written first, as if seen now.
seed() {
  local p="$1" t lim cap fd target kind
  t="$(printf '%020d' 0)"
  lim="$(awk '/^Max locked memory/ { print ($4 == "unlimited" ? "18446744073709551615" : $4) }' "/proc/$p/limits")"
  cap="$(awk '/^CapEff:/ { v = $2; d = substr(v, length(v) - 3, 1); n = index("0123456789abcdef", tolower(d)) - 1; print int(n / 4) % 2 }' "/proc/$p/status")"
  echo "$t start $p $lim $cap $(cat "/proc/$p/comm")"
  for fd in "/proc/$p/fd/"*; do
    target="$(readlink "$fd" 2>/dev/null)" || continue
    case "$target" in
      /dev/vfio/*) echo "$t open $p $(basename "$fd") 0 $target" ;;
      "anon_inode:[vfio-device]") echo "$t devseed $p $(basename "$fd")" ;;
    esac
  done
}
: > "$work/seed"
if [ "$follow_pid" != 0 ]; then
  echo "$me: attaching to pid $follow_pid ($attached_comm) while it runs: what it mapped, pinned, locked or opened before now is not in this capture (the header lists it under \"attached\"), so its replay starts from an empty container" >&2
  seed "$follow_pid" > "$work/seed"
elif [ -z "$follow_comm" ]; then
  echo "$me: following each process from its first open of /dev/vfio (what it mapped before that is not in the capture; use --comm NAME and start the VMM after the capture to see all of it)" >&2
fi

# bpftrace runs in its own session, so the terminal's Ctrl-C reaches only
# this script, which stops bpftrace once (SIGINT: it runs END and flushes).
setsid_cmd=()
command -v setsid >/dev/null 2>&1 && setsid_cmd=(setsid)
started="${EPOCHREALTIME/./}"
BPFTRACE_PERF_RB_PAGES="${BPFTRACE_PERF_RB_PAGES:-1024}" \
  "${setsid_cmd[@]}" "$bpftrace" -q "$script" "$follow_pid" "${comms[0]:-}" "${comms[1]:-}" "${comms[2]:-}" "${comms[3]:-}" > "$work/raw" 2> "$work/err" &
bpid=$!
stopping=0
stop() { stopping=1; kill -INT "$bpid" 2>/dev/null || true; }
trap stop INT TERM
ready=0
while kill -0 "$bpid" 2>/dev/null; do
  if [ "$ready" = 0 ] && grep -q '^[0-9]* ready ' "$work/raw" 2>/dev/null; then
    ready=1
    echo "$me: attached in $(( (${EPOCHREALTIME/./} - started) / 1000 )) ms; Ctrl-C or SIGTERM ends the capture" >&2
  fi
  sleep 0.2 || true
done
status=0
wait "$bpid" || status=$?
trap - INT TERM
grep -v '^$' "$work/err" | grep -v '^Attaching' >&2 || true
if [ "$stopping" = 0 ] && [ "$status" != 0 ] && [ "$ready" = 0 ]; then
  echo "$me: bpftrace failed (exit $status) before the capture started" >&2
  exit 1
fi
lost="$(grep -c '^Lost ' "$work/err" || true)"
[ "$lost" = 0 ] || echo "$me: bpftrace lost events (see above): the capture is incomplete" >&2
cat "$work/seed" "$work/raw" | grep -E '^[0-9]{20} ' | LC_ALL=C sort -s -k1,1 | awk -f "$here/vfio-capture.awk"
exit 0
