/**
 * One sparse extent (KDMV hosted sparse, streamOptimized, or ESX COWD): the grain
 * directory loaded whole (capped), grain tables loaded lazily through a cache shared by
 * every extent of the layer (bounded by METADATA_CACHE_BYTES), compressed grains inflated
 * on libuv's thread pool with their output capped to one grain.
 */
import { constants as zlibConstants, inflate, inflateSync } from 'node:zlib';
import { DecompressionError, ImageCorruptError, ImageTruncatedError } from '../../../errors/index.js';
import { readPool } from '../../io/buffer-pool.js';
import type { ByteSource } from '../../io/byte-source.js';
import { METADATA_CACHE_BYTES } from '../../limits.js';
import { parseMarker, parseSparseHeader, type SparseGeometry, type SparseHeader } from './header.js';
import {
  COWD_GTES_PER_GT,
  FOOTER_TAIL_BYTES,
  GRAIN_MARKER_BYTES,
  GT_BATCH_BYTES,
  GTE_BYTES,
  MARKER_EOS,
  MARKER_FOOTER,
  MAX_COMPRESSED_FACTOR,
  SECTOR,
} from './layout.js';
import { grainRuns, tablesCovering, type GrainRun, type SparseMapParams } from './map.js';

/** Grain tables of every extent of one layer, least recently used evicted first. */
export class TableCache {
  readonly #tables = new Map<number, Uint32Array>();
  #bytes = 0;

  get(key: number): Uint32Array | undefined {
    const t = this.#tables.get(key);
    if (t) {
      this.#tables.delete(key);
      this.#tables.set(key, t);
    }
    return t;
  }

  set(key: number, table: Uint32Array): void {
    if (this.#tables.has(key)) return;
    this.#tables.set(key, table);
    this.#bytes += Math.max(table.byteLength, EMPTY_TABLE_COST);
    for (const [k, t] of this.#tables) {
      if (this.#bytes <= METADATA_CACHE_BYTES) break;
      this.#tables.delete(k);
      this.#bytes -= Math.max(t.byteLength, EMPTY_TABLE_COST);
    }
  }
}

/** Stands for an all-zero grain table in the cache (charged a nominal 64 bytes). */
const EMPTY_TABLE = new Uint32Array(0);
const EMPTY_TABLE_COST = 64;
const ZEROS = Buffer.alloc(COWD_GTES_PER_GT * GTE_BYTES);
function zeros(length: number): Buffer {
  return ZEROS.subarray(0, length);
}

/** Largest read gathering several compressed grains (8 MiB: two 4 MiB requests' worth). */
const SPAN_BYTES = 8 * 1024 * 1024;

/** Cache keys: extent id in the high bits, table index (< 2^24, the GD cap) in the low. */
const KEY_SHIFT = 2 ** 24;

/** Reads the header; for a VMware stream (gdOffset = GD_AT_END) the footer's copy wins. */
export async function readSparseHeader(src: ByteSource): Promise<SparseHeader> {
  const primary = parseSparseHeader(await src.read(0, SECTOR), src.size, src.name);
  if (!primary.gdAtEnd) return primary;
  if (src.size < SECTOR + FOOTER_TAIL_BYTES) {
    throw new ImageTruncatedError(`${src.name}: stream too short to hold its footer`, {
      format: 'vmdk',
      field: 'footer',
      size: src.size,
    });
  }
  const tail = await src.read(src.size - FOOTER_TAIL_BYTES, FOOTER_TAIL_BYTES);
  const footerMarker = parseMarker(tail, 0);
  const eos = parseMarker(tail, 2 * SECTOR);
  if (
    footerMarker.size !== 0 ||
    footerMarker.type !== MARKER_FOOTER ||
    eos.value !== 0n ||
    eos.size !== 0 ||
    eos.type !== MARKER_EOS
  ) {
    throw new ImageCorruptError(`${src.name}: stream footer or end-of-stream marker missing or invalid`, {
      format: 'vmdk',
      field: 'footer',
    });
  }
  const footer = parseSparseHeader(tail.subarray(SECTOR, 2 * SECTOR), src.size, src.name, { footer: true });
  // QEMU takes the footer whole; the descriptor location comes from the header it replaces.
  return Object.freeze({
    ...footer,
    descriptorOffset: primary.descriptorOffset,
    descriptorBytes: primary.descriptorBytes,
    gdAtEnd: true,
  });
}

export class SparseExtent {
  readonly bytes: number;
  readonly geometry: SparseGeometry;
  readonly #src: ByteSource;
  readonly #gd: Uint32Array;
  readonly #cache: TableCache;
  readonly #keyBase: number;
  readonly #p: SparseMapParams;
  readonly #gtBytes: number;
  readonly #pending = new Map<number, Promise<Uint32Array>>();

  private constructor(src: ByteSource, g: SparseGeometry, gd: Uint32Array, cache: TableCache, id: number) {
    this.#src = src;
    this.geometry = g;
    this.#gd = gd;
    this.#cache = cache;
    this.#keyBase = id * KEY_SHIFT;
    this.bytes = g.capacitySectors * SECTOR;
    this.#gtBytes = g.gtesPerGt * GTE_BYTES;
    this.#p = Object.freeze({
      source: src.name,
      capacityBytes: this.bytes,
      grainBytes: g.grainSectors * SECTOR,
      gtesPerGt: g.gtesPerGt,
      compressed: g.compressed,
      markers: g.markers,
      zeroGrain: g.zeroGrain,
      fileSize: src.size,
    });
  }

  /** `id` must be unique among the extents sharing `cache`. */
  static async open(
    src: ByteSource,
    g: SparseGeometry,
    cache: TableCache,
    id: number,
  ): Promise<SparseExtent> {
    const raw = g.gdEntries > 0 ? await src.read(g.gdOffset, g.gdEntries * GTE_BYTES) : Buffer.alloc(0);
    const gd = new Uint32Array(g.gdEntries);
    const gtBytes = g.gtesPerGt * GTE_BYTES;
    for (let i = 0; i < gd.length; i++) {
      const sector = raw.readUInt32LE(i * GTE_BYTES);
      if (sector !== 0 && sector * SECTOR + gtBytes > src.size) {
        throw new ImageTruncatedError(
          `${src.name}: grain table ${i} at sector ${sector} lies beyond the end of the file`,
          { format: 'vmdk', field: 'grain directory entry', index: i, value: sector, size: src.size },
        );
      }
      gd[i] = sector;
    }
    return new SparseExtent(src, g, gd, cache, id);
  }

  get grainBytes(): number {
    return this.#p.grainBytes;
  }

  async map(offset: number, length: number): Promise<GrainRun[]> {
    const tables = await this.#tables(offset, length);
    return grainRuns(this.#p, offset, length, (gt) => {
      const t = tables.get(gt);
      return t === EMPTY_TABLE ? undefined : t;
    });
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const runs = await this.map(offset, length);
    const only = runs[0];
    if (runs.length === 1 && only && only.kind === 'data')
      return this.#src.read(only.fileOffset as number, length);
    // Every run overwrites its whole range, so the buffer need not be zero-filled.
    const out = Buffer.allocUnsafe(length);
    await this.#fill(runs, offset, out);
    return out;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    await this.#fill(await this.map(offset, target.length), offset, target);
  }

  async #fill(runs: GrainRun[], offset: number, out: Buffer): Promise<void> {
    const jobs: Promise<void>[] = [];
    const compressed: GrainRun[] = [];
    for (const r of runs) {
      const at = r.offset - offset;
      if (r.kind === 'unallocated' || r.kind === 'zero') {
        out.fill(0, at, at + r.length);
      } else if (r.kind === 'data') {
        const into = out.subarray(at, at + r.length);
        const file = r.fileOffset as number;
        jobs.push(
          this.#src.readInto
            ? this.#src.readInto(file, into)
            : this.#src.read(file, r.length).then((b) => void b.copy(into)),
        );
      } else if (r.kind === 'compressed') {
        compressed.push(r);
      }
    }
    if (compressed.length > 0) jobs.push(this.#readCompressed(compressed, out, offset));
    await Promise.all(jobs);
  }

  /** The grain tables covering a range, keyed by table index (absent = no table). */
  async #tables(offset: number, length: number): Promise<Map<number, Uint32Array>> {
    const [first, last] = tablesCovering(this.#p, offset, length);
    const found = new Map<number, Uint32Array>();
    const waits: Array<Promise<void>> = [];
    let batch: number[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const gts = batch;
      batch = [];
      const loading = this.#loadBatch(gts);
      gts.forEach((gt, i) => {
        const one = loading.then((ts) => ts[i] as Uint32Array);
        one.catch(() => {});
        this.#pending.set(gt, one);
        waits.push(one.then((t) => void found.set(gt, t)));
      });
      void loading.finally(() => gts.forEach((gt) => this.#pending.delete(gt))).catch(() => {});
    };
    const sectorsPerGt = this.#gtBytes / SECTOR;
    for (let gt = first; gt <= last && gt < this.#gd.length; gt++) {
      const sector = this.#gd[gt] as number;
      if (sector === 0) continue;
      const cached = this.#cache.get(this.#keyBase + gt);
      if (cached) {
        found.set(gt, cached);
        continue;
      }
      const pending = this.#pending.get(gt);
      if (pending) {
        waits.push(pending.then((t) => void found.set(gt, t)));
        continue;
      }
      const prev = batch[batch.length - 1];
      const contiguous = prev !== undefined && (this.#gd[prev] as number) + sectorsPerGt === sector;
      if (!contiguous || (batch.length + 1) * this.#gtBytes > GT_BATCH_BYTES) flush();
      batch.push(gt);
    }
    flush();
    await Promise.all(waits);
    return found;
  }

  /** Reads tables that are contiguous in the file with one read. */
  async #loadBatch(gts: number[]): Promise<Uint32Array[]> {
    const start = (this.#gd[gts[0] as number] as number) * SECTOR;
    const raw = await this.#src.read(start, gts.length * this.#gtBytes);
    return gts.map((gt, i) => {
      const base = i * this.#gtBytes;
      // Pre-allocated but empty tables (most of a fresh monolithicSparse) share one marker:
      // no memory per table, and their span maps as one unallocated run.
      let t = EMPTY_TABLE;
      if (!raw.subarray(base, base + this.#gtBytes).equals(zeros(this.#gtBytes))) {
        t = new Uint32Array(this.#p.gtesPerGt);
        for (let e = 0; e < t.length; e++) t[e] = raw.readUInt32LE(base + e * GTE_BYTES);
      }
      this.#cache.set(this.#keyBase + gt, t);
      return t;
    });
  }

  /**
   * Compressed grains: markers close together in the file are fetched with one read (a
   * grain's payload ends where the next grain starts), then inflated concurrently.
   */
  async #readCompressed(runs: GrainRun[], out: Buffer, base: number): Promise<void> {
    const p = this.#p;
    const sorted = [...runs].sort((a, b) => (a.grainOffset as number) - (b.grainOffset as number));
    const maxPayload = MAX_COMPRESSED_FACTOR * p.grainBytes;
    const spans: Array<{ start: number; end: number; runs: GrainRun[] }> = [];
    for (const r of sorted) {
      const at = r.grainOffset as number;
      const end = Math.min(p.fileSize, at + (p.markers ? SECTOR : maxPayload));
      const cur = spans[spans.length - 1];
      if (p.markers && cur && at - cur.end <= maxPayload && end - cur.start <= SPAN_BYTES) {
        cur.end = Math.max(cur.end, end);
        cur.runs.push(r);
      } else {
        spans.push({ start: at, end, runs: [r] });
      }
    }
    await Promise.all(
      spans.map(async (span) => {
        // Spans are at most SPAN_BYTES: one pooled size, so the buffers (and their pages) are reused.
        const length = span.end - span.start;
        const whole = readPool.acquire(Math.max(SPAN_BYTES, length));
        try {
          const buf = whole.subarray(0, length);
          if (this.#src.readInto) await this.#src.readInto(span.start, buf);
          else (await this.#src.read(span.start, buf.length)).copy(buf);
          await Promise.all(span.runs.map((r) => this.#inflateGrain(r, buf, span.start, out, base)));
        } finally {
          readPool.release(whole);
        }
      }),
    );
  }

  async #inflateGrain(
    r: GrainRun,
    span: Buffer,
    spanStart: number,
    out: Buffer,
    base: number,
  ): Promise<void> {
    const p = this.#p;
    const grain = r.grain as number;
    const at = r.grainOffset as number;
    const rel = at - spanStart;
    let payload: Buffer;
    if (p.markers) {
      const m = parseMarker(span.subarray(rel, rel + GRAIN_MARKER_BYTES));
      const lba = BigInt(grain) * BigInt(p.grainBytes / SECTOR);
      if (m.value !== lba) {
        throw new ImageCorruptError(
          `${p.source}: grain ${grain} marker says lba ${m.value}, expected ${lba}`,
          {
            format: 'vmdk',
            field: 'grain marker lba',
            grain,
            value: m.value.toString(),
          },
        );
      }
      if (m.size === 0 || m.size > MAX_COMPRESSED_FACTOR * p.grainBytes) {
        throw new ImageCorruptError(`${p.source}: grain ${grain} marker size ${m.size} is invalid`, {
          format: 'vmdk',
          field: 'grain marker size',
          grain,
          value: m.size,
          limit: MAX_COMPRESSED_FACTOR * p.grainBytes,
        });
      }
      const from = at + GRAIN_MARKER_BYTES;
      if (from + m.size > p.fileSize) {
        throw new ImageTruncatedError(
          `${p.source}: compressed grain ${grain} extends past the end of the file`,
          {
            format: 'vmdk',
            field: 'grain marker size',
            grain,
            size: p.fileSize,
          },
        );
      }
      payload =
        from + m.size <= spanStart + span.length
          ? span.subarray(from - spanStart, from - spanStart + m.size)
          : await this.#src.read(from, m.size);
    } else {
      payload = span.subarray(rel);
    }
    const data = await inflateGrain(payload, p.grainBytes, p.source, grain);
    const grainStart = grain * p.grainBytes;
    const needed = Math.min(p.grainBytes, p.capacityBytes - grainStart);
    if (data.length < needed) {
      throw new DecompressionError(
        `${p.source}: grain ${grain} inflates to ${data.length} bytes, not ${needed}`,
        {
          format: 'vmdk',
          grain,
          value: data.length,
          expected: needed,
        },
      );
    }
    data.copy(out, r.offset - base, r.offset - grainStart, r.offset - grainStart + r.length);
  }
}

const MIN_CHUNK = 64; // zlib.constants.Z_MIN_CHUNK

/**
 * A payload this close to a whole grain is (mostly) stored deflate blocks: inflating it is
 * a copy plus zlib's SIMD Adler-32, cheaper on the main thread than a thread-pool round trip.
 */
const STORED_RATIO = 0.9;

/** zlib (RFC 1950) inflate, output capped to one grain. */
function inflateGrain(payload: Buffer, cap: number, source: string, grain: number): Promise<Buffer> {
  const fail = (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    return new DecompressionError(`${source}: grain ${grain} does not inflate (${e.code ?? e.message})`, {
      format: 'vmdk',
      grain,
      reason: e.code ?? e.message,
      limit: cap,
    });
  };
  // chunkSize = one grain: the output comes out as one chunk (no concatenation), which
  // makes Node's zlib calls 2-4x faster on 64 KiB grains; Z_FINISH: one call, not two.
  const options = {
    maxOutputLength: cap,
    chunkSize: Math.max(cap, MIN_CHUNK),
    flush: zlibConstants.Z_FINISH,
  };
  if (payload.length >= cap * STORED_RATIO) {
    try {
      return Promise.resolve(inflateSync(payload, options));
    } catch (err) {
      return Promise.reject(fail(err));
    }
  }
  return new Promise((resolve, reject) => {
    inflate(payload, options, (err, out) => (err ? reject(fail(err)) : resolve(out)));
  });
}
