/**
 * The metadata region (spec 2.6): the 64 KiB table, the known system items and the VHDX
 * parent locator, bytes → frozen, validated values. Pure: the reader reads the table, asks
 * which items to read (`locateItems`), reads them and hands the bytes to `parseItems`.
 */
import {
  ImageCorruptError,
  ImageTooLargeError,
  ImageUnsupportedError,
  type FerryError,
} from '../../../errors/index.js';
import { MAX_VIRTUAL_SIZE } from '../../limits.js';
import { parseGuidText, readGuid } from './guid.js';
import {
  FILE_PARAMS_HAS_PARENT,
  FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED,
  FORMAT,
  GUID_FILE_PARAMETERS,
  GUID_LOGICAL_SECTOR_SIZE,
  GUID_PAGE83_DATA,
  GUID_PARENT_LOCATOR,
  GUID_PHYSICAL_SECTOR_SIZE,
  GUID_VHDX_PARENT_LOCATOR_TYPE,
  GUID_VIRTUAL_DISK_SIZE,
  MAX_BLOCK_SIZE,
  MAX_METADATA_ENTRIES,
  MAX_METADATA_ITEM_BYTES,
  MAX_PARENT_LOCATOR_ENTRIES,
  MAX_USER_METADATA_ENTRIES,
  MAX_VHDX_VIRTUAL_SIZE,
  META_FLAG_IS_REQUIRED,
  META_FLAG_IS_USER,
  METADATA_ENTRY_SIZE,
  METADATA_HEADER_SIZE,
  METADATA_ITEMS_START,
  METADATA_SIGNATURE,
  METADATA_TABLE_SIZE,
  MIN_BLOCK_SIZE,
  PARENT_LOCATOR_ENTRY_SIZE,
  PARENT_LOCATOR_HEADER_SIZE,
} from './layout.js';

/** Where a metadata item lives, relative to the start of the metadata region. */
export interface ItemLocation {
  readonly offset: number;
  readonly length: number;
}

/** The known items the file has (parentLocator only when present). */
export interface ItemLocations {
  readonly fileParameters: ItemLocation;
  readonly virtualDiskSize: ItemLocation;
  readonly page83: ItemLocation;
  readonly logicalSectorSize: ItemLocation;
  readonly physicalSectorSize: ItemLocation;
  readonly parentLocator?: ItemLocation;
}

export interface ItemBytes {
  readonly fileParameters: Buffer;
  readonly virtualDiskSize: Buffer;
  readonly page83: Buffer;
  readonly logicalSectorSize: Buffer;
  readonly physicalSectorSize: Buffer;
  readonly parentLocator: Buffer | undefined;
}

export interface ParentLocator {
  /** Lowercase GUID without braces: the parent's DataWriteGuid when the child was made. */
  readonly linkage: string;
  readonly linkage2?: string;
  readonly relativePath?: string;
  readonly volumePath?: string;
  readonly absoluteWin32Path?: string;
  /** The path Ferry follows: relative_path, else volume_path, else absolute_win32_path. */
  readonly path: string;
}

export interface VhdxMetadata {
  readonly blockSize: number;
  readonly leaveBlocksAllocated: boolean;
  readonly hasParent: boolean;
  readonly virtualSize: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly virtualDiskId: string;
  readonly parent?: ParentLocator;
  readonly warnings: readonly string[];
}

const KNOWN: Record<string, keyof ItemLocations> = {
  [GUID_FILE_PARAMETERS]: 'fileParameters',
  [GUID_VIRTUAL_DISK_SIZE]: 'virtualDiskSize',
  [GUID_PAGE83_DATA]: 'page83',
  [GUID_LOGICAL_SECTOR_SIZE]: 'logicalSectorSize',
  [GUID_PHYSICAL_SECTOR_SIZE]: 'physicalSectorSize',
  [GUID_PARENT_LOCATOR]: 'parentLocator',
};
/** Smallest length of each known item (its fixed fields). */
const MIN_LENGTH: Record<keyof ItemLocations, number> = {
  fileParameters: 8,
  virtualDiskSize: 8,
  page83: 16,
  logicalSectorSize: 4,
  physicalSectorSize: 4,
  parentLocator: PARENT_LOCATOR_HEADER_SIZE,
};

/**
 * Validates the metadata table (`buf`: the first 64 KiB of the region of `regionLength`
 * bytes) and returns where the known items are. Unknown items marked IsRequired make the
 * file unsupported (spec 2.6.1.2).
 */
export function locateItems(name: string, buf: Buffer, regionLength: number): ItemLocations {
  if (buf.length < METADATA_TABLE_SIZE || buf.toString('latin1', 0, 8) !== METADATA_SIGNATURE) {
    throw corrupt(
      name,
      'metadata.signature',
      buf.toString('latin1', 0, 8),
      'metadata table signature is wrong',
    );
  }
  const count = buf.readUInt16LE(10);
  if (count > MAX_METADATA_ENTRIES) {
    throw corrupt(name, 'metadata.entryCount', count, `metadata table has ${count} entries (at most 2047)`);
  }
  const found: Partial<Record<keyof ItemLocations, ItemLocation>> = {};
  const seen = new Set<string>();
  const extents: ItemLocation[] = [];
  let users = 0;
  for (let i = 0; i < count; i++) {
    const at = METADATA_HEADER_SIZE + i * METADATA_ENTRY_SIZE;
    const guid = readGuid(buf, at);
    const offset = buf.readUInt32LE(at + 16);
    const length = buf.readUInt32LE(at + 20);
    const flags = buf.readUInt32LE(at + 24);
    const isUser = (flags & META_FLAG_IS_USER) !== 0;
    const key = `${guid}/${isUser}`;
    if (seen.has(key)) throw corrupt(name, 'metadata.itemId', guid, `metadata item ${guid} is listed twice`);
    seen.add(key);
    if (isUser && ++users > MAX_USER_METADATA_ENTRIES) {
      throw corrupt(name, 'metadata.isUser', users, 'more than 1024 user metadata items');
    }
    if (length === 0 ? offset !== 0 : offset < METADATA_ITEMS_START || length > MAX_METADATA_ITEM_BYTES) {
      throw corrupt(
        name,
        'metadata.offset',
        offset,
        `metadata item ${guid} at ${offset} length ${length} is invalid`,
      );
    }
    if (offset + length > regionLength) {
      throw corrupt(name, 'metadata.offset', offset, `metadata item ${guid} ends past the metadata region`);
    }
    if (length > 0) extents.push({ offset, length });
    const known = isUser ? undefined : KNOWN[guid];
    if (known) {
      if (length < MIN_LENGTH[known]) {
        throw corrupt(name, `metadata.${known}`, length, `metadata item ${known} is ${length} bytes long`);
      }
      found[known] = { offset, length };
    } else if (flags & META_FLAG_IS_REQUIRED) {
      throw new ImageUnsupportedError(
        `${name}: VHDX requires metadata item ${guid}, which Ferry does not know`,
        {
          format: FORMAT,
          field: 'metadata.itemId',
          value: guid,
        },
      );
    }
  }
  extents.sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < extents.length; i++) {
    const prev = extents[i - 1] as ItemLocation;
    const cur = extents[i] as ItemLocation;
    if (prev.offset + prev.length > cur.offset) {
      throw corrupt(name, 'metadata.offset', cur.offset, 'metadata items overlap');
    }
  }
  for (const k of [
    'fileParameters',
    'virtualDiskSize',
    'page83',
    'logicalSectorSize',
    'physicalSectorSize',
  ] as const) {
    if (!found[k]) throw corrupt(name, `metadata.${k}`, 'missing', `required metadata item ${k} is missing`);
  }
  return Object.freeze(found as ItemLocations);
}

/** Decodes and checks the known items (spec 2.6.2). */
export function parseItems(name: string, items: ItemBytes): VhdxMetadata {
  const warnings: string[] = [];
  const blockSize = items.fileParameters.readUInt32LE(0);
  const bits = items.fileParameters.readUInt32LE(4);
  if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
    throw corrupt(
      name,
      'fileParameters.blockSize',
      blockSize,
      `block size ${blockSize} is not a power of two in 1-256 MiB`,
    );
  }
  const hasParent = (bits & FILE_PARAMS_HAS_PARENT) !== 0;
  const logicalSectorSize = items.logicalSectorSize.readUInt32LE(0);
  const physicalSectorSize = items.physicalSectorSize.readUInt32LE(0);
  for (const [field, v] of [
    ['logicalSectorSize', logicalSectorSize],
    ['physicalSectorSize', physicalSectorSize],
  ] as const) {
    if (v !== 512 && v !== 4096) throw corrupt(name, field, v, `${field} ${v} is neither 512 nor 4096`);
  }
  const size64 = items.virtualDiskSize.readBigUInt64LE(0);
  const limit = Math.min(MAX_VIRTUAL_SIZE, MAX_VHDX_VIRTUAL_SIZE);
  if (size64 > BigInt(limit)) {
    throw new ImageTooLargeError(`${name}: virtual size ${size64} exceeds the ${limit}-byte limit`, {
      format: FORMAT,
      field: 'virtualDiskSize',
      value: String(size64),
      limit,
    });
  }
  const virtualSize = Number(size64);
  if (virtualSize % logicalSectorSize !== 0) {
    throw corrupt(
      name,
      'virtualDiskSize',
      virtualSize,
      `virtual size ${virtualSize} is not a multiple of the sector size`,
    );
  }
  let parent: ParentLocator | undefined;
  if (hasParent) {
    if (!items.parentLocator)
      throw corrupt(name, 'parentLocator', 'missing', 'differencing disk without a parent locator');
    parent = parseParentLocator(name, items.parentLocator);
  } else if (items.parentLocator) {
    warnings.push('has a parent locator but HasParent is not set; the locator is ignored');
  }
  return Object.freeze({
    blockSize,
    leaveBlocksAllocated: (bits & FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED) !== 0,
    hasParent,
    virtualSize,
    logicalSectorSize,
    physicalSectorSize,
    virtualDiskId: readGuid(items.page83, 0),
    ...(parent ? { parent } : {}),
    warnings,
  });
}

/** The VHDX parent locator (spec 2.6.2.6): UTF-16LE key/value pairs. */
export function parseParentLocator(name: string, buf: Buffer): ParentLocator {
  const type = readGuid(buf, 0);
  if (type !== GUID_VHDX_PARENT_LOCATOR_TYPE) {
    throw new ImageUnsupportedError(`${name}: parent locator type ${type} is not a VHDX parent`, {
      format: FORMAT,
      field: 'parentLocator.locatorType',
      value: type,
    });
  }
  const count = buf.readUInt16LE(18);
  if (count > MAX_PARENT_LOCATOR_ENTRIES) {
    throw new ImageTooLargeError(`${name}: parent locator has ${count} entries`, {
      format: FORMAT,
      field: 'parentLocator.keyValueCount',
      value: count,
      limit: MAX_PARENT_LOCATOR_ENTRIES,
    });
  }
  if (PARENT_LOCATOR_HEADER_SIZE + count * PARENT_LOCATOR_ENTRY_SIZE > buf.length) {
    throw corrupt(name, 'parentLocator.keyValueCount', count, 'parent locator entries run past the item');
  }
  const kv = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const at = PARENT_LOCATOR_HEADER_SIZE + i * PARENT_LOCATOR_ENTRY_SIZE;
    const key = utf16(name, buf, buf.readUInt32LE(at), buf.readUInt16LE(at + 8), 'key');
    const value = utf16(name, buf, buf.readUInt32LE(at + 4), buf.readUInt16LE(at + 10), 'value');
    if (kv.has(key)) throw corrupt(name, 'parentLocator.key', key, `parent locator key ${key} appears twice`);
    kv.set(key, value);
  }
  const linkageText = kv.get('parent_linkage');
  const linkage = linkageText === undefined ? undefined : parseGuidText(linkageText);
  if (!linkage) {
    throw corrupt(
      name,
      'parentLocator.parent_linkage',
      linkageText ?? 'missing',
      'parent_linkage is missing or not a GUID',
    );
  }
  const linkage2Text = kv.get('parent_linkage2');
  const linkage2 = linkage2Text === undefined ? undefined : parseGuidText(linkage2Text);
  if (linkage2Text !== undefined && !linkage2) {
    throw corrupt(name, 'parentLocator.parent_linkage2', linkage2Text, 'parent_linkage2 is not a GUID');
  }
  const relativePath = kv.get('relative_path');
  const volumePath = kv.get('volume_path');
  const absoluteWin32Path = kv.get('absolute_win32_path');
  const path = relativePath ?? volumePath ?? absoluteWin32Path;
  if (path === undefined) {
    throw corrupt(name, 'parentLocator.relative_path', 'missing', 'parent locator names no parent path');
  }
  return Object.freeze({
    linkage,
    ...(linkage2 ? { linkage2 } : {}),
    ...(relativePath !== undefined ? { relativePath } : {}),
    ...(volumePath !== undefined ? { volumePath } : {}),
    ...(absoluteWin32Path !== undefined ? { absoluteWin32Path } : {}),
    path,
  });
}

function utf16(name: string, buf: Buffer, offset: number, length: number, what: string): string {
  if (offset === 0 || length === 0 || length % 2 !== 0 || offset + length > buf.length) {
    throw corrupt(
      name,
      `parentLocator.${what}Offset`,
      offset,
      `parent locator ${what} at ${offset} length ${length} is invalid`,
    );
  }
  const text = buf.toString('utf16le', offset, offset + length);
  if (text.includes('\0'))
    throw corrupt(name, `parentLocator.${what}`, 'NUL', `parent locator ${what} contains NUL`);
  return text;
}

function corrupt(name: string, field: string, value: string | number, what: string): FerryError {
  return new ImageCorruptError(`${name}: ${what}`, { format: FORMAT, field, value });
}
