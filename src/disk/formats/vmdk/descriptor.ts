/**
 * The VMDK text descriptor (spec "The Descriptor File"): header keys, extent lines and the
 * disk database (ddb.*). Pure: text in, frozen values out; and the writer's text.
 *
 *   # Disk DescriptorFile
 *   version=1
 *   CID=12345678
 *   parentCID=ffffffff
 *   createType="twoGbMaxExtentSparse"
 *   parentFileNameHint="base.vmdk"            (delta disks only)
 *   RW 4192256 SPARSE "disk-s001.vmdk"         access sectors type "file" [offset]
 *   RW 2048 FLAT "disk-flat.vmdk" 0
 *   RW 1024 ZERO
 *   ddb.adapterType = "lsilogic"
 *
 * Tolerant where real files vary (CRLF, comments, blank lines, quoted or unquoted values,
 * key case), strict where a wrong value would misplace data (numbers, extent lines).
 */
import { ImageCorruptError, ImageTooLargeError, ImageUnsupportedError } from '../../../errors/index.js';
import { MAX_DESCRIPTOR_BYTES, MAX_VIRTUAL_SIZE, MAX_VMDK_EXTENTS } from '../../limits.js';
import { CID_NONE, SECTOR } from './layout.js';

export const EXTENT_ACCESS = ['RW', 'RDONLY', 'NOACCESS'] as const;
export type ExtentAccess = (typeof EXTENT_ACCESS)[number];

/** Extent types Ferry reads; VMFS is a flat extent, VMFSSPARSE a COWD/KDMV sparse file. */
export const READABLE_EXTENT_TYPES = ['SPARSE', 'FLAT', 'ZERO', 'VMFS', 'VMFSSPARSE'] as const;
export type ExtentType = (typeof READABLE_EXTENT_TYPES)[number];
/** Known but refused: raw device mappings point at devices, seSparse is undocumented. */
const UNSUPPORTED_EXTENT_TYPES = ['VMFSRDM', 'VMFSRAW', 'VMFSRDMP', 'SESPARSE'];

/** createType values whose extents Ferry knows how to read. */
export const READABLE_CREATE_TYPES = [
  'monolithicSparse',
  'monolithicFlat',
  'twoGbMaxExtentSparse',
  'twoGbMaxExtentFlat',
  'streamOptimized',
  'vmfs',
  'vmfsThin',
  'vmfsSparse',
  'vmfsPreallocated',
  'vmfsEagerZeroedThick',
] as const;

export interface DescriptorExtent {
  readonly access: ExtentAccess;
  readonly sectors: number;
  readonly type: ExtentType;
  /** File name as stored (absent for ZERO extents). */
  readonly file?: string;
  /** FLAT/VMFS: sector in the file where the extent starts. */
  readonly offsetSectors: number;
}

export interface Descriptor {
  readonly version: number;
  readonly cid: number | undefined;
  readonly parentCid: number | undefined;
  readonly createType: string | undefined;
  readonly parentFileNameHint: string | undefined;
  readonly extents: readonly DescriptorExtent[];
  /** Total of the extents, in bytes. */
  readonly extentBytes: number;
  /** ddb.* entries (adapterType, virtualHWVersion, geometry, …), values unquoted. */
  readonly ddb: Readonly<Record<string, string>>;
}

/** Descriptor bytes → text: stops at the first NUL (embedded descriptors are NUL padded). */
export function descriptorText(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('utf8', 0, nul < 0 ? buf.length : nul);
}

/** CIDs are shown and compared as 8 lowercase hex digits. */
export function formatCid(cid: number): string {
  return cid.toString(16).padStart(8, '0');
}

const EXTENT_LINE = /^(RW|RDONLY|NOACCESS)\s+(\S+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\S+))?)?\s*$/;
const KEY_VALUE = /^([A-Za-z][\w.]*)\s*=\s*(.*)$/;
const MAX_DDB_ENTRIES = 256;

/**
 * Parses a descriptor. `embedded`: the descriptor of a monolithic sparse file, whose
 * extent lines only restate the file itself (QEMU ignores them too): they are not checked.
 */
export function parseDescriptor(text: string, source: string, options: { embedded: boolean }): Descriptor {
  if (Buffer.byteLength(text) > MAX_DESCRIPTOR_BYTES) {
    throw new ImageTooLargeError(`${source}: descriptor larger than ${MAX_DESCRIPTOR_BYTES} bytes`, {
      format: 'vmdk',
      field: 'descriptor',
      limit: MAX_DESCRIPTOR_BYTES,
    });
  }
  const values = new Map<string, string>();
  const ddb: Record<string, string> = {};
  const extents: DescriptorExtent[] = [];
  let total = 0;
  let ddbCount = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const word = /^\S+/.exec(line)?.[0] ?? '';
    if ((EXTENT_ACCESS as readonly string[]).includes(word)) {
      if (options.embedded) continue;
      const extent = parseExtentLine(line, i + 1, source);
      if (extents.length >= MAX_VMDK_EXTENTS) {
        throw new ImageTooLargeError(`${source}: more than ${MAX_VMDK_EXTENTS} extents`, {
          format: 'vmdk',
          field: 'extents',
          limit: MAX_VMDK_EXTENTS,
        });
      }
      total += extent.sectors * SECTOR;
      if (total > MAX_VIRTUAL_SIZE) {
        throw new ImageTooLargeError(`${source}: extents add up to more than ${MAX_VIRTUAL_SIZE} bytes`, {
          format: 'vmdk',
          field: 'extents',
          value: total,
          limit: MAX_VIRTUAL_SIZE,
        });
      }
      extents.push(extent);
      continue;
    }
    const kv = KEY_VALUE.exec(line);
    if (!kv) continue; // unknown line: VMware and QEMU skip them too
    const key = (kv[1] as string).toLowerCase();
    const value = unquote(kv[2] as string);
    if (key.startsWith('ddb.')) {
      if (ddbCount++ < MAX_DDB_ENTRIES && !(key in ddb)) ddb[key.slice(4)] = value;
    } else if (!values.has(key)) {
      values.set(key, value); // first wins, as QEMU's strstr() lookups do
    }
  }
  const version = parseVersion(values.get('version'), source);
  return Object.freeze({
    version,
    cid: parseCid(values.get('cid'), 'CID', source),
    parentCid: parseCid(values.get('parentcid'), 'parentCID', source),
    createType: values.get('createtype'),
    parentFileNameHint: nonEmpty(values.get('parentfilenamehint')),
    extents: Object.freeze(extents),
    extentBytes: total,
    ddb: Object.freeze(ddb),
  });
}

function parseExtentLine(line: string, lineNo: number, source: string): DescriptorExtent {
  const m = EXTENT_LINE.exec(line);
  const bad = (why: string): never => {
    throw new ImageCorruptError(`${source}: invalid extent line ${lineNo} (${why}): ${line.slice(0, 200)}`, {
      format: 'vmdk',
      field: 'extent',
      line: lineNo,
    });
  };
  if (!m) return bad('expected ACCESS SECTORS TYPE "file" [offset]');
  const access = m[1] as ExtentAccess;
  const type = (m[3] as string).toUpperCase();
  const file = m[4];
  if (UNSUPPORTED_EXTENT_TYPES.includes(type)) {
    throw new ImageUnsupportedError(`${source}: extent type ${type} (line ${lineNo}) is not supported`, {
      format: 'vmdk',
      field: 'extent type',
      value: type,
    });
  }
  if (!(READABLE_EXTENT_TYPES as readonly string[]).includes(type)) bad(`unknown extent type ${type}`);
  if (access === 'NOACCESS') {
    throw new ImageUnsupportedError(`${source}: extent on line ${lineNo} is NOACCESS (not readable)`, {
      format: 'vmdk',
      field: 'extent access',
      value: access,
    });
  }
  const sectors = parseSectors(m[2] as string, 'extent size', source, lineNo);
  if (sectors === 0) bad('zero sectors');
  const flat = type === 'FLAT' || type === 'VMFS';
  if (type !== 'ZERO' && (file === undefined || file === '')) bad('missing file name');
  if (m[5] !== undefined && !flat) bad('an offset is only valid for FLAT and VMFS extents');
  if (type === 'FLAT' && m[5] === undefined) bad('FLAT extents need an offset');
  const offsetSectors = m[5] === undefined ? 0 : parseSectors(m[5], 'extent offset', source, lineNo);
  return Object.freeze({
    access,
    sectors,
    type: type as ExtentType,
    ...(type === 'ZERO' ? {} : { file: file as string }),
    offsetSectors,
  });
}

/** Decimal sector counts only; anything that could overflow is refused before arithmetic. */
function parseSectors(text: string, field: string, source: string, line: number): number {
  const max = MAX_VIRTUAL_SIZE / SECTOR;
  if (!/^\d{1,20}$/.test(text)) {
    throw new ImageCorruptError(
      `${source}: ${field} ${JSON.stringify(text)} on line ${line} is not a number`,
      {
        format: 'vmdk',
        field,
        line,
      },
    );
  }
  const n = BigInt(text);
  if (n > BigInt(max)) {
    throw new ImageTooLargeError(`${source}: ${field} ${text} on line ${line} exceeds ${max} sectors`, {
      format: 'vmdk',
      field,
      value: text,
      limit: max,
    });
  }
  return Number(n);
}

function parseVersion(text: string | undefined, source: string): number {
  if (text === undefined) {
    throw new ImageCorruptError(`${source}: descriptor has no version= line`, {
      format: 'vmdk',
      field: 'version',
    });
  }
  if (!/^[1-3]$/.test(text)) {
    throw new ImageUnsupportedError(`${source}: descriptor version ${text.slice(0, 20)} is not supported`, {
      format: 'vmdk',
      field: 'version',
      value: text.slice(0, 20),
    });
  }
  return Number(text);
}

function parseCid(text: string | undefined, field: string, source: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9a-fA-F]{1,8}$/.test(text)) {
    throw new ImageCorruptError(
      `${source}: ${field} ${JSON.stringify(text.slice(0, 40))} is not 1–8 hex digits`,
      {
        format: 'vmdk',
        field,
      },
    );
  }
  return parseInt(text, 16);
}

function unquote(value: string): string {
  const v = value.trim();
  const m = /^"([^"]*)"/.exec(v);
  return m ? (m[1] as string) : v;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

// ── Writing ─────────────────────────────────────────────────────────────────────────

export interface DescriptorSpec {
  readonly cid: number;
  readonly createType: 'streamOptimized' | 'monolithicSparse';
  readonly capacitySectors: number;
  readonly fileName: string;
}

/**
 * The embedded descriptor Ferry writes: QEMU's layout with VMware's ddb keys. The geometry
 * uses VMware's 255 heads × 63 sectors for SCSI disks (cylinders capped at 65535).
 */
export function formatDescriptor(spec: DescriptorSpec): string {
  const cylinders = Math.min(65535, Math.max(1, Math.floor(spec.capacitySectors / (255 * 63))));
  return [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${formatCid(spec.cid)}`,
    `parentCID=${formatCid(CID_NONE)}`,
    `createType="${spec.createType}"`,
    '',
    '# Extent description',
    `RW ${spec.capacitySectors} SPARSE "${spec.fileName.replace(/"/g, '')}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.virtualHWVersion = "4"',
    `ddb.geometry.cylinders = "${cylinders}"`,
    'ddb.geometry.heads = "255"',
    'ddb.geometry.sectors = "63"',
    'ddb.adapterType = "lsilogic"',
    '',
  ].join('\n');
}

// ── Probing ─────────────────────────────────────────────────────────────────────────

/**
 * True when text looks like a descriptor: it starts with "# Disk DescriptorFile", or (QEMU's
 * rule) its first line that is neither blank nor a comment is `version=1|2|3` and a
 * createType= line follows. Only the start of the file is given.
 */
export function looksLikeDescriptor(text: string): boolean {
  const body = text.replace(/^\uFEFF/, '');
  if (/^\s*#\s*Disk\s+DescriptorFile/i.test(body)) return true;
  for (const raw of body.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    return /^version\s*=\s*"?[1-3]"?$/i.test(line) && /^\s*createType\s*=/im.test(body);
  }
  return false;
}
