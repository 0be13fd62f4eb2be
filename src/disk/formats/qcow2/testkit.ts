/**
 * Test support (used by *.test.ts only): builds small qcow2 images in memory, with any
 * mix of data, zero, compressed and extended-L2 clusters, backing and data-file names,
 * and returns where each table and cluster landed so tests can patch them.
 *
 *   cluster 0  header + extensions + backing name
 *   cluster 1  refcount table (left empty: readers never use refcounts)
 *   cluster 2… L1 table, then one L2 table per mapped L1 entry, then data clusters,
 *              then compressed clusters packed back to back
 */
import { deflateRawSync } from 'node:zlib';
import zstd from 'zstd-napi/binding.js';
import { MemorySource } from '../../io/byte-source.js';
import type { ByteSource } from '../../io/byte-source.js';
import type { OpenContext } from '../../layer.js';
import { ReferenceNotFoundError } from '../../../errors/index.js';
import { EXT, HDR, HI_COMPRESSED, HI_COPIED, MAGIC } from './layout.js';

export interface ClusterSpec {
  /** Guest cluster index. */
  readonly index: number;
  readonly kind: 'data' | 'zero' | 'zero-alloc' | 'compressed';
  /** Cluster content (data, compressed, the stale bytes of zero-alloc); default 0x5a fill. */
  readonly data?: Buffer;
  /** Extended L2 bitmaps (data: allocation defaults to all 32 subclusters). */
  readonly alloc?: number;
  readonly zero?: number;
}

export interface BuildSpec {
  readonly virtualSize: number;
  readonly version?: 2 | 3;
  readonly clusterBits?: number;
  readonly extendedL2?: boolean;
  readonly compression?: 'zlib' | 'zstd';
  readonly backingFile?: string;
  readonly backingFormat?: string;
  readonly dataFile?: string;
  readonly dataFileRaw?: boolean;
  /** Extra bits OR-ed into the feature fields. */
  readonly incompatible?: bigint;
  readonly compatible?: bigint;
  readonly autoclear?: bigint;
  readonly cryptMethod?: number;
  readonly extensions?: readonly { type: number; data: Buffer }[];
  readonly clusters?: readonly ClusterSpec[];
}

export interface Built {
  readonly image: Buffer;
  /** The external data file's bytes (virtual size), when spec.dataFile is set. */
  readonly data?: Buffer;
  readonly clusterSize: number;
  readonly l1Offset: number;
  readonly refcountTableOffset: number;
  /** L1 index -> L2 table offset. */
  readonly l2Offsets: ReadonlyMap<number, number>;
  /** Guest cluster index -> offset of its L2 entry in the image. */
  readonly entryOffsets: ReadonlyMap<number, number>;
  /** Guest cluster index -> host offset of its data (or compressed bytes). */
  readonly hostOffsets: ReadonlyMap<number, number>;
  /** The guest disk as a reader must return it (no backing file). */
  readonly expected: Buffer;
}

export function fill(cs: number, seed: number): Buffer {
  const b = Buffer.alloc(cs);
  for (let i = 0; i < cs; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

export function buildQcow2(spec: BuildSpec): Built {
  const version = spec.version ?? 3;
  const bits = spec.clusterBits ?? 16;
  const cs = 2 ** bits;
  const ext = spec.extendedL2 ?? false;
  const entryBytes = ext ? 16 : 8;
  const span = cs * (cs / entryBytes);
  const l1Size = Math.ceil(spec.virtualSize / span);
  const clusters = [...(spec.clusters ?? [])].sort((a, b) => a.index - b.index);
  const l1Offset = 2 * cs;
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / cs));
  let next = l1Offset + l1Clusters * cs;
  const l2Offsets = new Map<number, number>();
  for (const c of clusters) {
    const t = Math.floor((c.index * cs) / span);
    if (!l2Offsets.has(t)) {
      l2Offsets.set(t, next);
      next += cs;
    }
  }
  const parts: { at: number; bytes: Buffer }[] = [];
  const entryOffsets = new Map<number, number>();
  const hostOffsets = new Map<number, number>();
  const expected = Buffer.alloc(spec.virtualSize);
  const dataFile = spec.dataFile !== undefined ? Buffer.alloc(spec.virtualSize) : undefined;
  const entries: { at: number; hi: number; lo: number; bitmap?: [number, number] }[] = [];
  const compressed: ClusterSpec[] = [];
  for (const c of clusters) {
    const t = Math.floor((c.index * cs) / span);
    const at = (l2Offsets.get(t) as number) + (c.index - (t * span) / cs) * entryBytes;
    entryOffsets.set(c.index, at);
    const content = c.data ?? fill(cs, c.index);
    const guest = c.index * cs;
    if (c.kind === 'compressed') {
      compressed.push(c);
      continue;
    }
    if (c.kind === 'zero' && !ext) {
      entries.push({ at, hi: 0, lo: 1 });
      continue;
    }
    let host: number;
    if (dataFile) {
      host = guest;
      content.copy(dataFile, guest, 0, Math.min(cs, spec.virtualSize - guest));
    } else {
      host = next;
      next += cs;
      parts.push({ at: host, bytes: content });
    }
    hostOffsets.set(c.index, host);
    const hi = (HI_COPIED | Math.floor(host / 2 ** 32)) >>> 0;
    const lo = (host % 2 ** 32) + (c.kind === 'zero-alloc' && !ext ? 1 : 0);
    const alloc = c.alloc ?? (c.kind === 'data' ? 0xffffffff : 0);
    const zero = c.zero ?? (c.kind === 'data' ? 0 : 0xffffffff);
    entries.push({ at, hi, lo, ...(ext ? { bitmap: [zero >>> 0, alloc >>> 0] as [number, number] } : {}) });
    const sc = cs / 32;
    for (let s = 0; s < (ext ? 32 : 1); s++) {
      const len = ext ? sc : cs;
      const on = ext ? ((alloc >>> s) & 1) === 1 : c.kind === 'data';
      const from = guest + s * len;
      if (on && from < spec.virtualSize) {
        content.copy(expected, from, s * len, Math.min(s * len + len, spec.virtualSize - guest));
      }
    }
  }
  // Compressed clusters, packed byte after byte, as QEMU does.
  for (const c of compressed) {
    const content = c.data ?? fill(cs, c.index);
    const packed =
      spec.compression === 'zstd'
        ? zstdCompress(content)
        : deflateRawSync(content, { windowBits: 12, memLevel: 9 });
    const host = next;
    next += packed.length;
    parts.push({ at: host, bytes: packed });
    hostOffsets.set(c.index, host);
    const x = 62 - (bits - 8);
    const extra = Math.floor((host + packed.length - 1) / 512) - Math.floor(host / 512);
    const hi = (HI_COMPRESSED | (extra << (x - 32)) | Math.floor(host / 2 ** 32)) >>> 0;
    entries.push({ at: entryOffsets.get(c.index) as number, hi, lo: host % 2 ** 32 });
    const guest = c.index * cs;
    content.copy(expected, guest, 0, Math.min(cs, spec.virtualSize - guest));
  }
  const image = Buffer.alloc(next);
  image.set(header(spec, version, bits, l1Size, l1Offset, cs));
  for (const [t, off] of l2Offsets) image.writeBigUInt64BE((1n << 63n) | BigInt(off), l1Offset + t * 8);
  for (const e of entries) {
    image.writeUInt32BE(e.hi, e.at);
    image.writeUInt32BE(e.lo, e.at + 4);
    if (e.bitmap) {
      image.writeUInt32BE(e.bitmap[0], e.at + 8);
      image.writeUInt32BE(e.bitmap[1], e.at + 12);
    }
  }
  for (const p of parts) p.bytes.copy(image, p.at);
  return {
    image,
    ...(dataFile ? { data: dataFile } : {}),
    clusterSize: cs,
    l1Offset,
    refcountTableOffset: cs,
    l2Offsets,
    entryOffsets,
    hostOffsets,
    expected,
  };
}

function header(
  spec: BuildSpec,
  version: number,
  bits: number,
  l1Size: number,
  l1Offset: number,
  cs: number,
) {
  const h = Buffer.alloc(cs);
  h.writeUInt32BE(MAGIC, HDR.magic);
  h.writeUInt32BE(version, HDR.version);
  h.writeUInt32BE(bits, HDR.clusterBits);
  h.writeBigUInt64BE(BigInt(spec.virtualSize), HDR.size);
  h.writeUInt32BE(spec.cryptMethod ?? 0, HDR.cryptMethod);
  h.writeUInt32BE(l1Size, HDR.l1Size);
  h.writeBigUInt64BE(BigInt(l1Offset), HDR.l1TableOffset);
  h.writeBigUInt64BE(BigInt(cs), HDR.refcountTableOffset);
  h.writeUInt32BE(1, HDR.refcountTableClusters);
  let pos = 72;
  if (version === 3) {
    let incompat = spec.incompatible ?? 0n;
    if (spec.extendedL2) incompat |= 1n << 4n;
    if (spec.compression === 'zstd') incompat |= 1n << 3n;
    if (spec.dataFile !== undefined) incompat |= 1n << 2n;
    h.writeBigUInt64BE(incompat, HDR.incompatibleFeatures);
    h.writeBigUInt64BE(spec.compatible ?? 0n, HDR.compatibleFeatures);
    h.writeBigUInt64BE((spec.autoclear ?? 0n) | (spec.dataFileRaw ? 2n : 0n), HDR.autoclearFeatures);
    h.writeUInt32BE(4, HDR.refcountOrder);
    h.writeUInt32BE(112, HDR.headerLength);
    h[HDR.compressionType] = spec.compression === 'zstd' ? 1 : 0;
    pos = 112;
  }
  const exts = [...(spec.extensions ?? [])];
  if (spec.backingFormat !== undefined)
    exts.push({ type: EXT.backingFormat, data: Buffer.from(spec.backingFormat) });
  if (spec.dataFile !== undefined) exts.push({ type: EXT.dataFile, data: Buffer.from(spec.dataFile) });
  for (const e of exts) {
    h.writeUInt32BE(e.type, pos);
    h.writeUInt32BE(e.data.length, pos + 4);
    e.data.copy(h, pos + 8);
    pos += 8 + Math.ceil(e.data.length / 8) * 8;
  }
  pos += 8; // end-of-extensions marker (zeros)
  if (spec.backingFile !== undefined) {
    h.writeBigUInt64BE(BigInt(pos), HDR.backingFileOffset);
    h.writeUInt32BE(Buffer.byteLength(spec.backingFile), HDR.backingFileSize);
    h.write(spec.backingFile, pos);
  }
  return h;
}

function zstdCompress(src: Buffer): Buffer {
  const dst = Buffer.alloc(zstd.compressBound(src.length));
  return dst.subarray(0, zstd.compress(dst, src, 3));
}

/** An OpenContext serving named in-memory files (data files); anything else is missing. */
export function memoryContext(files: Record<string, Buffer> = {}): OpenContext & { opened: string[] } {
  const opened: string[] = [];
  return {
    opened,
    async openReference(name: string): Promise<ByteSource> {
      opened.push(name);
      const f = files[name];
      if (!f) throw new ReferenceNotFoundError(`referenced file ${name} not found`, { reference: name });
      return new MemorySource(f, name);
    },
  };
}
