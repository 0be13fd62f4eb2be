/**
 * qcow2 header extensions (spec "Header extensions"): a list of [type u32][length u32]
 * [data padded to 8] records right after the header, ended by type 0, and never past the
 * backing file name (or the end of cluster 0). Parsed as QEMU's qcow2_read_extensions()
 * does: a record whose data would pass that end is corrupt; unknown types are skipped.
 */
import { corrupt } from './errors.js';
import {
  EXT,
  EXT_HEADER_BYTES,
  FEATURE_NAME_BYTES,
  FEATURE_NAME_ENTRY_BYTES,
  MAX_BACKING_FORMAT_BYTES,
} from './layout.js';
import { ImageTruncatedError } from '../../../errors/index.js';

export interface FeatureName {
  /** 0 incompatible, 1 compatible, 2 autoclear. */
  readonly type: number;
  readonly bit: number;
  readonly name: string;
}

export interface Extensions {
  readonly backingFormat?: string;
  readonly dataFile?: string;
  readonly featureNames: readonly FeatureName[];
  readonly bitmaps: boolean;
  readonly encryptionHeader: boolean;
  /** Types seen that Ferry does not interpret (for `info` details). */
  readonly unknown: readonly number[];
}

/**
 * Parses the extension area [start, end) of `cluster0` (the first cluster, or the whole
 * file when shorter). Bounded: every record advances by at least 8 bytes and `end` is at
 * most one cluster (2 MiB).
 */
export function parseExtensions(cluster0: Buffer, start: number, end: number, file: string): Extensions {
  let backingFormat: string | undefined;
  let dataFile: string | undefined;
  let bitmaps = false;
  let encryptionHeader = false;
  const featureNames: FeatureName[] = [];
  const unknown: number[] = [];
  let offset = start;
  while (offset < end) {
    if (offset + EXT_HEADER_BYTES > cluster0.length) throw truncatedHeader(file, offset, cluster0.length);
    const type = cluster0.readUInt32BE(offset);
    const length = cluster0.readUInt32BE(offset + 4);
    offset += EXT_HEADER_BYTES;
    if (offset > end || length > end - offset) {
      throw corrupt(file, 'header_extension', `header extension 0x${hex(type)} too large`, length, {
        offset: offset - EXT_HEADER_BYTES,
        end,
      });
    }
    if (type === EXT.end) break;
    if (offset + length > cluster0.length) throw truncatedHeader(file, offset, cluster0.length);
    const data = cluster0.subarray(offset, offset + length);
    switch (type) {
      case EXT.backingFormat:
        if (length > MAX_BACKING_FORMAT_BYTES) {
          throw corrupt(file, 'backing_format', 'backing format name too long', length);
        }
        backingFormat = data.toString('latin1');
        break;
      case EXT.dataFile:
        if (length === 0) throw corrupt(file, 'data_file', 'empty external data file name', 0);
        dataFile = data.toString('utf8');
        break;
      case EXT.featureNameTable:
        for (let i = 0; i + FEATURE_NAME_ENTRY_BYTES <= length; i += FEATURE_NAME_ENTRY_BYTES) {
          const raw = data.subarray(i + 2, i + 2 + FEATURE_NAME_BYTES);
          const nul = raw.indexOf(0);
          featureNames.push({
            type: data[i] as number,
            bit: data[i + 1] as number,
            name: raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1'),
          });
        }
        break;
      case EXT.bitmaps:
        bitmaps = true;
        break;
      case EXT.fullDiskEncryption:
        encryptionHeader = true;
        break;
      default:
        unknown.push(type);
    }
    // Records are padded to 8 bytes; `end` bounds the padded length too.
    offset += Math.ceil(length / 8) * 8;
  }
  return Object.freeze({
    ...(backingFormat !== undefined ? { backingFormat } : {}),
    ...(dataFile !== undefined ? { dataFile } : {}),
    featureNames: Object.freeze(featureNames),
    bitmaps,
    encryptionHeader,
    unknown: Object.freeze(unknown),
  });
}

function truncatedHeader(file: string, offset: number, size: number): Error {
  return new ImageTruncatedError(`${file}: qcow2 header extensions run past the end of the file`, {
    format: 'qcow2',
    field: 'header_extension',
    offset,
    size,
  });
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
