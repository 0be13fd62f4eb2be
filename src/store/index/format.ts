/**
 * Index files: where each chunk lives. Body (then encrypted as an object of kind "index"):
 *
 *   "FRYIDX01" ‖ pack count u32 LE ‖ per pack: pack id (32) ‖ entry count u32 LE ‖ entries
 *   entry (46 bytes): type u8 ‖ compression u8 ‖ offset u32 ‖ stored length u32 ‖ raw length u32 ‖ id (32)
 */
import { StoreCorruptError } from '../../errors/index.js';
import { checkEntry, type BlobType } from '../chunk/blob.js';
import type { Compression } from '../chunk/compress.js';
import { ID_BYTES, MAX_PACK_BYTES, MAX_PACK_ENTRIES } from '../layout.js';
import type { PackEntry } from '../pack/format.js';

const MAGIC = Buffer.from('FRYIDX01');
const ENTRY_BYTES = 1 + 1 + 4 + 4 + 4 + ID_BYTES;

export interface IndexedPack {
  readonly packId: string;
  readonly entries: readonly PackEntry[];
}

export function encodeIndex(packs: readonly IndexedPack[]): Buffer {
  const size =
    MAGIC.length + 4 + packs.reduce((s, p) => s + ID_BYTES + 4 + p.entries.length * ENTRY_BYTES, 0);
  const out = Buffer.allocUnsafe(size);
  let at = MAGIC.copy(out, 0);
  at = out.writeUInt32LE(packs.length, at);
  for (const p of packs) {
    at += Buffer.from(p.packId, 'hex').copy(out, at);
    at = out.writeUInt32LE(p.entries.length, at);
    for (const e of p.entries) {
      out[at] = e.type;
      out[at + 1] = e.compression;
      out.writeUInt32LE(e.offset, at + 2);
      out.writeUInt32LE(e.length, at + 6);
      out.writeUInt32LE(e.rawLength, at + 10);
      e.id.copy(out, at + 14);
      at += ENTRY_BYTES;
    }
  }
  return out;
}

export function decodeIndex(body: Buffer, what: string): IndexedPack[] {
  const bad = (why: string): never => {
    throw new StoreCorruptError(`${what}: ${why}`, { object: what });
  };
  if (body.length < MAGIC.length + 4 || !body.subarray(0, MAGIC.length).equals(MAGIC)) bad('bad index magic');
  let at = MAGIC.length;
  const packCount = body.readUInt32LE(at);
  at += 4;
  if (packCount > body.length / (ID_BYTES + 4)) bad(`pack count ${packCount} exceeds the file`);
  const packs: IndexedPack[] = [];
  for (let p = 0; p < packCount; p++) {
    if (at + ID_BYTES + 4 > body.length) bad('truncated pack record');
    const packId = body.toString('hex', at, at + ID_BYTES);
    at += ID_BYTES;
    const count = body.readUInt32LE(at);
    at += 4;
    if (count > MAX_PACK_ENTRIES || at + count * ENTRY_BYTES > body.length)
      bad(`entry count ${count} of pack ${packId}`);
    const entries: PackEntry[] = [];
    for (let i = 0; i < count; i++, at += ENTRY_BYTES) {
      const e: PackEntry = {
        type: body[at] as BlobType,
        compression: body[at + 1] as Compression,
        offset: body.readUInt32LE(at + 2),
        length: body.readUInt32LE(at + 6),
        rawLength: body.readUInt32LE(at + 10),
        id: Buffer.from(body.subarray(at + 14, at + 14 + ID_BYTES)),
      };
      checkEntry(e, `${what} (pack ${packId.slice(0, 12)})`);
      if (e.offset + e.length > MAX_PACK_BYTES) bad(`entry offset ${e.offset} beyond the pack size limit`);
      entries.push(e);
    }
    packs.push({ packId, entries });
  }
  if (at !== body.length) bad('trailing bytes after the last pack');
  return packs;
}
