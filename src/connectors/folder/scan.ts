/**
 * One server directory → its facts. The disk engine decides what is a disk (by content,
 * never by name), with two name rules on top: a file that probes as `raw` counts only
 * with a raw-image extension (raw matches any bytes), and files another disk uses (VMDK
 * extents, backing files, snapshot parents) are parts of that disk, not disks of their own.
 *
 * Disk order — the N of `--disk N` and of a run's image — is the descriptor's device order
 * when a .vmx/.ovf names the disks, else the files' names in natural order.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, sep } from 'node:path';
import { openDisk, type Disk } from '../../disk/index.js';
import { toFerryError } from '../../errors/index.js';
import type { InventoryDisk, ServerFacts, VmManagerType } from '../types.js';
import { MAX_OVF_BYTES, parseOvf } from './ovf.js';
import { MAX_VMX_BYTES, parseVmx } from './vmx.js';

/** A VM export is a handful of files; directories deeper or bigger than this are not one. */
export const MAX_FILES_PER_SERVER = 500;
/** Hyper-V exports nest disks two levels down ("Virtual Hard Disks/"). */
export const MAX_SCAN_DEPTH = 3;

const RAW_EXTENSIONS = new Set(['.img', '.raw', '.dd', '.bin', '.disk']);
/** Files that are never disks (descriptors, logs, NVRAM, manifests, …). */
const NOT_DISKS = new Set([
  '.ovf',
  '.mf',
  '.cert',
  '.vmx',
  '.vmxf',
  '.vmsd',
  '.vmsn',
  '.vmss',
  '.nvram',
  '.log',
  '.vmcx',
  '.vmrs',
  '.vmgs',
  '.xml',
  '.json',
  '.txt',
  '.md',
  '.iso',
  '.ova',
  '.lck',
  '.exp',
]);

export interface ScannedServer {
  readonly facts: ServerFacts;
  readonly vmName?: string;
  readonly vmManagerType?: VmManagerType;
  /** Absolute paths of the disks, parallel to facts.disks. */
  readonly diskPaths: readonly string[];
}

export async function scanServer(dir: string): Promise<ScannedServer> {
  const files = await listFiles(dir);
  const warnings: string[] = [];
  if (files.length >= MAX_FILES_PER_SERVER) {
    warnings.push(
      `more than ${MAX_FILES_PER_SERVER} files; only the first ${MAX_FILES_PER_SERVER} were looked at`,
    );
  }
  const rel = (p: string) => relative(dir, p).split(sep).join('/');

  // Descriptor facts (first .vmx, else first .ovf).
  const vmxFile = files.find((f) => extname(f).toLowerCase() === '.vmx');
  const ovfFile = vmxFile ? undefined : files.find((f) => extname(f).toLowerCase() === '.ovf');
  let descriptor: ServerFacts['descriptor'];
  let named: string[] | undefined;
  let extra: Partial<Pick<ServerFacts, 'cpus' | 'memoryMiB' | 'guestOs' | 'firmware' | 'nics'>> & {
    name?: string;
  } = {};
  try {
    if (vmxFile) {
      const v = parseVmx(await readBounded(vmxFile, MAX_VMX_BYTES), rel(vmxFile));
      descriptor = { kind: 'vmx', file: rel(vmxFile) };
      named = v.disks.map((d) => join(dirname(vmxFile), d));
      extra = {
        name: v.displayName,
        cpus: v.cpus,
        memoryMiB: v.memoryMiB,
        guestOs: v.guestOs,
        firmware: v.firmware,
        nics: v.nics,
      };
    } else if (ovfFile) {
      const o = parseOvf(await readBounded(ovfFile, MAX_OVF_BYTES), rel(ovfFile));
      descriptor = { kind: 'ovf', file: rel(ovfFile) };
      named = o.disks.map((d) => join(dirname(ovfFile), d));
      extra = { name: o.name, cpus: o.cpus, memoryMiB: o.memoryMiB, guestOs: o.guestOs, nics: o.nics };
    }
  } catch (err) {
    warnings.push(`descriptor ignored: ${toFerryError(err).message}`);
  }

  // Probe every candidate file with the disk engine.
  const disks = new Map<string, InventoryDisk>();
  const partOfAnother = new Set<string>();
  for (const file of files) {
    const ext = extname(file).toLowerCase();
    if (NOT_DISKS.has(ext)) continue;
    let disk: Disk | undefined;
    try {
      disk = await openDisk(file);
      const top = disk.layers[0];
      if (!top || (top.format === 'raw' && !RAW_EXTENSIONS.has(ext))) continue;
      const used = filesUsed(file, disk);
      for (const u of used) partOfAnother.add(u);
      disks.set(file, {
        name: rel(file),
        format: top.format,
        subformat: top.subformat,
        virtualSize: disk.virtualSize,
        fileSize: disk.layers.reduce((s, l) => s + l.fileSize, 0),
        files: used.map(rel),
      });
    } catch (err) {
      if (RAW_EXTENSIONS.has(ext) || ['.vmdk', '.qcow2', '.vhd', '.vhdx', '.avhdx', '.avhd'].includes(ext)) {
        warnings.push(
          `${rel(file)}: not a usable disk (${toFerryError(err).code}: ${toFerryError(err).message})`,
        );
      }
    } finally {
      await disk?.close().catch(() => undefined);
    }
  }

  let order: string[];
  if (named && named.length > 0) {
    order = [];
    for (const n of named) {
      if (disks.has(n)) order.push(n);
      else
        warnings.push(
          `${rel(n)}: named by ${descriptor?.file ?? 'the descriptor'} but not a usable disk here`,
        );
    }
  } else {
    order = [...disks.keys()].filter((f) => !partOfAnother.has(f)).sort(naturalCompare);
  }
  const facts: ServerFacts = {
    disks: order.map((f) => disks.get(f) as InventoryDisk),
    ...(extra.cpus ? { cpus: extra.cpus } : {}),
    ...(extra.memoryMiB ? { memoryMiB: extra.memoryMiB } : {}),
    nics: extra.nics ?? [],
    ...(extra.guestOs ? { guestOs: extra.guestOs } : {}),
    ...(extra.firmware ? { firmware: extra.firmware } : {}),
    ...(descriptor ? { descriptor } : {}),
    warnings,
  };
  return {
    facts,
    ...(extra.name ? { vmName: extra.name } : {}),
    ...managerType(descriptor, facts.disks),
    diskPaths: order,
  };
}

/** The SMS VmManagerType that best describes where the export came from, if any. */
function managerType(
  descriptor: ServerFacts['descriptor'],
  disks: readonly InventoryDisk[],
): { vmManagerType?: VmManagerType } {
  if (descriptor) return { vmManagerType: 'VSPHERE' };
  if (disks.length > 0 && disks.every((d) => d.format === 'vhd' || d.format === 'vhdx')) {
    return { vmManagerType: 'HYPERV-MANAGER' };
  }
  return {};
}

/**
 * Absolute paths of every file a disk reads besides the one named: each layer's extents
 * and its parent, resolved against that layer's directory (as the engine resolves them).
 */
function filesUsed(file: string, disk: Disk): string[] {
  const used: string[] = [];
  let current = file;
  disk.layers.forEach((l, i) => {
    for (const f of l.files) used.push(join(dirname(current), f));
    if (l.parent && i + 1 < disk.layers.length) {
      current = join(dirname(current), l.parent.name.replace(/\\/g, '/'));
      used.push(current);
    }
  });
  return used;
}

async function listFiles(dir: string, depth = 0, out: string[] = []): Promise<string[]> {
  if (depth >= MAX_SCAN_DEPTH || out.length >= MAX_FILES_PER_SERVER) return out;
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => naturalCompare(a.name, b.name));
  for (const e of entries) {
    if (out.length >= MAX_FILES_PER_SERVER) break;
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) await listFiles(p, depth + 1, out);
    else if (e.isFile() || (e.isSymbolicLink() && (await stat(p).catch(() => undefined))?.isFile()))
      out.push(p);
  }
  return out;
}

async function readBounded(file: string, limit: number): Promise<string> {
  const s = await stat(file);
  if (s.size > limit) throw new Error(`${basename(file)} is larger than ${limit} bytes`);
  return readFile(file, 'utf8');
}

const collator = new Intl.Collator('en', { numeric: true });
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}
