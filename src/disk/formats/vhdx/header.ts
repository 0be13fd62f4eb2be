/**
 * The header section (spec 2.2): file type identifier, the two headers and the region
 * table, bytes → frozen, validated values. Pure: the reader does the I/O.
 */
import { ImageCorruptError, ImageUnsupportedError, type FerryError } from '../../../errors/index.js';
import { crc32cWithZeroedField } from './crc32c.js';
import { readGuid, ZERO_GUID } from './guid.js';
import {
  FILE_ID_CREATOR_BYTES,
  FILE_ID_CREATOR_OFFSET,
  FILE_ID_SIGNATURE,
  FORMAT,
  GUID_BAT_REGION,
  GUID_METADATA_REGION,
  HEADER_CHECKSUM_OFFSET,
  HEADER_SECTION_SIZE,
  HEADER_SIGNATURE,
  HEADER_SIZE,
  HEADER_VERSION,
  LOG_VERSION,
  MAX_FILE_OFFSET,
  MAX_REGION_ENTRIES,
  REGION_ALIGNMENT,
  REGION_CHECKSUM_OFFSET,
  REGION_ENTRY_SIZE,
  REGION_HEADER_SIZE,
  REGION_REQUIRED_BIT,
  REGION_SIGNATURE,
  REGION_TABLE_SIZE,
} from './layout.js';

export interface VhdxHeader {
  /** 1 (at 64 KiB) or 2 (at 128 KiB). */
  readonly slot: 1 | 2;
  readonly sequence: bigint;
  readonly fileWriteGuid: string;
  /** Identity of the virtual disk's content; a child's parent_linkage names it. */
  readonly dataWriteGuid: string;
  /** ZERO_GUID when the log is empty. */
  readonly logGuid: string;
  readonly logVersion: number;
  readonly version: number;
  readonly logLength: number;
  readonly logOffset: number;
}

export interface Region {
  readonly offset: number;
  readonly length: number;
}

export interface RegionTable {
  readonly bat: Region;
  readonly metadata: Region;
  readonly entryCount: number;
}

/** A structure whose signature or checksum does not verify (the other copy may). */
export interface Invalid {
  readonly invalid: string;
}

export function isInvalid<T extends object>(x: T | Invalid): x is Invalid {
  return 'invalid' in x;
}

export function hasFileSignature(buf: Buffer): boolean {
  return buf.length >= 8 && buf.toString('latin1', 0, 8) === FILE_ID_SIGNATURE;
}

/** The creator string of the file identifier (diagnostic only, spec 2.2.1). */
export function parseCreator(buf: Buffer): string {
  const raw = buf.subarray(FILE_ID_CREATOR_OFFSET, FILE_ID_CREATOR_OFFSET + FILE_ID_CREATOR_BYTES);
  const text = raw.toString('utf16le');
  const nul = text.indexOf('\0');
  // Printable characters only: it ends up in `info` output.
  return (nul >= 0 ? text.slice(0, nul) : text).replace(/[^\x20-\x7e]/g, '').slice(0, 128);
}

/** One header (4 KiB), or why it is not valid (spec 2.2.2: signature and checksum). */
export function parseHeader(buf: Buffer, slot: 1 | 2): VhdxHeader | Invalid {
  if (buf.length < HEADER_SIZE) return { invalid: 'short' };
  if (buf.toString('latin1', 0, 4) !== HEADER_SIGNATURE) return { invalid: 'bad signature' };
  const stored = buf.readUInt32LE(HEADER_CHECKSUM_OFFSET);
  if (crc32cWithZeroedField(buf, HEADER_CHECKSUM_OFFSET, 0, HEADER_SIZE) !== stored) {
    return { invalid: 'bad checksum' };
  }
  const logOffset = buf.readBigUInt64LE(72);
  return Object.freeze({
    slot,
    sequence: buf.readBigUInt64LE(8),
    fileWriteGuid: readGuid(buf, 16),
    dataWriteGuid: readGuid(buf, 32),
    logGuid: readGuid(buf, 48),
    logVersion: buf.readUInt16LE(64),
    version: buf.readUInt16LE(66),
    logLength: buf.readUInt32LE(68),
    // Checked below (currentHeader); an absurd value becomes -1 so no check can pass.
    logOffset: logOffset <= BigInt(MAX_FILE_OFFSET) ? Number(logOffset) : -1,
  });
}

/**
 * The current header (spec 2.2.2): the valid one, or the valid one with the higher
 * sequence number. Equal numbers are accepted only for identical headers (QEMU does the
 * same: Disk2VHD writes two identical headers). Then its version and log fields are checked.
 */
export function currentHeader(
  name: string,
  raw1: Buffer,
  raw2: Buffer,
): { header: VhdxHeader; warnings: string[] } {
  const h1 = parseHeader(raw1, 1);
  const h2 = parseHeader(raw2, 2);
  const warnings: string[] = [];
  let header: VhdxHeader;
  if (isInvalid(h1) && isInvalid(h2)) {
    throw new ImageCorruptError(
      `${name}: no valid VHDX header (header 1: ${h1.invalid}, header 2: ${h2.invalid})`,
      { format: FORMAT, field: 'header', header1: h1.invalid, header2: h2.invalid },
    );
  } else if (isInvalid(h1) || isInvalid(h2)) {
    header = (isInvalid(h1) ? h2 : h1) as VhdxHeader;
    const bad = isInvalid(h1) ? h1 : (h2 as Invalid);
    warnings.push(`header ${header.slot === 1 ? 2 : 1} is not valid (${bad.invalid}); using the other copy`);
  } else if (h1.sequence !== h2.sequence) {
    header = h1.sequence > h2.sequence ? h1 : h2;
  } else if (raw1.subarray(0, 80).equals(raw2.subarray(0, 80))) {
    header = h1;
  } else {
    throw new ImageCorruptError(`${name}: both VHDX headers have sequence number ${h1.sequence} but differ`, {
      format: FORMAT,
      field: 'header.sequenceNumber',
      value: String(h1.sequence),
    });
  }
  checkHeader(name, header);
  return { header, warnings };
}

function checkHeader(name: string, h: VhdxHeader): void {
  if (h.version !== HEADER_VERSION) {
    throw new ImageUnsupportedError(`${name}: VHDX version ${h.version} (only version 1 is defined)`, {
      format: FORMAT,
      field: 'header.version',
      value: h.version,
    });
  }
  const hasLog = h.logGuid !== ZERO_GUID;
  if (hasLog && h.logVersion !== LOG_VERSION) {
    // Spec 2.2.2: an unknown log version may be ignored only when there is no log to replay.
    throw new ImageUnsupportedError(`${name}: VHDX log version ${h.logVersion} cannot be replayed`, {
      format: FORMAT,
      field: 'header.logVersion',
      value: h.logVersion,
    });
  }
  if (h.logLength % REGION_ALIGNMENT !== 0) {
    throw new ImageCorruptError(`${name}: VHDX log length ${h.logLength} is not a multiple of 1 MiB`, {
      format: FORMAT,
      field: 'header.logLength',
      value: h.logLength,
    });
  }
  if (
    h.logLength > 0 &&
    (h.logOffset < HEADER_SECTION_SIZE ||
      h.logOffset % REGION_ALIGNMENT !== 0 ||
      h.logOffset + h.logLength > MAX_FILE_OFFSET)
  ) {
    throw new ImageCorruptError(`${name}: VHDX log offset ${h.logOffset} is invalid`, {
      format: FORMAT,
      field: 'header.logOffset',
      value: h.logOffset,
    });
  }
}

/**
 * A region table copy (spec 2.2.3). Signature or checksum failures make the copy invalid
 * (the caller tries the other one); anything else wrong in a checksummed table is an error.
 * `log` is the header's log, which no region may overlap.
 */
export function parseRegionTable(name: string, buf: Buffer, log: Region): RegionTable | Invalid {
  if (buf.length < REGION_TABLE_SIZE) return { invalid: 'short' };
  if (buf.toString('latin1', 0, 4) !== REGION_SIGNATURE) return { invalid: 'bad signature' };
  const stored = buf.readUInt32LE(REGION_CHECKSUM_OFFSET);
  if (crc32cWithZeroedField(buf, REGION_CHECKSUM_OFFSET, 0, REGION_TABLE_SIZE) !== stored) {
    return { invalid: 'bad checksum' };
  }
  const count = buf.readUInt32LE(8);
  if (count > MAX_REGION_ENTRIES) {
    throw corrupt(name, 'regionTable.entryCount', count, `region table has ${count} entries (at most 2047)`);
  }
  const seen = new Set<string>();
  const regions: Region[] = log.length > 0 ? [log] : [];
  let bat: Region | undefined;
  let metadata: Region | undefined;
  for (let i = 0; i < count; i++) {
    const at = REGION_HEADER_SIZE + i * REGION_ENTRY_SIZE;
    const guid = readGuid(buf, at);
    const offset64 = buf.readBigUInt64LE(at + 16);
    const length = buf.readUInt32LE(at + 24);
    const required = (buf.readUInt32LE(at + 28) & REGION_REQUIRED_BIT) !== 0;
    if (seen.has(guid)) throw corrupt(name, 'regionTable.guid', guid, `region ${guid} is listed twice`);
    seen.add(guid);
    const offset = offset64 <= BigInt(MAX_FILE_OFFSET) ? Number(offset64) : -1;
    if (
      offset < HEADER_SECTION_SIZE ||
      offset % REGION_ALIGNMENT !== 0 ||
      length === 0 ||
      length % REGION_ALIGNMENT !== 0 ||
      offset + length > MAX_FILE_OFFSET
    ) {
      throw corrupt(
        name,
        'regionTable.fileOffset',
        String(offset64),
        `region ${guid} at ${offset64} length ${length} is not 1 MiB-aligned after the header section`,
      );
    }
    const region = { offset, length };
    const clash = regions.find((r) => overlaps(r, region));
    if (clash) {
      throw corrupt(
        name,
        'regionTable.fileOffset',
        offset,
        `region ${guid} overlaps another region or the log`,
      );
    }
    regions.push(region);
    if (guid === GUID_BAT_REGION) bat = region;
    else if (guid === GUID_METADATA_REGION) metadata = region;
    else if (required) {
      throw new ImageUnsupportedError(`${name}: VHDX requires region ${guid}, which Ferry does not know`, {
        format: FORMAT,
        field: 'regionTable.guid',
        value: guid,
      });
    }
  }
  if (!bat || !metadata) {
    throw corrupt(name, 'regionTable', count, `region table lacks the ${bat ? 'metadata' : 'BAT'} region`);
  }
  return Object.freeze({ bat, metadata, entryCount: count });
}

export function overlaps(a: Region, b: Region): boolean {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

function corrupt(name: string, field: string, value: string | number, what: string): FerryError {
  return new ImageCorruptError(`${name}: ${what}`, { format: FORMAT, field, value });
}
