/**
 * OVF descriptors (DMTF DSP0243): the VM's name, OS, CPUs, memory, NICs and its disks in
 * hardware order. Disks: each `VirtualHardwareSection/Item` of ResourceType 17 points at a
 * `DiskSection/Disk` (`ovf:/disk/ID`), which points at a `References/File` (its href).
 *
 * Reference: https://www.dmtf.org/standards/ovf (DSP0243 2.1), CIM RASD ResourceType
 * values: 3 processor, 4 memory, 10 Ethernet adapter, 17 disk drive.
 */
import { ImageCorruptError } from '../../errors/index.js';
import { childText, findAll, parseXml } from './xml.js';

export const MAX_OVF_BYTES = 1024 * 1024;

export interface OvfFacts {
  readonly name?: string;
  readonly cpus?: number;
  readonly memoryMiB?: number;
  readonly guestOs?: string;
  readonly disks: readonly string[];
  readonly nics: readonly { macAddress?: string; network?: string }[];
}

/** rasd:AllocationUnits for memory, as a multiplier to MiB. */
function memoryMiB(quantity: string | undefined, units: string | undefined): number | undefined {
  if (!quantity || !/^\d{1,15}$/.test(quantity)) return undefined;
  const q = Number(quantity);
  const u = (units ?? 'byte * 2^20').replace(/\s+/g, '').toLowerCase();
  const pow = /^byte\*2\^(\d+)$/.exec(u);
  if (pow) return (q * 2 ** Number(pow[1])) / 2 ** 20;
  const table: Record<string, number> = {
    mb: 1,
    megabytes: 1,
    gb: 1024,
    gigabytes: 1024,
    kb: 1 / 1024,
    bytes: 2 ** -20,
    byte: 2 ** -20,
  };
  return table[u] !== undefined ? q * table[u] : undefined;
}

export function parseOvf(text: string, file = 'descriptor.ovf'): OvfFacts {
  if (text.length > MAX_OVF_BYTES) {
    throw new ImageCorruptError(`${file} is larger than ${MAX_OVF_BYTES} bytes`, {
      file,
      limit: MAX_OVF_BYTES,
    });
  }
  const doc = parseXml(text, file);
  const envelope = doc.children.find((c) => c.name === 'Envelope');
  if (!envelope) throw new ImageCorruptError(`${file} has no OVF Envelope`, { file });
  const files = new Map(findAll(envelope, 'File').map((f) => [f.attrs.id ?? '', f.attrs.href ?? '']));
  const disksById = new Map(
    findAll(envelope, 'Disk').map((d) => [d.attrs.diskId ?? '', files.get(d.attrs.fileRef ?? '') ?? '']),
  );
  const system = findAll(envelope, 'VirtualSystem')[0];
  const items = system ? findAll(system, 'Item') : [];
  let cpus: number | undefined;
  let mem: number | undefined;
  const disks: string[] = [];
  const nics: { macAddress?: string; network?: string }[] = [];
  for (const item of items) {
    const type = childText(item, 'ResourceType');
    if (type === '3') {
      const q = childText(item, 'VirtualQuantity');
      if (q && /^\d{1,6}$/.test(q)) cpus = Number(q);
    } else if (type === '4') {
      mem = memoryMiB(childText(item, 'VirtualQuantity'), childText(item, 'AllocationUnits'));
    } else if (type === '10') {
      const mac = childText(item, 'Address');
      const network = childText(item, 'Connection');
      nics.push({
        ...(mac && /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(mac)
          ? { macAddress: mac.toLowerCase().replace(/-/g, ':') }
          : {}),
        ...(network ? { network } : {}),
      });
    } else if (type === '17') {
      const host = childText(item, 'HostResource') ?? '';
      const m = /^ovf:\/(disk|file)\/(.+)$/.exec(host);
      const href = m
        ? m[1] === 'disk'
          ? disksById.get(m[2] as string)
          : files.get(m[2] as string)
        : undefined;
      if (href) disks.push(href);
    }
  }
  // Descriptors without hardware items still list their disks: keep DiskSection order.
  if (disks.length === 0) disks.push(...[...disksById.values()].filter((h) => h));
  const os = system ? findAll(system, 'OperatingSystemSection')[0] : undefined;
  const guestOs = os ? (childText(os, 'Description') ?? os.attrs.osType) : undefined;
  const name = system ? (childText(system, 'Name') ?? system.attrs.id) : undefined;
  return {
    ...(name ? { name } : {}),
    ...(cpus ? { cpus } : {}),
    ...(mem ? { memoryMiB: mem } : {}),
    ...(guestOs ? { guestOs } : {}),
    disks,
    nics,
  };
}
