/**
 * VMware .vmx descriptors: `key = "value"` lines (keys case-insensitive, values with
 * `|XX` hex escapes). We read what the catalog shows — name, CPUs, memory, guest OS,
 * firmware, NICs — and the virtual disks in device order (the order ImportServerCatalog
 * numbers them in). CD-ROMs and devices marked not present are skipped.
 *
 * Reference: VMware KB 1014782 ("Understanding the VMX file") and VMware's vmx format
 * as written by Workstation/ESXi (`scsi0:0.fileName = "disk.vmdk"`).
 */
import { ImageCorruptError } from '../../errors/index.js';

/** Descriptors are a few KiB; anything bigger is not a VMX we should parse. */
export const MAX_VMX_BYTES = 1024 * 1024;
const MAX_LINES = 20_000;

export interface VmxFacts {
  readonly displayName?: string;
  readonly cpus?: number;
  readonly memoryMiB?: number;
  readonly guestOs?: string;
  readonly firmware?: string;
  /** Disk file names in device order (as written: relative to the .vmx, usually). */
  readonly disks: readonly string[];
  readonly nics: readonly { macAddress?: string; network?: string }[];
}

const BUS_ORDER = ['scsi', 'sata', 'nvme', 'ide'];
const DISK_KEY = /^(scsi|sata|nvme|ide)(\d+):(\d+)\.filename$/;
const NIC_KEY = /^ethernet(\d+)\.(present|address|generatedaddress|networkname)$/;

export function parseVmx(text: string, file = 'descriptor.vmx'): VmxFacts {
  if (text.length > MAX_VMX_BYTES) {
    throw new ImageCorruptError(`${file} is larger than ${MAX_VMX_BYTES} bytes`, {
      file,
      limit: MAX_VMX_BYTES,
    });
  }
  const values = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_LINES)
    throw new ImageCorruptError(`${file} has too many lines`, { file, limit: MAX_LINES });
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z0-9_.:-]+)\s*=\s*"?(.*?)"?\s*$/.exec(line);
    if (!m) continue;
    values.set((m[1] as string).toLowerCase(), unescape(m[2] as string));
  }

  const disks: { bus: string; ctrl: number; unit: number; file: string }[] = [];
  for (const [key, value] of values) {
    const m = DISK_KEY.exec(key);
    if (!m) continue;
    const [, bus = '', ctrl = '0', unit = '0'] = m;
    const prefix = `${bus}${ctrl}:${unit}`;
    const deviceType = (values.get(`${prefix}.devicetype`) ?? '').toLowerCase();
    const present = (values.get(`${prefix}.present`) ?? 'true').toLowerCase();
    const controllerPresent = (values.get(`${bus}${ctrl}.present`) ?? 'true').toLowerCase();
    if (present === 'false' || controllerPresent === 'false') continue;
    if (deviceType.includes('cdrom') || /\.iso$/i.test(value) || value === '') continue;
    disks.push({ bus, ctrl: Number(ctrl), unit: Number(unit), file: value });
  }
  disks.sort(
    (a, b) => BUS_ORDER.indexOf(a.bus) - BUS_ORDER.indexOf(b.bus) || a.ctrl - b.ctrl || a.unit - b.unit,
  );

  const nics = new Map<number, { present: boolean; macAddress?: string; network?: string }>();
  for (const [key, value] of values) {
    const m = NIC_KEY.exec(key);
    if (!m) continue;
    const n = Number(m[1]);
    const nic = nics.get(n) ?? { present: true };
    if (m[2] === 'present') nic.present = value.toLowerCase() !== 'false';
    else if (m[2] === 'networkname') nic.network = value;
    else if (/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(value)) nic.macAddress ??= value.toLowerCase();
    nics.set(n, nic);
  }

  return {
    ...opt('displayName', values.get('displayname')),
    ...opt('cpus', positiveInt(values.get('numvcpus'))),
    ...opt('memoryMiB', positiveInt(values.get('memsize'))),
    ...opt('guestOs', values.get('guestos')),
    ...opt('firmware', values.get('firmware')),
    disks: disks.map((d) => d.file),
    nics: [...nics.entries()]
      .sort((a, b) => a[0] - b[0])
      .filter(([, n]) => n.present)
      .map(([, n]) => ({ ...opt('macAddress', n.macAddress), ...opt('network', n.network) })),
  };
}

function unescape(v: string): string {
  return v.replace(/\|([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function positiveInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,9}$/.test(v)) return undefined;
  const n = Number(v);
  return n > 0 ? n : undefined;
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined || value === '' ? {} : ({ [key]: value } as { [P in K]?: V });
}
