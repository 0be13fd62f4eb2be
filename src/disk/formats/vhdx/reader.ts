/**
 * The VHDX layer: the only code of this driver that reads, always through the ByteSource
 * it was given. Open order follows spec 2.3.3 and QEMU's vhdx_open(): file identifier,
 * headers, log (replayed in memory), region table, metadata, BAT, then the BAT is checked
 * whole, so map() and read() only index validated tables.
 */
import { ImageCorruptError, ImageTooLargeError } from '../../../errors/index.js';
import { isStored, type LayerExtent } from '../../extent.js';
import type { ByteSource } from '../../io/byte-source.js';
import type { DiskLayer, LayerInfo } from '../../layer.js';
import { METADATA_CACHE_BYTES } from '../../limits.js';
import { Bat, batBytes, bitmapIndex, geometry, payloadIndex, validateBat, type Geometry } from './bat.js';
import { ZERO_GUID } from './guid.js';
import {
  currentHeader,
  hasFileSignature,
  isInvalid,
  parseCreator,
  parseRegionTable,
  type Region,
  type RegionTable,
} from './header.js';
import {
  FILE_ID_CREATOR_BYTES,
  FILE_ID_CREATOR_OFFSET,
  FORMAT,
  HEADER_OFFSETS,
  HEADER_SIZE,
  MAX_LOG_BYTES,
  METADATA_TABLE_SIZE,
  PAYLOAD_PARTIALLY_PRESENT,
  REGION_TABLE_OFFSETS,
  REGION_TABLE_SIZE,
} from './layout.js';
import { replayLog, type LogReplay } from './log.js';
import { mapRange } from './map.js';
import { locateItems, parseItems, type ItemBytes, type VhdxMetadata } from './metadata.js';
import { flatten, OverlaySource } from './overlay.js';

export async function openVhdx(src: ByteSource): Promise<DiskLayer> {
  const name = src.name;
  const id = await src.read(0, FILE_ID_CREATOR_OFFSET + FILE_ID_CREATOR_BYTES);
  if (!hasFileSignature(id)) {
    throw new ImageCorruptError(`${name}: not a VHDX file (no "vhdxfile" signature)`, {
      format: FORMAT,
      field: 'signature',
    });
  }
  const h1 = await src.read(HEADER_OFFSETS[0], HEADER_SIZE);
  const h2 = await src.read(HEADER_OFFSETS[1], HEADER_SIZE);
  const { header, warnings } = currentHeader(name, h1, h2);
  const log: Region = { offset: header.logOffset, length: header.logLength };

  // Spec 2.3.3: replay before any other read. LogGuid set means a log must be replayed.
  let file: ByteSource = src;
  let replay: LogReplay | undefined;
  if (header.logGuid !== ZERO_GUID) {
    if (log.length === 0) {
      throw new ImageCorruptError(`${name}: the VHDX header names a log (LogGuid set) of length 0`, {
        format: FORMAT,
        field: 'header.logLength',
        value: 0,
      });
    }
    if (log.length > MAX_LOG_BYTES) {
      throw new ImageTooLargeError(`${name}: the VHDX log is ${log.length} bytes (limit ${MAX_LOG_BYTES})`, {
        format: FORMAT,
        field: 'header.logLength',
        value: log.length,
        limit: MAX_LOG_BYTES,
      });
    }
    const bytes = await src.read(log.offset, log.length);
    replay = replayLog(name, bytes, { logGuid: header.logGuid, logOffset: log.offset, fileSize: src.size });
    file = new OverlaySource(src, flatten(replay.writes), replay.fileSize);
    warnings.push(
      `the log held ${replay.entries} unapplied entr${replay.entries === 1 ? 'y' : 'ies'}, ` +
        'replayed in memory (the file was not modified)',
    );
  }

  let regions: RegionTable | undefined;
  for (const [i, at] of REGION_TABLE_OFFSETS.entries()) {
    const parsed = parseRegionTable(name, await file.read(at, REGION_TABLE_SIZE), log);
    if (!isInvalid(parsed)) {
      regions = parsed;
      break;
    }
    if (i === 0) warnings.push(`region table 1 is not valid (${parsed.invalid}); using the second copy`);
    else {
      throw new ImageCorruptError(`${name}: no valid VHDX region table (${parsed.invalid})`, {
        format: FORMAT,
        field: 'regionTable',
      });
    }
  }
  const rt = regions as RegionTable;

  const table = await file.read(rt.metadata.offset, METADATA_TABLE_SIZE);
  const where = locateItems(name, table, rt.metadata.length);
  const item = (loc: { offset: number; length: number }) =>
    file.read(rt.metadata.offset + loc.offset, loc.length);
  const bytes: ItemBytes = {
    fileParameters: await item(where.fileParameters),
    virtualDiskSize: await item(where.virtualDiskSize),
    page83: await item(where.page83),
    logicalSectorSize: await item(where.logicalSectorSize),
    physicalSectorSize: await item(where.physicalSectorSize),
    parentLocator: where.parentLocator ? await item(where.parentLocator) : undefined,
  };
  const meta = parseItems(name, bytes);
  warnings.push(...meta.warnings);

  const g = geometry(meta);
  const size = batBytes(name, g, rt.bat.length);
  const bat = new Bat(size > 0 ? await file.read(rt.bat.offset, size) : Buffer.alloc(0), g);
  const reserved = [rt.bat, rt.metadata, ...(log.length > 0 ? [log] : [])];
  validateBat(name, bat, file.size, reserved);

  const subformat = meta.hasParent ? 'differencing' : meta.leaveBlocksAllocated ? 'fixed' : 'dynamic';
  const info: LayerInfo = Object.freeze({
    format: 'vhdx' as const,
    subformat,
    virtualSize: meta.virtualSize,
    clusterSize: meta.blockSize,
    fileSize: src.size,
    ...(meta.parent
      ? { parent: { name: meta.parent.path, format: 'vhdx' as const, expectedId: meta.parent.linkage } }
      : {}),
    id: header.dataWriteGuid,
    files: [],
    warnings: Object.freeze(warnings),
    details: Object.freeze(details(meta, header.dataWriteGuid, parseCreator(id), replay)),
  });
  return new VhdxLayer(file, info, bat);
}

function details(
  meta: VhdxMetadata,
  dataWriteGuid: string,
  creator: string,
  replay: LogReplay | undefined,
): Record<string, string | number | boolean> {
  return {
    blockSize: meta.blockSize,
    logicalSectorSize: meta.logicalSectorSize,
    physicalSectorSize: meta.physicalSectorSize,
    virtualDiskId: meta.virtualDiskId,
    dataWriteGuid,
    ...(creator ? { creator } : {}),
    logReplayed: replay !== undefined,
    ...(replay ? { logEntriesReplayed: replay.entries } : {}),
    ...(meta.parent
      ? {
          parentLinkage: meta.parent.linkage,
          ...(meta.parent.linkage2 ? { parentLinkage2: meta.parent.linkage2 } : {}),
          ...(meta.parent.relativePath !== undefined ? { parentRelativePath: meta.parent.relativePath } : {}),
          ...(meta.parent.absoluteWin32Path !== undefined
            ? { parentAbsoluteWin32Path: meta.parent.absoluteWin32Path }
            : {}),
        }
      : {}),
  };
}

class VhdxLayer implements DiskLayer {
  readonly info: LayerInfo;
  readonly #src: ByteSource;
  readonly #bat: Bat;
  readonly #g: Geometry;
  /** Sector bitmap slices of PARTIALLY_PRESENT blocks, by block, least recently used first. */
  readonly #bitmaps = new Map<number, Buffer>();
  #bitmapBytes = 0;

  constructor(src: ByteSource, info: LayerInfo, bat: Bat) {
    this.#src = src;
    this.info = info;
    this.#bat = bat;
    this.#g = bat.geometry;
  }

  async map(offset: number, length: number): Promise<LayerExtent[]> {
    if (this.#g.hasParent) await this.#loadBitmaps(offset, length);
    return mapRange(this.#bat, offset, length, (block) => this.#bitmaps.get(block));
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const extents = await this.map(offset, length);
    const only = extents[0];
    if (extents.length === 1 && only?.kind === 'data')
      return this.#src.read(only.fileOffset as number, length);
    const out = Buffer.alloc(length);
    await Promise.all(
      extents
        .filter((e) => isStored(e.kind))
        .map(async (e) =>
          (await this.#src.read(e.fileOffset as number, e.length)).copy(out, e.offset - offset),
        ),
    );
    return out;
  }

  /** Loads (LRU, bounded by METADATA_CACHE_BYTES) the bitmaps of partial blocks in the range. */
  async #loadBitmaps(offset: number, length: number): Promise<void> {
    const g = this.#g;
    const first = Math.floor(offset / g.blockSize);
    const last = Math.floor((offset + length - 1) / g.blockSize);
    const perBlock = g.sectorsPerBlock / 8;
    for (let block = first; block <= last; block++) {
      if (this.#bat.state(payloadIndex(g, block)) !== PAYLOAD_PARTIALLY_PRESENT) continue;
      const cached = this.#bitmaps.get(block);
      this.#bitmaps.delete(block);
      if (cached) {
        this.#bitmaps.set(block, cached);
        continue;
      }
      const chunk = Math.floor(block / g.chunkRatio);
      const at = this.#bat.offset(bitmapIndex(g, chunk)) + (block % g.chunkRatio) * perBlock;
      this.#bitmaps.set(block, await this.#src.read(at, perBlock));
      this.#bitmapBytes += perBlock;
      // Evict the least recently used, never one this call needs (a 1 GiB map window
      // needs at most 256 KiB of bitmaps, far below the budget).
      for (const [old, buf] of this.#bitmaps) {
        if (this.#bitmapBytes <= METADATA_CACHE_BYTES || (old >= first && old <= last)) break;
        this.#bitmaps.delete(old);
        this.#bitmapBytes -= buf.length;
      }
    }
  }

  close(): Promise<void> {
    return this.#src.close();
  }
}
