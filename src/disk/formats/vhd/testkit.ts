/**
 * Test support: builds and patches VHD images in memory (unit tests build from buffers;
 * integration and hostile tests use it to craft differencing and damaged images, which
 * qemu-img cannot create). Not used by the driver.
 */
import { MemorySink } from '../../io/block-sink.js';
import { vhdChecksum } from './header.js';
import { DISK_TYPE, DYN_HEADER_SIZE, F, FOOTER_SIZE, H, SECTOR } from './layout.js';
import { createVhdWriter } from './writer.js';

/** Writes `blocks` (64 KiB-aligned offsets) through the real writer. */
export async function writeVhd(
  size: number,
  blocks: ReadonlyArray<readonly [number, Buffer]>,
  options: { subformat?: 'dynamic' | 'fixed'; clusterSize?: number; seekable?: boolean } = {},
): Promise<Buffer> {
  const sink = new MemorySink({ seekable: options.seekable ?? true });
  const writer = await createVhdWriter(sink, {
    virtualSize: size,
    subformat: options.subformat ?? 'dynamic',
    ...(options.clusterSize !== undefined ? { clusterSize: options.clusterSize } : {}),
  });
  for (const [offset, data] of blocks) {
    for (let o = 0; o < data.length; o += writer.blockSize) {
      await writer.writeBlock(offset + o, Buffer.from(data.subarray(o, o + writer.blockSize)));
    }
  }
  await writer.finish();
  return Buffer.from(sink.contents());
}

export function uuidBytes(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, ''), 'hex');
}

export function utf16le(s: string): Buffer {
  return Buffer.from(s, 'utf16le');
}

export function utf16be(s: string): Buffer {
  return Buffer.from(s, 'utf16le').swap16();
}

function refreshFooterChecksum(footer: Buffer): void {
  footer.writeUInt32BE(vhdChecksum(footer, F.checksum), F.checksum);
}

/** Applies `fn` to the footer (both copies of a dynamic disk) and fixes the checksum unless told not to. */
export function patchFooter(img: Buffer, fn: (footer: Buffer) => void, fixChecksum = true): Buffer {
  const out = Buffer.from(img);
  const end = out.subarray(out.length - FOOTER_SIZE);
  const copies = out.toString('latin1', 0, 8) === 'conectix' ? [out.subarray(0, FOOTER_SIZE), end] : [end];
  for (const c of copies) {
    fn(c);
    if (fixChecksum) refreshFooterChecksum(c);
  }
  return out;
}

export function headerOffset(img: Buffer): number {
  return Number(img.readBigUInt64BE(F.dataOffset));
}

/** Applies `fn` to the dynamic header and fixes its checksum unless told not to. */
export function patchHeader(img: Buffer, fn: (header: Buffer) => void, fixChecksum = true): Buffer {
  const out = Buffer.from(img);
  const h = out.subarray(headerOffset(out), headerOffset(out) + DYN_HEADER_SIZE);
  fn(h);
  if (fixChecksum) h.writeUInt32BE(vhdChecksum(h, H.checksum), H.checksum);
  return out;
}

export function batOffset(img: Buffer): number {
  return Number(img.readBigUInt64BE(headerOffset(img) + H.tableOffset));
}

/** File offset of block `b`'s sector bitmap (the block must be allocated). */
export function bitmapOffset(img: Buffer, block: number): number {
  return img.readUInt32BE(batOffset(img) + block * 4) * SECTOR;
}

/** Overwrites the start of block `b`'s sector bitmap with `bits`. */
export function setBitmap(img: Buffer, block: number, bits: Buffer): Buffer {
  const out = Buffer.from(img);
  bits.copy(out, bitmapOffset(out, block));
  return out;
}

export interface LocatorInput {
  readonly platform: number;
  readonly data: Buffer;
  /** Override where the entry says the data is (hostile tests). */
  readonly dataOffset?: number;
  readonly dataLength?: number;
}

/**
 * Turns a dynamic VHD into a differencing one: parent id, parent name (UTF-16BE) and
 * locators whose payloads are appended (sector-aligned) before the trailing footer.
 */
export function toDifferencing(
  img: Buffer,
  o: { parentId: string; parentName?: string; locators?: readonly LocatorInput[]; uniqueId?: string },
): Buffer {
  const body = Buffer.from(img.subarray(0, img.length - FOOTER_SIZE));
  const payloads: Buffer[] = [];
  let at = body.length;
  const entries = (o.locators ?? []).map((l) => {
    const padded = Buffer.alloc(Math.ceil(Math.max(l.data.length, 1) / SECTOR) * SECTOR);
    l.data.copy(padded);
    payloads.push(padded);
    const entry = {
      ...l,
      offset: l.dataOffset ?? at,
      length: l.dataLength ?? l.data.length,
      space: padded.length,
    };
    at += padded.length;
    return entry;
  });
  const footer = Buffer.from(img.subarray(0, FOOTER_SIZE));
  footer.writeUInt32BE(DISK_TYPE.differencing, F.diskType);
  if (o.uniqueId) uuidBytes(o.uniqueId).copy(footer, F.uniqueId);
  refreshFooterChecksum(footer);
  const out = Buffer.concat([body, ...payloads, footer]);
  footer.copy(out, 0);
  return patchHeader(out, (h) => {
    uuidBytes(o.parentId).copy(h, H.parentId);
    h.fill(0, H.parentName, H.parentName + H.parentNameBytes);
    if (o.parentName) utf16be(o.parentName).copy(h, H.parentName, 0, H.parentNameBytes);
    h.fill(0, H.locators, H.locators + H.locatorCount * H.locatorSize);
    entries.forEach((e, i) => {
      const p = H.locators + i * H.locatorSize;
      h.writeUInt32BE(e.platform, p);
      h.writeUInt32BE(e.space, p + 4);
      h.writeUInt32BE(e.length, p + 8);
      h.writeBigUInt64BE(BigInt(e.offset), p + 16);
    });
  });
}

/** The unique id of an image, as the driver reports it. */
export function uniqueIdOf(img: Buffer): string {
  const h = img
    .subarray(img.length - FOOTER_SIZE + F.uniqueId, img.length - FOOTER_SIZE + F.uniqueId + 16)
    .toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Flips the low bit of one byte (damages a checksum-covered field). */
export function flipByte(buf: Buffer, at: number): void {
  buf.writeUInt8(buf.readUInt8(at) ^ 1, at);
}
