/**
 * Helpers for the KVM connector's integration tests: short QMP sessions as an external
 * script would open them, guest-like writes through HMP qemu-io mirrored into a model of
 * the disk, whole-disk reads and maps, and what Ferry left in QEMU.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MemorySource, driverFor, type Disk, type DiskLayer, type Extent } from '../../src/disk/index.js';
import { QmpClient, ferryLeftovers, humanMonitorCommand } from '../../src/connectors/kvm/index.js';
import { tempDir } from './qemu.js';
import { rejectsWith } from './errors.js';

export { rejectsWith };

const MiB = 1024 * 1024;

/** A short QMP session, as an external script would open one (the connector holds none). */
export async function qmp<T>(path: string, fn: (q: QmpClient) => Promise<T>): Promise<T> {
  const q = await QmpClient.connect({ path }, { connectTimeoutMs: 20_000 });
  try {
    return await fn(q);
  } finally {
    await q.close();
  }
}

/**
 * A guest-like write through the drive (HMP qemu-io), mirrored into `model`; pattern 0
 * writes zeroes the efficient way (`write -z`: qcow2 zero clusters, reported as holes).
 */
export async function write(
  vm: string,
  drive: string,
  pattern: number,
  offset: number,
  length: number,
  model: Buffer,
) {
  const how = pattern === 0 ? '-z' : `-P ${pattern}`;
  const out = await qmp(vm, (q) =>
    humanMonitorCommand(q, `qemu-io ${drive} "write ${how} ${offset} ${length}"`),
  );
  assert.equal(out, '', out);
  model.fill(pattern, offset, offset + length);
}

export async function readAll(d: Disk): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < d.virtualSize; at += 8 * MiB)
    parts.push(await d.read(at, Math.min(8 * MiB, d.virtualSize - at)));
  return Buffer.concat(parts);
}

export async function extents(d: Disk): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of d.map()) out.push(e);
  return out;
}

/** The previous image of a disk as a layer (what the store's image layer is to a run). */
export async function baseLayer(content: Buffer): Promise<DiskLayer> {
  return driverFor('raw').open(new MemorySource(Buffer.from(content), 'previous'), {
    openReference: () => Promise.reject(new Error('no references')),
  });
}

/** Exports, jobs, nodes and bitmaps named ferry-* in the VM behind `vm` (its QMP socket). */
export async function leftovers(vm: string) {
  return qmp(vm, ferryLeftovers);
}

/** A temporary root with an empty QMP socket directory and a (not yet created) state directory. */
export async function setup() {
  const root = await tempDir('ferry-kvmc-');
  const qmpDir = join(root, 'qmp');
  const stateDir = join(root, 'state');
  await mkdir(qmpDir);
  return { root, qmpDir, stateDir };
}
