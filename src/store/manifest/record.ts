/**
 * Server image records (`images/<ami-id>`): the AMI analog. One record per replication
 * run, one entry per disk with the root of its manifest tree. Records are small (the trees
 * live in packs) and are validated field by field when read.
 */
import { randomBytes } from 'node:crypto';
import { StoreCorruptError, StoreTooLargeError } from '../../errors/index.js';
import { HEX64_RE, IMAGE_ID_RE, MAX_DISKS_PER_IMAGE, MAX_IMAGE_VIRTUAL_SIZE } from '../layout.js';
import type { RepoConfig } from '../repo/config.js';
import { CHECKSUM_ALGORITHM } from './checksum.js';
import { treeShape } from './tree.js';

export interface DiskStats {
  /** Non-zero blocks of the disk. */
  readonly dataBlocks: number;
  readonly zeroBlocks: number;
  /** Chunks this write stored (not found in the repository). */
  readonly newChunks: number;
  /** Raw bytes of those chunks. */
  readonly newBytes: number;
  /** Bytes those chunks take in packs (compressed, encrypted). */
  readonly storedBytes: number;
}

export interface DiskImage {
  readonly index: number;
  readonly name: string;
  readonly virtualSize: number;
  readonly blockSize: number;
  readonly fanout: number;
  readonly depth: number;
  /** Root reference (64 hex; all zeros for an all-zero disk). */
  readonly root: string;
  /** "sha256-tree:<64 hex>" */
  readonly checksum: string;
  /**
   * Root of the digest tree (64 hex): same shape as the block tree, its leaves are the
   * blocks' SHA-256 digests (zero reference for zero blocks). Lets a later image reuse
   * unchanged blocks without reading them (docs/store.md, "Incremental images"). Absent on
   * images written before it existed or whose write resumed mid-disk.
   */
  readonly digests?: string;
  readonly stats: DiskStats;
}

export interface ServerImage {
  readonly version: 1;
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly created: string;
  readonly job: string | null;
  readonly sourceServer: string | null;
  readonly run: string | null;
  readonly disks: readonly DiskImage[];
}

/** `ami-` + 17 hex digits, like EC2 image ids. */
export function newImageId(): string {
  return `ami-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export function isImageId(s: string): boolean {
  return IMAGE_ID_RE.test(s);
}

const CHECKSUM_RE = new RegExp(`^${CHECKSUM_ALGORITHM}:[0-9a-f]{64}$`);

/** Validates a record read from `images/<expectedId>` against the repository config. */
export function decodeRecord(
  v: Record<string, unknown>,
  expectedId: string,
  config: RepoConfig,
): ServerImage {
  const what = `image ${expectedId}`;
  const bad = (field: string): never => {
    throw new StoreCorruptError(`${what}: invalid ${field}`, { object: what, field });
  };
  const str = (x: unknown, field: string, max = 1024) =>
    typeof x === 'string' && x.length <= max ? x : bad(field);
  const optStr = (x: unknown, field: string) => (x === null || x === undefined ? null : str(x, field));
  const int = (x: unknown, field: string) =>
    Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : bad(field);
  if (v.version !== 1) bad('version');
  if (v.id !== expectedId || !isImageId(expectedId)) bad('id');
  if (!Array.isArray(v.disks)) return bad('disks');
  if (v.disks.length > MAX_DISKS_PER_IMAGE) {
    throw new StoreTooLargeError(`${what}: ${v.disks.length} disks exceed the limit`, {
      object: what,
      limit: MAX_DISKS_PER_IMAGE,
    });
  }
  const disks = v.disks.map((d: unknown, i: number): DiskImage => {
    if (typeof d !== 'object' || d === null) return bad(`disks[${i}]`);
    const r = d as Record<string, unknown>;
    const f = (name: string) => `disks[${i}].${name}`;
    const virtualSize = int(r.virtualSize, f('virtualSize'));
    if (virtualSize > MAX_IMAGE_VIRTUAL_SIZE) bad(f('virtualSize'));
    if (r.blockSize !== config.blockSize) bad(f('blockSize'));
    if (r.fanout !== config.fanout) bad(f('fanout'));
    const shape = treeShape(virtualSize, config.blockSize, config.fanout);
    if (r.depth !== shape.depth) bad(f('depth'));
    if (r.index !== i) bad(f('index'));
    const s = (r.stats ?? {}) as Record<string, unknown>;
    return Object.freeze({
      index: i,
      name: str(r.name, f('name')),
      virtualSize,
      blockSize: config.blockSize,
      fanout: config.fanout,
      depth: shape.depth,
      root: typeof r.root === 'string' && HEX64_RE.test(r.root) ? r.root : bad(f('root')),
      checksum:
        typeof r.checksum === 'string' && CHECKSUM_RE.test(r.checksum) ? r.checksum : bad(f('checksum')),
      ...(r.digests === undefined
        ? {}
        : {
            digests:
              typeof r.digests === 'string' && HEX64_RE.test(r.digests) ? r.digests : bad(f('digests')),
          }),
      stats: Object.freeze({
        dataBlocks: int(s.dataBlocks, f('stats.dataBlocks')),
        zeroBlocks: int(s.zeroBlocks, f('stats.zeroBlocks')),
        newChunks: int(s.newChunks, f('stats.newChunks')),
        newBytes: int(s.newBytes, f('stats.newBytes')),
        storedBytes: int(s.storedBytes, f('stats.storedBytes')),
      }),
    });
  });
  return Object.freeze({
    version: 1,
    id: expectedId,
    name: str(v.name, 'name'),
    description: typeof v.description === 'string' ? str(v.description, 'description', 4096) : '',
    created: str(v.created, 'created', 64),
    job: optStr(v.job, 'job'),
    sourceServer: optStr(v.sourceServer, 'sourceServer'),
    run: optStr(v.run, 'run'),
    disks: Object.freeze(disks),
  });
}
