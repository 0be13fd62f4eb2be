/**
 * The qcow2 DiskLayer: the only qcow2 code that does I/O. It reads the first cluster and
 * the used part of the L1 table at open, then loads L2 tables on demand through a
 * bounded cache (limits.METADATA_CACHE_BYTES), so memory stays flat whatever the virtual
 * size. A read maps its range into runs (map.ts), reads each contiguous data run with one
 * source read, inflates compressed clusters in parallel and zero-fills the rest.
 */
import type { ByteSource } from '../../io/byte-source.js';
import { pushMerged, type LayerExtent } from '../../extent.js';
import type { DiskLayer, LayerInfo, OpenContext } from '../../layer.js';
import { METADATA_CACHE_BYTES } from '../../limits.js';
import { TableCache } from './cache.js';
import { createInflater, type ClusterInflater } from './decompress.js';
import { corrupt, pastEnd } from './errors.js';
import { HEADER_PROBE_BYTES, parseHeader, peekClusterBits, type Qcow2Header } from './header.js';
import { COMPRESSION_ZSTD, HI_OFFSET_MASK, HI_SAFE_LIMIT, L1_ENTRY_BYTES, LO_OFFSET_MASK } from './layout.js';
import { mapTable, tableSpan, type Geometry, type Run } from './map.js';

/** L2 tables loaded concurrently while mapping a long range. */
const TABLE_BATCH = 64;
/** Compressed clusters closer than this in the file are fetched with one read. */
const COMPRESSED_READ_GAP = 64 * 1024;
/** Largest single read gathering several compressed clusters. */
const COMPRESSED_READ_MAX = 8 * 1024 * 1024;

type CompressedRun = Extract<Run, { kind: 'compressed' }>;

export async function openQcow2(src: ByteSource, ctx: OpenContext): Promise<DiskLayer> {
  const probe = await src.read(0, Math.min(src.size, HEADER_PROBE_BYTES));
  const bits = peekClusterBits(probe, src.name);
  const cluster0 = await src.read(0, Math.min(src.size, 2 ** bits));
  const hdr = parseHeader(cluster0, src.size, src.name);
  let dataSource: ByteSource | undefined;
  try {
    if (hdr.dataFile !== undefined) dataSource = await ctx.openReference(hdr.dataFile, 'data-file');
    const l1 = hdr.l1Used > 0 ? await src.read(hdr.l1Offset, hdr.l1Used * L1_ENTRY_BYTES) : Buffer.alloc(0);
    return new Qcow2Layer(src, hdr, l1, dataSource);
  } catch (err) {
    await dataSource?.close();
    throw err;
  }
}

class Qcow2Layer implements DiskLayer {
  readonly info: LayerInfo;
  readonly #src: ByteSource;
  readonly #dataSource: ByteSource | undefined;
  readonly #l1: Buffer;
  readonly #g: Geometry;
  readonly #tables: TableCache;
  readonly #inflater: ClusterInflater;
  /** The last inflated cluster: reads that split a large cluster inflate it once. */
  #lastInflated: { host: number; size: number; data: Promise<Buffer> } | undefined;

  constructor(src: ByteSource, hdr: Qcow2Header, l1: Buffer, dataSource: ByteSource | undefined) {
    this.#src = src;
    this.#dataSource = dataSource;
    this.#l1 = l1;
    const cs = hdr.clusterSize;
    const metadata: [number, number][] = [[0, cs]];
    // Whole clusters: nothing else may live in the rest of the L1 table's last cluster.
    const l1Clusters = Math.ceil((hdr.l1Size * L1_ENTRY_BYTES) / cs);
    if (hdr.l1Size > 0) metadata.push([hdr.l1Offset, hdr.l1Offset + l1Clusters * cs]);
    if (hdr.refcountTableBytes > 0) {
      metadata.push([hdr.refcountTableOffset, hdr.refcountTableOffset + hdr.refcountTableBytes]);
    }
    this.#g = Object.freeze({
      file: src.name,
      clusterBits: hdr.clusterBits,
      clusterSize: cs,
      l2Entries: hdr.l2Entries,
      l2EntryBytes: hdr.l2EntryBytes,
      extendedL2: hdr.extendedL2,
      dataFile: dataSource !== undefined,
      dataSize: (dataSource ?? src).size,
      fileSize: src.size,
      metadata,
    });
    this.#tables = new TableCache(Math.floor(METADATA_CACHE_BYTES / cs), (off) => src.read(off, cs));
    this.#inflater = createInflater(hdr.compressionType, cs);
    this.info = Object.freeze({
      format: 'qcow2',
      subformat: `v${hdr.version}`,
      virtualSize: hdr.virtualSize,
      clusterSize: cs,
      fileSize: src.size + (dataSource?.size ?? 0),
      ...(hdr.backingFile !== undefined
        ? {
            parent: Object.freeze({
              name: hdr.backingFile,
              ...(hdr.backingFormat ? { format: hdr.backingFormat } : {}),
            }),
          }
        : {}),
      files: Object.freeze(hdr.dataFile !== undefined ? [hdr.dataFile] : []),
      warnings: Object.freeze(warningsFor(hdr)),
      details: Object.freeze(detailsFor(hdr)),
    });
  }

  async map(offset: number, length: number): Promise<LayerExtent[]> {
    const out: LayerExtent[] = [];
    const withFileOffset = !this.#g.dataFile;
    // Runs are turned into extents one L2 table at a time, so a long range of small
    // compressed clusters never holds one run object per cluster.
    await this.#runs(offset, length, (runs) => {
      for (const r of runs) {
        if (r.kind === 'data') {
          pushMerged(out, {
            offset: r.offset,
            length: r.length,
            kind: 'data',
            ...(withFileOffset ? { fileOffset: r.host } : {}),
          });
        } else {
          pushMerged(out, { offset: r.offset, length: r.length, kind: r.kind });
        }
      }
    });
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const runs = await this.#runs(offset, length);
    const data = this.#dataSource ?? this.#src;
    const only = runs.length === 1 ? runs[0] : undefined;
    if (only?.kind === 'data') return data.read(only.host, only.length);
    if (only && only.kind !== 'compressed') return Buffer.alloc(length);
    const out = Buffer.allocUnsafe(length);
    await this.#fill(runs, offset, out);
    return out;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    await this.#fill(await this.#runs(offset, target.length), offset, target);
  }

  /** Writes the runs of guest [offset, offset + out.length) into `out`. */
  async #fill(runs: Run[], offset: number, out: Buffer): Promise<void> {
    const data = this.#dataSource ?? this.#src;
    const jobs: Promise<void>[] = [];
    const compressed: CompressedRun[] = [];
    for (const r of runs) {
      const at = r.offset - offset;
      if (r.kind === 'data') {
        const into = out.subarray(at, at + r.length);
        jobs.push(
          data.readInto
            ? data.readInto(r.host, into)
            : data.read(r.host, r.length).then((b) => void b.copy(into)),
        );
      } else if (r.kind === 'compressed') {
        compressed.push(r);
      } else {
        out.fill(0, at, at + r.length);
      }
    }
    if (compressed.length > 0) jobs.push(this.#readCompressed(compressed, out, offset));
    await Promise.all(jobs);
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([this.#src.close(), this.#dataSource?.close()]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * Runs of guest [offset, offset+length), L2 tables loaded a batch at a time. With
   * `visit`, each table's runs are handed over and dropped (the result is then empty).
   */
  async #runs(offset: number, length: number, visit?: (runs: Run[]) => void): Promise<Run[]> {
    const out: Run[] = [];
    if (length <= 0) return out;
    const span = tableSpan(this.#g);
    const end = offset + length;
    const first = Math.floor(offset / span);
    const last = Math.floor((end - 1) / span);
    for (let t = first; t <= last; t += TABLE_BATCH) {
      const stop = Math.min(last, t + TABLE_BATCH - 1);
      const loads: Promise<{ table: Buffer; offset: number } | undefined>[] = [];
      for (let i = t; i <= stop; i++) loads.push(this.#table(i));
      const tables = await Promise.all(loads);
      tables.forEach((table, k) => {
        const i = t + k;
        mapTable(this.#g, table, i, Math.max(offset, i * span), Math.min(end, (i + 1) * span), out);
        if (visit) {
          visit(out);
          out.length = 0;
        }
      });
    }
    return out;
  }

  /** L2 table `index` and its offset, undefined when its L1 entry is 0; the entry is checked first. */
  #table(index: number): Promise<{ table: Buffer; offset: number } | undefined> {
    const g = this.#g;
    const hi = this.#l1.readUInt32BE(index * L1_ENTRY_BYTES);
    const lo = this.#l1.readUInt32BE(index * L1_ENTRY_BYTES + 4);
    const hiOff = hi & HI_OFFSET_MASK;
    const loOff = (lo & LO_OFFSET_MASK) >>> 0;
    if (hiOff === 0 && loOff === 0) return Promise.resolve(undefined);
    if (hiOff > HI_SAFE_LIMIT) {
      throw corrupt(g.file, 'l1_entry', `L2 table offset beyond 2^53 (L1 index ${index})`, hiOff * 2 ** 32);
    }
    const off = hiOff * 2 ** 32 + loOff;
    if (off % g.clusterSize !== 0) {
      throw corrupt(
        g.file,
        'l1_entry',
        `L2 table offset ${off} is not cluster aligned (L1 index ${index})`,
        off,
      );
    }
    if (off + g.clusterSize > g.fileSize) {
      throw pastEnd(g.file, 'l1_entry', `L2 table (L1 index ${index})`, off, g.clusterSize, g.fileSize);
    }
    for (const [start, stop] of g.metadata) {
      if (off < stop && off + g.clusterSize > start) {
        throw corrupt(
          g.file,
          'l1_entry',
          `L2 table at ${off} overlaps the header or a table (L1 index ${index})`,
          off,
        );
      }
    }
    return this.#tables.get(off).then((table) => ({ table, offset: off }));
  }

  /** Fetches compressed clusters (nearby ones with one read), inflates, copies into `out`. */
  async #readCompressed(runs: CompressedRun[], out: Buffer, base: number): Promise<void> {
    const jobs: Promise<void>[] = [];
    let group: CompressedRun[] = [];
    let start = 0;
    let stop = 0;
    const flush = () => {
      if (group.length === 0) return;
      const members = group;
      const at = start;
      const bytes = this.#src.read(start, stop - start);
      bytes.catch(() => {}); // surfaced through the jobs below
      for (const r of members) {
        const input = bytes.then((b) => b.subarray(r.host - at, r.host - at + r.size));
        jobs.push(
          this.#inflate(r, input).then(
            (c) => void c.copy(out, r.offset - base, r.offset - r.cluster, r.offset - r.cluster + r.length),
          ),
        );
      }
      group = [];
    };
    for (const r of runs) {
      const fits =
        group.length > 0 &&
        r.host >= start &&
        r.host <= stop + COMPRESSED_READ_GAP &&
        Math.max(stop, r.host + r.size) - start <= COMPRESSED_READ_MAX;
      if (!fits) {
        flush();
        start = r.host;
        stop = r.host;
      }
      group.push(r);
      stop = Math.max(stop, r.host + r.size);
    }
    flush();
    await Promise.all(jobs);
  }

  #inflate(r: CompressedRun, input: Promise<Buffer>): Promise<Buffer> {
    const last = this.#lastInflated;
    if (last && last.host === r.host && last.size === r.size) return last.data;
    const data = input.then((b) =>
      this.#inflater.inflate(b, { file: this.#g.file, guest: r.cluster, host: r.host }),
    );
    data.catch(() => {});
    this.#lastInflated = { host: r.host, size: r.size, data };
    return data;
  }
}

function warningsFor(hdr: Qcow2Header): string[] {
  const w: string[] = [];
  if (hdr.corrupt) {
    w.push('image is marked corrupt (incompatible bit 1); it is read as is, read-only, as QEMU allows');
  }
  if (hdr.dirty) {
    w.push('image was not closed cleanly (dirty bit); refcounts may be stale, which reading does not use');
  }
  if (hdr.backingFile !== undefined && hdr.backingFormat === undefined) {
    w.push('backing file format is not recorded in the image; it is detected from its content');
  }
  return w;
}

function detailsFor(hdr: Qcow2Header): Record<string, string | number | boolean> {
  return {
    version: hdr.version,
    refcountBits: 2 ** hdr.refcountOrder,
    snapshots: hdr.nbSnapshots,
    compressionType: hdr.compressionType === COMPRESSION_ZSTD ? 'zstd' : 'zlib',
    extendedL2: hdr.extendedL2,
    lazyRefcounts: hdr.lazyRefcounts,
    dirty: hdr.dirty,
    corrupt: hdr.corrupt,
    bitmaps: hdr.bitmaps,
    ...(hdr.backingFormatName !== undefined ? { backingFormat: hdr.backingFormatName } : {}),
    ...(hdr.dataFile !== undefined ? { dataFile: hdr.dataFile, dataFileRaw: hdr.dataFileRaw } : {}),
  };
}
