/**
 * The connector's local state per VM (see names.ts for the layout): the fleecing scratch
 * images QEMU writes the guest's overwritten blocks to, and one small record per snapshot
 * that says what it was taken from (the `since` checkpoint, each disk's mode). QEMU holds
 * the rest; the record lets a restarted process reattach, release and read correctly.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { MemorySink, driverFor } from '../../disk/index.js';
import { InternalError } from '../../errors/index.js';
import type { SnapshotDisk, SourceSnapshot } from '../types.js';
import { keyOfStateFile, MAX_DISKS_PER_VM, type VmPaths } from './names.js';

/** A record is a few hundred bytes per disk; anything larger is not ours. */
const MAX_RECORD_BYTES = 1024 * 1024;

export interface RecordDisk extends SnapshotDisk {
  /** The QEMU node the bitmaps and the fleecing overlay were attached to. */
  readonly node: string;
}

export interface SnapshotRecord {
  readonly version: 1;
  readonly runId: string;
  readonly key: string;
  readonly vmId: string;
  /** The checkpoint the snapshot was taken against (its bitmap was disabled at the snapshot). */
  readonly since?: string;
  /** 'preparing' until every export exists; a 'preparing' record means a half-made snapshot. */
  readonly state: 'preparing' | 'ready';
  readonly takenAt: number;
  readonly checkpoint: string;
  readonly disks: readonly RecordDisk[];
  readonly warnings: readonly string[];
  /** Set (on a 'preparing' record) right before the guest agent is asked to freeze. */
  readonly guestFrozen?: boolean;
}

export function toSnapshot(r: SnapshotRecord): SourceSnapshot {
  return Object.freeze({
    id: `ferry-${r.key}`,
    takenAt: r.takenAt,
    checkpoint: r.checkpoint,
    disks: Object.freeze(
      r.disks.map((d) =>
        Object.freeze({
          index: d.index,
          virtualSize: d.virtualSize,
          mode: d.mode,
          ...(d.rescan ? { rescan: d.rescan } : {}),
        }),
      ),
    ),
    warnings: Object.freeze([...r.warnings]),
  });
}

/** The VM's state directory, created owner-only (it holds copies of guest data). */
export async function ensureVmDir(paths: VmPaths): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function validDisk(d: unknown): d is RecordDisk {
  const x = d as Record<string, unknown>;
  return (
    typeof d === 'object' &&
    d !== null &&
    isNum(x.index) &&
    isNum(x.virtualSize) &&
    isStr(x.node) &&
    (x.mode === 'full' || x.mode === 'changed') &&
    (x.rescan === undefined || isStr(x.rescan))
  );
}

/** The record of snapshot `key`, or undefined when there is none (or it is not a valid record). */
export async function readRecord(paths: VmPaths, key: string): Promise<SnapshotRecord | undefined> {
  const file = paths.record(key);
  try {
    if ((await stat(file)).size > MAX_RECORD_BYTES) return undefined;
    const r = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const ok =
      r.version === 1 &&
      r.key === key &&
      isStr(r.runId) &&
      isStr(r.vmId) &&
      isStr(r.checkpoint) &&
      (r.since === undefined || isStr(r.since)) &&
      (r.state === 'preparing' || r.state === 'ready') &&
      isNum(r.takenAt) &&
      Array.isArray(r.disks) &&
      r.disks.length <= MAX_DISKS_PER_VM &&
      r.disks.every(validDisk) &&
      Array.isArray(r.warnings) &&
      r.warnings.every(isStr) &&
      (r.guestFrozen === undefined || typeof r.guestFrozen === 'boolean');
    return ok ? (r as unknown as SnapshotRecord) : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** Writes the record atomically (temporary file, fsync, rename). */
export async function writeRecord(paths: VmPaths, r: SnapshotRecord): Promise<void> {
  const file = paths.record(r.key);
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(r));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/**
 * An empty qcow2 image of `virtualSize` bytes for a fleecing overlay, written with Ferry's
 * own qcow2 writer (no qemu-img at run time). Its backing node is given to QEMU in
 * blockdev-add, so the header names no backing file.
 */
export async function createScratch(path: string, virtualSize: number): Promise<void> {
  const driver = driverFor('qcow2');
  if (!driver.createWriter) throw new InternalError('the qcow2 driver cannot write');
  const sink = new MemorySink({ name: path });
  const w = await driver.createWriter(sink, { virtualSize });
  await w.finish();
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.writeFile(sink.contents());
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Run keys that have files (records or scratch images) in the VM's state directory. */
export async function keysWithFiles(paths: VmPaths): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const name of await listDir(paths.dir)) {
    const k = keyOfStateFile(name);
    if (k) keys.add(k);
  }
  return keys;
}

/** Removes snapshot `key`'s scratch images, then its record (last: it is what says the snapshot exists). */
export async function removeFiles(paths: VmPaths, key: string): Promise<void> {
  for (const name of await listDir(paths.dir)) {
    if (keyOfStateFile(name) === key && !name.endsWith('.json')) await rmFile(`${paths.dir}/${name}`);
  }
  await rmFile(paths.record(key));
}

export async function rmFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
