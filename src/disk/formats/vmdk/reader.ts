/**
 * The VMDK layer: a descriptor's extents laid end to end. Opens a hosted sparse file
 * (monolithicSparse / streamOptimized, descriptor embedded), an ESX COWD file, or a text
 * descriptor whose extents (sparse, flat, VMFS, ZERO) are opened through
 * `ctx.openReference(name, 'extent')`, so the engine's reference policy applies to each.
 * Parents are not opened here: the descriptor's parentFileNameHint and parentCID become
 * `info.parent`, and CID becomes `info.id`.
 */
import { ImageCorruptError, ImageTruncatedError, ImageUnsupportedError } from '../../../errors/index.js';
import { pushMerged, type LayerExtent } from '../../extent.js';
import type { ByteSource } from '../../io/byte-source.js';
import type { DiskLayer, LayerInfo, OpenContext, ParentReference } from '../../layer.js';
import { MAX_DESCRIPTOR_BYTES } from '../../limits.js';
import {
  descriptorText,
  formatCid,
  parseDescriptor,
  READABLE_CREATE_TYPES,
  type Descriptor,
  type DescriptorExtent,
} from './descriptor.js';
import { describeFlags, isCowdMagic, isSparseMagic, parseCowdHeader, type SparseGeometry } from './header.js';
import { CID_NONE, SECTOR } from './layout.js';
import type { GrainRun } from './map.js';
import { readSparseHeader, SparseExtent, TableCache } from './sparse.js';

/** What the layer needs from any extent (offsets relative to the extent). */
interface ExtentReader {
  readonly bytes: number;
  map(offset: number, length: number): Promise<GrainRun[]>;
  read(offset: number, length: number): Promise<Buffer>;
  readInto?(offset: number, target: Buffer): Promise<void>;
}

class FlatExtent implements ExtentReader {
  constructor(
    readonly bytes: number,
    readonly src: ByteSource,
    readonly fileOffset: number,
  ) {}
  async map(offset: number, length: number): Promise<GrainRun[]> {
    return [{ offset, length, kind: 'data', fileOffset: this.fileOffset + offset }];
  }
  read(offset: number, length: number): Promise<Buffer> {
    return this.src.read(this.fileOffset + offset, length);
  }
}

class ZeroExtent implements ExtentReader {
  constructor(readonly bytes: number) {}
  async map(offset: number, length: number): Promise<GrainRun[]> {
    return [{ offset, length, kind: 'zero' }];
  }
  async read(_offset: number, length: number): Promise<Buffer> {
    return Buffer.alloc(length);
  }
}

interface Placed {
  readonly start: number;
  readonly reader: ExtentReader;
  /** The extent lives in the layer's own file: `data` extents carry fileOffset. */
  readonly own: boolean;
}

class VmdkLayer implements DiskLayer {
  readonly info: LayerInfo;
  readonly #extents: readonly Placed[];
  readonly #sources: readonly ByteSource[];

  constructor(info: LayerInfo, extents: readonly Placed[], sources: readonly ByteSource[]) {
    this.info = info;
    this.#extents = extents;
    this.#sources = sources;
  }

  /** Index of the extent holding byte `offset` (binary search; extents are in order). */
  #find(offset: number): number {
    let lo = 0;
    let hi = this.#extents.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#extents[mid] as Placed).start <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async map(offset: number, length: number): Promise<LayerExtent[]> {
    const out: LayerExtent[] = [];
    const end = offset + length;
    for (let i = this.#find(offset), pos = offset; pos < end; i++) {
      const e = this.#extents[i] as Placed;
      const rel = pos - e.start;
      const n = Math.min(end, e.start + e.reader.bytes) - pos;
      for (const r of await e.reader.map(rel, n)) {
        const o = r.offset + e.start;
        if (r.kind === 'data' && e.own)
          pushMerged(out, { offset: o, length: r.length, kind: 'data', fileOffset: r.fileOffset as number });
        else pushMerged(out, { offset: o, length: r.length, kind: r.kind });
      }
      pos += n;
    }
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const i = this.#find(offset);
    const first = this.#extents[i] as Placed;
    if (offset + length <= first.start + first.reader.bytes)
      return first.reader.read(offset - first.start, length);
    const out = Buffer.alloc(length);
    const end = offset + length;
    const jobs: Promise<void>[] = [];
    for (let k = i, pos = offset; pos < end; k++) {
      const e = this.#extents[k] as Placed;
      const n = Math.min(end, e.start + e.reader.bytes) - pos;
      const at = pos - offset;
      jobs.push(e.reader.read(pos - e.start, n).then((b) => void b.copy(out, at)));
      pos += n;
    }
    await Promise.all(jobs);
    return out;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    const end = offset + target.length;
    const jobs: Promise<void>[] = [];
    for (let k = this.#find(offset), pos = offset; pos < end; k++) {
      const e = this.#extents[k] as Placed;
      const n = Math.min(end, e.start + e.reader.bytes) - pos;
      const into = target.subarray(pos - offset, pos - offset + n);
      jobs.push(
        e.reader.readInto
          ? e.reader.readInto(pos - e.start, into)
          : e.reader.read(pos - e.start, n).then((b) => void b.copy(into)),
      );
      pos += n;
    }
    await Promise.all(jobs);
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(this.#sources.map((s) => s.close()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/** Collects what goes into LayerInfo while extents are opened. */
interface Building {
  readonly src: ByteSource;
  readonly cache: TableCache;
  readonly extents: Placed[];
  /** Sources this layer opened besides `src`, by stored name. */
  readonly opened: Map<string, ByteSource>;
  readonly warnings: string[];
  readonly details: Record<string, string | number | boolean>;
}

export async function openVmdk(src: ByteSource, ctx: OpenContext): Promise<DiskLayer> {
  const b: Building = {
    src,
    cache: new TableCache(),
    extents: [],
    opened: new Map(),
    warnings: [],
    details: {},
  };
  try {
    return await openLayer(b, ctx);
  } catch (err) {
    await Promise.allSettled([...b.opened.values()].map((s) => s.close()));
    throw err;
  }
}

async function openLayer(b: Building, ctx: OpenContext): Promise<DiskLayer> {
  const { src } = b;
  if (src.size < 4) {
    throw new ImageCorruptError(`${src.name}: file too small to be a VMDK`, {
      format: 'vmdk',
      size: src.size,
    });
  }
  const head = await src.read(0, Math.min(src.size, SECTOR));
  let descriptor: Descriptor | undefined;
  let subformat: string;
  if (isSparseMagic(head)) {
    const header = await readSparseHeader(src);
    const text =
      header.descriptorBytes > 0
        ? descriptorText(await src.read(header.descriptorOffset, header.descriptorBytes))
        : undefined;
    if (header.capacitySectors === 0 && text !== undefined && !header.gdAtEnd) {
      // A sparse header that only carries a descriptor naming other extents (QEMU accepts it).
      descriptor = parseDescriptor(text, src.name, { embedded: false });
      subformat = await openDescribed(b, ctx, descriptor);
    } else {
      if (text !== undefined) descriptor = parseDescriptor(text, src.name, { embedded: true });
      else b.warnings.push('no embedded descriptor: no CID and no parent information');
      const ext = await SparseExtent.open(src, header, b.cache, 0);
      b.extents.push({ start: 0, reader: ext, own: true });
      subformat = header.compressed ? 'streamOptimized' : 'monolithicSparse';
      sparseDetails(b, header);
      if (header.uncleanShutdown) b.warnings.push('the image was not closed cleanly (uncleanShutdown set)');
    }
  } else if (isCowdMagic(head)) {
    const g = parseCowdHeader(head, src.size, src.name);
    b.extents.push({ start: 0, reader: await SparseExtent.open(src, g, b.cache, 0), own: true });
    b.warnings.push('a bare ESX COWD extent: no descriptor, so no CID and no parent information');
    subformat = 'vmfsSparse';
    sparseDetails(b, g);
  } else {
    if (src.size > MAX_DESCRIPTOR_BYTES) {
      throw new ImageCorruptError(
        `${src.name}: neither a sparse VMDK nor a descriptor (too large for text)`,
        {
          format: 'vmdk',
          size: src.size,
        },
      );
    }
    descriptor = parseDescriptor(descriptorText(await src.read(0, src.size)), src.name, { embedded: false });
    subformat = await openDescribed(b, ctx, descriptor);
  }
  return finish(b, subformat, descriptor);
}

/** Opens the extents a (separate) descriptor names, in order. */
async function openDescribed(b: Building, ctx: OpenContext, d: Descriptor): Promise<string> {
  const name = b.src.name;
  if (d.createType === undefined) {
    throw new ImageCorruptError(`${name}: descriptor has no createType`, {
      format: 'vmdk',
      field: 'createType',
    });
  }
  if (!(READABLE_CREATE_TYPES as readonly string[]).includes(d.createType)) {
    throw new ImageUnsupportedError(`${name}: createType "${d.createType.slice(0, 64)}" is not supported`, {
      format: 'vmdk',
      field: 'createType',
      value: d.createType.slice(0, 64),
    });
  }
  if (d.extents.length === 0) {
    throw new ImageCorruptError(`${name}: descriptor lists no extents`, { format: 'vmdk', field: 'extents' });
  }
  let start = 0;
  for (const [i, x] of d.extents.entries()) {
    b.extents.push({ start, reader: await openExtent(b, ctx, x, i + 1), own: false });
    start += x.sectors * SECTOR;
  }
  return d.createType;
}

async function openExtent(
  b: Building,
  ctx: OpenContext,
  x: DescriptorExtent,
  id: number,
): Promise<ExtentReader> {
  const bytes = x.sectors * SECTOR;
  if (x.type === 'ZERO') return new ZeroExtent(bytes);
  const file = x.file as string;
  let src = b.opened.get(file);
  if (!src) {
    src = await ctx.openReference(file, 'extent');
    b.opened.set(file, src);
  }
  if (x.type === 'FLAT' || x.type === 'VMFS') {
    const at = x.offsetSectors * SECTOR;
    if (at + bytes > src.size) {
      throw new ImageTruncatedError(
        `${b.src.name}: flat extent "${file}" needs ${at + bytes} bytes but the file has ${src.size}`,
        { format: 'vmdk', field: 'extent', file, size: src.size },
      );
    }
    return new FlatExtent(bytes, src, at);
  }
  // SPARSE / VMFSSPARSE: the file's own header says which sparse kind it is.
  const head = await src.read(0, Math.min(src.size, SECTOR));
  let g: SparseGeometry;
  if (isSparseMagic(head)) {
    const h = await readSparseHeader(src);
    if (h.capacitySectors === 0 && h.descriptorBytes > 0) {
      throw new ImageCorruptError(`${b.src.name}: sparse extent "${file}" is itself a descriptor`, {
        format: 'vmdk',
        field: 'extent',
        file,
      });
    }
    g = h;
  } else if (isCowdMagic(head)) {
    g = parseCowdHeader(head, src.size, src.name);
  } else {
    throw new ImageCorruptError(`${b.src.name}: extent "${file}" is not a sparse VMDK extent`, {
      format: 'vmdk',
      field: 'extent',
      file,
    });
  }
  if (g.capacitySectors !== x.sectors) {
    throw new ImageCorruptError(
      `${b.src.name}: extent "${file}" holds ${g.capacitySectors} sectors, the descriptor says ${x.sectors}`,
      { format: 'vmdk', field: 'extent size', file, value: g.capacitySectors, expected: x.sectors },
    );
  }
  if (b.details.grainSize === undefined) sparseDetails(b, g);
  return SparseExtent.open(src, g, b.cache, id);
}

function sparseDetails(b: Building, g: SparseGeometry): void {
  b.details.sparseVersion = g.version;
  b.details.grainSize = g.grainSectors * SECTOR;
  b.details.compressed = g.compressed;
  if (g.kind === 'vmdk4') b.details.flags = describeFlags(g.flags);
}

function finish(b: Building, subformat: string, d: Descriptor | undefined): DiskLayer {
  const last = b.extents[b.extents.length - 1] as Placed;
  const virtualSize = last.start + last.reader.bytes;
  const firstSparse = b.extents.find((e) => e.reader instanceof SparseExtent)?.reader as
    SparseExtent | undefined;
  let parent: ParentReference | undefined;
  if (d?.parentFileNameHint !== undefined) {
    parent = {
      name: d.parentFileNameHint,
      format: 'vmdk',
      ...(d.parentCid !== undefined ? { expectedId: formatCid(d.parentCid) } : {}),
    };
  } else if (d?.parentCid !== undefined && d.parentCid !== CID_NONE) {
    b.warnings.push(
      `parentCID ${formatCid(d.parentCid)} but no parentFileNameHint: the parent is unknown, ` +
        'unallocated grains read as zeros',
    );
  }
  if (d) {
    b.details.createType = d.createType ?? '';
    if (d.cid !== undefined) b.details.cid = formatCid(d.cid);
    if (d.parentCid !== undefined) b.details.parentCid = formatCid(d.parentCid);
    for (const k of ['adapterType', 'virtualHWVersion']) {
      const v = d.ddb[k.toLowerCase()];
      if (v !== undefined) b.details[k] = v.slice(0, 64);
    }
  }
  b.details.extents = b.extents.length;
  const files = [...b.opened.keys()];
  const info: LayerInfo = Object.freeze({
    format: 'vmdk',
    subformat,
    virtualSize,
    clusterSize: firstSparse?.grainBytes ?? SECTOR,
    fileSize: b.src.size + [...b.opened.values()].reduce((s, x) => s + x.size, 0),
    ...(parent ? { parent } : {}),
    ...(d?.cid !== undefined ? { id: formatCid(d.cid) } : {}),
    files: Object.freeze(files),
    warnings: Object.freeze([...b.warnings]),
    details: Object.freeze({ ...b.details }),
  });
  return new VmdkLayer(info, b.extents, [b.src, ...b.opened.values()]);
}
