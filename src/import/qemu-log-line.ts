/**
 * One line of QEMU's VFIO trace output, parsed: the log backend's three
 * prefixes (none, `TID@sec.usec:` with `-msg timestamp=on`, the ISO-8601
 * time of QEMU 8.1+) and scripts/simpletrace.py's `name delta pid=N
 * arg=value ...`. The event names of several QEMU generations map to one
 * kind each (ALIASES); events whose fields pinledger reads exactly have a
 * pattern of their format string (FIELDS), the rest are read as numbers
 * and words in order (tokens).
 */

/** A parsed trace line: the event name and its arguments in the order of the event's signature. */
export interface Parsed {
  name: string;
  args: string[];
  /** Nanoseconds or an ISO time, when the line had one. */
  ts?: number | string;
  /** Lines that follow and belong to this event (QEMU 7.2's two-line formats); absent when none. */
  more?: number;
}

/**
 * What each event is, for the names QEMU used over time (7.2 names first,
 * then the renames of 8.x and later).
 */
export const ALIASES: Record<string, string> = {
  vfio_disconnect_container: 'container_disconnect',
  vfio_container_disconnect: 'container_disconnect',
  vfio_put_group: 'group_put',
  vfio_group_put: 'group_put',
  vfio_get_device: 'device_get',
  vfio_device_get: 'device_get',
  vfio_attach_device: 'device_attach',
  vfio_device_attach: 'device_attach',
  vfio_realize: 'device_attach',
  vfio_detach_device: 'device_detach',
  vfio_device_detach: 'device_detach',
  vfio_listener_region_add_ram: 'region_add_ram',
  vfio_listener_region_del: 'region_del',
  vfio_iommu_map_notify: 'iommu_map_notify',
  vfio_listener_region_add_iommu: 'region_add_iommu',
  vfio_listener_region_del_iommu: 'region_del_iommu',
  vfio_listener_region_skip: 'region_skip',
  vfio_listener_region_add_skip: 'region_skip',
  vfio_listener_region_del_skip: 'region_skip',
  vfio_listener_region_add_no_dma_map: 'region_no_dma_map',
  vfio_known_safe_misalignment: 'region_no_dma_map_safe',
  vfio_mdev: 'mdev',
  vfio_dma_unmap_overflow_workaround: 'unmap_overflow_workaround',
  vfio_legacy_dma_unmap_overflow_workaround: 'unmap_overflow_workaround',
  vfio_region_setup: 'region_setup',
  vfio_region_mmap: 'region_mmap',
  vfio_region_unmap: 'region_unmap',
  vfio_region_mmaps_set_enabled: 'region_mmaps_enabled',
  vfio_msix_fixup: 'msix_fixup',
  vfio_pci_write_config: 'config_write',
  vfio_pci_read_config: 'config_read',
  vfio_put_base_device: 'device_put',
  vfio_pci_load_rom: 'multi_line',
  vfio_populate_device_config: 'multi_line',
};

/**
 * Events QEMU 7.2 prints on two lines: their format strings
 * (hw/vfio/trace-events, as built into Debian's qemu-system-x86 7.2.22)
 * hold a `\n`: `vfio_pci_load_rom "Device %s ROM:\n  size: 0x%lx, offset:
 * 0x%lx, flags: 0x%lx"` and `vfio_populate_device_config "Device %s
 * config:\n  size: ..."`. The second line has no prefix and starts with
 * spaces. QEMU 8 prints them on one line (`Device '%s' ROM: size: ...`),
 * hence the test on the first line's end.
 */
const MULTI_LINE: Record<string, RegExp> = {
  vfio_pci_load_rom: /ROM:\s*$/,
  vfio_populate_device_config: /config:\s*$/,
};

const HEX = '(0x[0-9a-fA-F]+)';
/** Patterns of the format strings whose fields are read exactly; groups in the signature's order. */
const FIELDS: Record<string, RegExp> = {
  // " (%s, @0x%x, 0x%x, len=0x%x)"
  vfio_pci_write_config: new RegExp(`\\(\\s*([^,\\s]+), @${HEX}, ${HEX}, len=${HEX}\\)`),
  // " (%s, @0x%x, len=0x%x) 0x%x"
  vfio_pci_read_config: new RegExp(`\\(\\s*([^,\\s]+), @${HEX}, len=${HEX}\\) ${HEX}`),
  // "Device %s, region %d \"%s\", flags: 0x%lx, offset: 0x%lx, size: 0x%lx"
  vfio_region_setup: new RegExp(`Device (\\S+), region (\\d+) "([^"]*)", flags: ${HEX}, offset: ${HEX}, size: ${HEX}`),
  // "Region %s [0x%lx - 0x%lx]" (7.2: the name is "<dev> BAR <n> mmaps[<i>]"); a host address after it when a QEMU prints one
  vfio_region_mmap: new RegExp(`Region (.+?) \\[${HEX} - ${HEX}\\](?:\\s*\\[?${HEX}\\]?)?\\s*$`),
  // "Region %s unmap [0x%lx - 0x%lx]"
  vfio_region_unmap: new RegExp(`Region (.+?) unmap \\[${HEX} - ${HEX}\\]`),
  // "Region \"%s\" 0x%lx size=0x%lx is not aligned to 0x%lx and cannot be mapped for DMA"
  vfio_listener_region_add_no_dma_map: new RegExp(`Region "([^"]*)" ${HEX} size=${HEX} is not aligned to ${HEX}`),
};

const PREFIX_TID = /^(\d+)@(\d+)\.(\d+):(\S+)\s?(.*)$/;
const PREFIX_ISO = /^(\d{4}-\d\d-\d\dT[\d:.]+Z?)\s+(\S+)\s?(.*)$/;
const PLAIN = /^(vfio_\S+)\s?(.*)$/;
const SIMPLETRACE = /^(vfio_\S+)\s+(-?[\d.]+)\s+pid=(\d+)\s*(.*)$/;
/** simpletrace.py's `arg=value` pairs; a string value may hold spaces ("0000:01:00.0 BAR 0"). */
const SIMPLE_ARG = /(\w+)=(.*?)(?=\s+\w+=|\s*$)/g;

/** Numbers and words out of a formatted message, in order: hex, decimal, (names). */
function tokens(msg: string): string[] {
  const out: string[] = [];
  const re = /\(([^()\s]+)\)|(0x[0-9a-fA-F]+)|(-?\d+)|\b(MAP|UNMAP)\b/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(msg))) out.push(m[1] ?? m[2] ?? m[3] ?? m[4]!);
  return out;
}

/** The arguments of a log-backend message: by the event's pattern when it has one, else tokens. */
function messageArgs(name: string, msg: string): string[] {
  const re = FIELDS[name];
  if (!re) return tokens(msg);
  const m = re.exec(msg);
  return m ? m.slice(1).filter((x): x is string => x !== undefined) : [];
}

function withMore(p: Parsed, msg: string): Parsed {
  const re = MULTI_LINE[p.name];
  if (re && re.test(msg)) p.more = 1;
  return p;
}

/**
 * The event on `line`, or undefined when it is no trace line. `wanted`
 * says whose arguments to read (the converter reads only those of events it
 * uses: a log is mostly region reads and writes); the others get none.
 */
export function parseLine(line: string, wanted: (name: string) => boolean = () => true): Parsed | undefined {
  const args = (name: string, msg: string) => (wanted(name) ? messageArgs(name, msg) : []);
  // The common case first: 7.2's default, no prefix (simpletrace.py's lines start with the name too, but carry pid=).
  const plain = line.startsWith('vfio_') && !line.includes(' pid=') ? PLAIN.exec(line) : null;
  if (plain) return withMore({ name: plain[1]!, args: args(plain[1]!, plain[2]!) }, plain[2]!);
  let m = SIMPLETRACE.exec(line);
  if (m) return { name: m[1]!, args: wanted(m[1]!) ? [...m[4]!.matchAll(SIMPLE_ARG)].map((x) => x[2]!) : [] };
  m = PREFIX_TID.exec(line);
  if (m) return withMore({ name: m[4]!, args: args(m[4]!, m[5]!), ts: Number(m[2]) * 1e9 + Number(m[3]!.padEnd(6, '0').slice(0, 6)) * 1e3 }, m[5]!);
  m = PREFIX_ISO.exec(line);
  if (m && m[2]!.startsWith('vfio_')) return withMore({ name: m[2]!, args: args(m[2]!, m[3]!), ts: m[1]! }, m[3]!);
  m = PLAIN.exec(line);
  if (m) return withMore({ name: m[1]!, args: args(m[1]!, m[2]!) }, m[2]!);
  return undefined;
}

/** A line that continues the event before it: QEMU's trace lines never start with white space. */
export function isContinuation(line: string): boolean {
  return /^\s+\S/.test(line);
}

/**
 * What a `region_add [ram]` line says beyond its range, when a QEMU prints
 * it: the memory region's name in quotes, or a read-only word. QEMU 7.2
 * prints neither (`"region_add [ram] 0x%"PRIx64" - 0x%"PRIx64" [%p]"`).
 */
export function regionHints(line: string): { name?: string; readonly?: boolean } {
  const at = line.indexOf('region_add [ram]');
  if (at < 0) return {};
  const rest = line.slice(at);
  const name = /"([^"]+)"/.exec(rest)?.[1];
  const readonly = /\b(?:ro|readonly|read-only)\b/i.test(rest) ? true : undefined;
  return { ...(name === undefined ? {} : { name }), ...(readonly === undefined ? {} : { readonly }) };
}
