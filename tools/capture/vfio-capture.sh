#!/usr/bin/env bash
# vfio-capture.sh: capture a live host's VFIO activity as a vfio-trace file.
#
#   sudo tools/capture/vfio-capture.sh > capture.jsonl      # Ctrl-C to stop
#   sudo tools/capture/vfio-capture.sh --header-only         # just the header
#
# Prints the header (kernel, page size, type1 module parameters, and the
# topology read from /sys/kernel/iommu_groups and /sys/class/iommu), then
# the events of vfio-capture.bt, sorted by seq when the capture ends.
# Needs root, bpftrace 0.17+, a BTF kernel (CONFIG_DEBUG_INFO_BTF) and the
# vfio modules loaded. Set TRACE_ID to name the trace, and GUEST_MEMORY to
# the VM's memory (bytes, or 16G, 4096M: powers of 1024) so the memlock
# answer is compared with libvirt's default limit for it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

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
  printf '{"type":"header","format":"vfio-trace","version":1,"trace_id":%s,"segment":0,"host":%s,"kernel":%s,"arch":%s,"page_size":%s,"captured_by":"vfio-capture.sh (bpftrace)"%s,"module_params":{"dma_entry_limit":%s,"allow_unsafe_interrupts":%s,"disable_hugepages":%s},"topology":{"iommus":[%s],"groups":[%s]}}\n' \
    "$(json_str "$trace_id")" "$(json_str "$(hostname)")" "$(json_str "$(uname -r)")" "$(json_str "$(uname -m)")" \
    "$(getconf PAGESIZE)" "$guest_memory" "$limit" "$bool_unsafe" "$bool_hp" "$iommus" "$groups"
}

guest_memory="$(guest_memory_json)" || exit 2
header
[ "${1:-}" = --header-only ] && exit 0

# kernel_cap_t became { u64 val } in 6.3; older kernels have cap[2].
script="$here/vfio-capture.bt"
read -r major minor _ < <(uname -r | tr '.-' '  ')
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 3 ]; }; then
  tmp="$(mktemp --suffix=.bt)"
  sed 's/cap_effective\.val/cap_effective.cap[0]/' "$script" > "$tmp"
  script="$tmp"
fi
# Each line starts with {"seq":N: sort on N so the file is in seq order.
bpftrace -q "$script" | grep '^{"seq":' | sort -t: -k2 -n
