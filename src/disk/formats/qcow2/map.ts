/**
 * Pure mapping: an L2 table (or its absence) -> the runs of a guest range, each tagged
 * the way QEMU's qcow2_get_subcluster_type() (block/qcow2.h) classifies it, with every
 * host offset checked before anyone reads it:
 *
 *   compressed          -> `compressed` (one run per cluster: each is inflated alone)
 *   ZERO flag (v3)      -> `zero`, even when a stale host offset is present
 *   offset 0            -> `unallocated` (falls through to the backing file)
 *   offset != 0         -> `data` at that host offset (+ the offset inside the cluster)
 *   extended L2         -> the same per 1/32 subcluster, from the allocation/zero bitmaps
 *
 * Data runs that are contiguous in the guest and in the host file are merged, so the
 * reader issues one source read per run instead of one per cluster.
 */
import { corrupt, pastEnd } from './errors.js';
import {
  COMPRESSED_SECTOR,
  HI_COMPRESSED,
  HI_COPIED,
  HI_OFFSET_MASK,
  HI_SAFE_LIMIT,
  LO_OFFSET_MASK,
  LO_ZERO_FLAG,
  SUBCLUSTERS_PER_CLUSTER,
} from './layout.js';

export type Run =
  | { kind: 'data'; offset: number; length: number; host: number }
  | { kind: 'zero' | 'unallocated'; offset: number; length: number }
  /** `offset`/`length`: the guest bytes wanted; `cluster`: guest start of the cluster. */
  | { kind: 'compressed'; offset: number; length: number; cluster: number; host: number; size: number };

/** Everything the pure mapper needs to know about the image. */
export interface Geometry {
  readonly file: string;
  readonly clusterBits: number;
  readonly clusterSize: number;
  readonly l2Entries: number;
  readonly l2EntryBytes: number;
  readonly extendedL2: boolean;
  /** Data clusters live in an external data file (host offset == guest offset). */
  readonly dataFile: boolean;
  /** Size of the file that holds data clusters (the data file, or the image). */
  readonly dataSize: number;
  /** Size of the image file itself (L2 tables, compressed clusters). */
  readonly fileSize: number;
  /** Host ranges [start, end) of the image file nothing may point into (header, tables). */
  readonly metadata: readonly (readonly [number, number])[];
}

/** The L2 table being mapped: its data must not point into it. */
interface Table {
  readonly g: Geometry;
  readonly offset: number;
}

/** Bytes of guest disk one L2 table maps. */
export function tableSpan(g: Geometry): number {
  return g.clusterSize * g.l2Entries;
}

/**
 * Appends the runs of guest [from, to) to `out`. The range lies inside the span of L2
 * table `tableIndex`; `loaded` is that table's cluster and file offset, or undefined when
 * the L1 entry is 0.
 */
export function mapTable(
  g: Geometry,
  loaded: { readonly table: Buffer; readonly offset: number } | undefined,
  tableIndex: number,
  from: number,
  to: number,
  out: Run[],
): void {
  if (!loaded) return pushRun(out, { kind: 'unallocated', offset: from, length: to - from });
  const { table } = loaded;
  // Data must not point into the image's metadata, this very L2 table included.
  const t: Table = { g, offset: loaded.offset };
  const cs = g.clusterSize;
  const tableStart = tableIndex * tableSpan(g);
  let pos = from;
  while (pos < to) {
    const index = Math.floor((pos - tableStart) / cs);
    const cluster = tableStart + index * cs;
    const end = Math.min(cluster + cs, to);
    const at = index * g.l2EntryBytes;
    const hi = table.readUInt32BE(at);
    const lo = table.readUInt32BE(at + 4);
    if (hi & HI_COMPRESSED) {
      pushCompressed(t, hi, lo, cluster, pos, end, out);
    } else if (g.extendedL2) {
      mapSubclusters(
        t,
        hi,
        lo,
        table.readUInt32BE(at + 12),
        table.readUInt32BE(at + 8),
        cluster,
        pos,
        end,
        out,
      );
    } else if (lo & LO_ZERO_FLAG) {
      // A stale offset behind the flag (QEMU's ZERO_ALLOC) is never read, but QEMU still
      // checks it, so a misaligned one is corrupt here too.
      if ((hi & HI_OFFSET_MASK) !== 0 || (lo & LO_OFFSET_MASK) !== 0) hostCluster(g, hi, lo, cluster);
      pushRun(out, { kind: 'zero', offset: pos, length: end - pos });
    } else {
      const host = standardOffset(g, hi, lo, cluster);
      if (host === undefined) pushRun(out, { kind: 'unallocated', offset: pos, length: end - pos });
      else pushData(t, host + (pos - cluster), pos, end - pos, out);
    }
    pos = end;
  }
}

/** Host offset of a standard descriptor, undefined when the cluster is unallocated. */
function standardOffset(g: Geometry, hi: number, lo: number, cluster: number): number | undefined {
  const hiOff = hi & HI_OFFSET_MASK;
  const loOff = (lo & LO_OFFSET_MASK) >>> 0;
  // Offset 0 means unallocated, except with an external data file where a COPIED entry
  // at 0 is guest cluster 0 (QEMU qcow2_get_cluster_type()).
  if (hiOff === 0 && loOff === 0 && !(g.dataFile && hi & HI_COPIED)) return undefined;
  return hostCluster(g, hi, lo, cluster);
}

function hostCluster(g: Geometry, hi: number, lo: number, cluster: number): number {
  const hiOff = hi & HI_OFFSET_MASK;
  if (hiOff > HI_SAFE_LIMIT) {
    throw corrupt(
      g.file,
      'l2_entry',
      `data cluster offset beyond 2^53 for guest offset ${cluster}`,
      hiOff * 2 ** 32,
    );
  }
  const host = hiOff * 2 ** 32 + ((lo & LO_OFFSET_MASK) >>> 0);
  if (host % g.clusterSize !== 0) {
    throw corrupt(g.file, 'l2_entry', `data cluster offset ${host} is not cluster aligned`, host, {
      guest: cluster,
    });
  }
  if (g.dataFile && host !== cluster) {
    throw corrupt(
      g.file,
      'l2_entry',
      `external data file offset ${host} differs from guest offset ${cluster}`,
      host,
      {
        guest: cluster,
      },
    );
  }
  return host;
}

/** A data run: checked inside its file and clear of the image's own metadata. */
function pushData(t: Table, host: number, offset: number, length: number, out: Run[]): void {
  const g = t.g;
  if (host + length > g.dataSize) {
    throw pastEnd(g.file, 'l2_entry', `data for guest offset ${offset}`, host, length, g.dataSize);
  }
  if (!g.dataFile) checkOverlap(t, host, length, `data for guest offset ${offset}`);
  pushRun(out, { kind: 'data', offset, length, host });
}

function pushCompressed(
  t: Table,
  hi: number,
  lo: number,
  cluster: number,
  pos: number,
  end: number,
  out: Run[],
): void {
  const g = t.g;
  if (g.dataFile) {
    throw corrupt(
      g.file,
      'l2_entry',
      `compressed cluster at guest offset ${cluster} in an image with a data file`,
      cluster,
    );
  }
  // x = 62 - (cluster_bits - 8) bits of byte offset, then (cluster_bits - 8) bits of
  // "additional sectors"; only the hi half's bits x-32.. hold the count.
  const shift = 62 - (g.clusterBits - 8) - 32;
  const hiOff = hi & ((1 << shift) - 1);
  const sectors = ((hi >>> shift) & ((1 << (g.clusterBits - 8)) - 1)) + 1;
  if (hiOff > HI_SAFE_LIMIT) {
    throw corrupt(
      g.file,
      'l2_entry',
      `compressed cluster offset beyond 2^53 at guest offset ${cluster}`,
      hiOff,
    );
  }
  const host = hiOff * 2 ** 32 + lo;
  const first = host - (host % COMPRESSED_SECTOR);
  const stop = first + sectors * COMPRESSED_SECTOR;
  // The last sector may run past EOF (QEMU writes the compressed bytes, not whole
  // sectors): accept up to the end of the file's last sector and read what exists.
  const limit = Math.ceil(g.fileSize / COMPRESSED_SECTOR) * COMPRESSED_SECTOR;
  if (host >= g.fileSize || stop > limit) {
    throw pastEnd(
      g.file,
      'l2_entry',
      `compressed cluster for guest offset ${cluster}`,
      host,
      stop - host,
      g.fileSize,
    );
  }
  const size = Math.min(stop, g.fileSize) - host;
  checkOverlap(t, host, size, `compressed cluster for guest offset ${cluster}`);
  out.push({ kind: 'compressed', offset: pos, length: end - pos, cluster, host, size });
}

/** Extended L2: 32 subclusters, each allocated (data), zero, or unallocated. */
function mapSubclusters(
  t: Table,
  hi: number,
  lo: number,
  alloc: number,
  zero: number,
  cluster: number,
  pos: number,
  end: number,
  out: Run[],
): void {
  const g = t.g;
  const host = standardOffset(g, hi, lo & ~LO_ZERO_FLAG, cluster);
  if (host === undefined && alloc !== 0) {
    throw corrupt(
      g.file,
      'l2_bitmap',
      `unallocated cluster at guest offset ${cluster} has allocated subclusters`,
      alloc,
    );
  }
  if ((alloc & zero) !== 0) {
    throw corrupt(
      g.file,
      'l2_bitmap',
      `subclusters both allocated and zero at guest offset ${cluster}`,
      alloc & zero,
    );
  }
  const sc = g.clusterSize / SUBCLUSTERS_PER_CLUSTER;
  let p = pos;
  while (p < end) {
    const i = Math.floor((p - cluster) / sc);
    const bit = 1 << i;
    // Extend over following subclusters of the same state.
    let j = i + 1;
    const state = alloc & bit ? 1 : zero & bit ? 2 : 0;
    while (j < SUBCLUSTERS_PER_CLUSTER) {
      const b = 1 << j;
      const s = alloc & b ? 1 : zero & b ? 2 : 0;
      if (s !== state) break;
      j++;
    }
    const stop = Math.min(cluster + j * sc, end);
    if (state === 1) pushData(t, (host as number) + (p - cluster), p, stop - p, out);
    else pushRun(out, { kind: state === 2 ? 'zero' : 'unallocated', offset: p, length: stop - p });
    p = stop;
  }
}

function checkOverlap(t: Table, host: number, length: number, what: string): void {
  const g = t.g;
  const hit = (start: number, stop: number) => host < stop && host + length > start;
  for (const [start, stop] of g.metadata) {
    if (hit(start, stop))
      throw corrupt(g.file, 'l2_entry', `${what} at ${host} overlaps image metadata at ${start}`, host);
  }
  if (hit(t.offset, t.offset + g.clusterSize)) {
    throw corrupt(g.file, 'l2_entry', `${what} at ${host} overlaps its own L2 table`, host);
  }
}

/** Appends a run, merging it into the previous one when both are contiguous. */
export function pushRun(out: Run[], run: Run): void {
  if (run.length === 0) return;
  const last = out[out.length - 1];
  if (last && last.kind === run.kind && last.offset + last.length === run.offset) {
    if (run.kind === 'data' && last.kind === 'data') {
      if (last.host + last.length === run.host) {
        last.length += run.length;
        return;
      }
    } else if (run.kind !== 'compressed') {
      last.length += run.length;
      return;
    }
  }
  out.push(run);
}
