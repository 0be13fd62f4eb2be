/**
 * The metadata log (spec 2.3): finding the active sequence and turning it into the list
 * of sector writes a replay would perform. Ferry never writes the file: overlay.ts applies
 * these writes in memory on every read (spec note <5>: a read-only open must replay the
 * log in memory or refuse the file).
 *
 * ```
 *  log region (LogLength bytes, a ring of 4 KiB sectors):
 *  … | entry: [hdr "loge" + descriptors][desc sectors…][data sector]… | entry … | (wraps)
 *  header: sig, CRC-32C (whole entry, field zeroed), EntryLength, Tail, SequenceNumber,
 *          DescriptorCount, reserved, LogGuid, FlushedFileOffset, LastFileOffset
 *  descriptor "desc": TrailingBytes(4) LeadingBytes(8) FileOffset SequenceNumber → 1 data sector
 *  descriptor "zero": reserved(4) ZeroLength(8) FileOffset SequenceNumber
 *  data sector: "data" SequenceHigh(4) bytes 8..4091 of the update SequenceLow(4)
 * ```
 */
import {
  ImageCorruptError,
  ImageTooLargeError,
  ImageTruncatedError,
  type FerryError,
} from '../../../errors/index.js';
import { crc32cWithZeroedField } from './crc32c.js';
import { writeGuid } from './guid.js';
import {
  FORMAT,
  LOG_CHECKSUM_OFFSET,
  LOG_DATA_DESCRIPTOR_SIGNATURE,
  LOG_DATA_SECTOR_SIGNATURE,
  LOG_DESCRIPTOR_SIZE,
  LOG_ENTRY_HEADER_SIZE,
  LOG_ENTRY_SIGNATURE,
  LOG_LEADING_BYTES,
  LOG_PROTECTED_END,
  LOG_SECTOR_SIZE,
  LOG_TRAILING_BYTES,
  LOG_ZERO_DESCRIPTOR_SIGNATURE,
  MAX_FILE_OFFSET,
  MAX_LOG_DESCRIPTORS,
} from './layout.js';

/** One write of the replay: 4 KiB of `data`, or zeros when `data` is absent. */
export interface LogWrite {
  readonly start: number;
  readonly end: number;
  readonly data?: Buffer;
}

export interface LogReplay {
  readonly entries: number;
  readonly headSequence: bigint;
  /** In replay order: a later write wins where two overlap. */
  readonly writes: readonly LogWrite[];
  /** The file's size once replayed (at least the head entry's LastFileOffset). */
  readonly fileSize: number;
}

interface Entry {
  readonly sector: number;
  readonly sectors: number;
  readonly seq: bigint;
  readonly tail: number;
  readonly flushed: bigint;
  readonly last: bigint;
  readonly bytes: Buffer;
  readonly descriptors: number;
  readonly descSectors: number;
}

/**
 * Checksumming budget, as a multiple of the log size. Real logs hold non-overlapping
 * entries (the sum of their lengths is at most the log); a forged log whose every sector
 * claims to start a log-sized entry would otherwise cost (log size)² of CRC work.
 */
const CRC_BUDGET_FACTOR = 4;

/**
 * Finds the active sequence of `log` (the whole log region) and returns its writes.
 * Throws when the log cannot be replayed safely: no valid sequence (spec 2.3.3: the file
 * is corrupt), the file shorter than the head's FlushedFileOffset (truncated), or a write
 * into the headers or the log itself.
 */
export function replayLog(
  name: string,
  log: Buffer,
  opts: { readonly logGuid: string; readonly logOffset: number; readonly fileSize: number },
): LogReplay {
  const guid = Buffer.alloc(16);
  writeGuid(guid, 0, opts.logGuid);
  const sequence = activeSequence(name, log, guid);
  const head = sequence[sequence.length - 1] as Entry;
  if (head.flushed > BigInt(opts.fileSize)) {
    throw new ImageTruncatedError(
      `${name}: the VHDX log says the file was at least ${head.flushed} bytes, but it has ${opts.fileSize}`,
      { format: FORMAT, field: 'log.flushedFileOffset', value: String(head.flushed), size: opts.fileSize },
    );
  }
  if (head.last > BigInt(MAX_FILE_OFFSET)) {
    throw corrupt(name, 'log.lastFileOffset', String(head.last), `log LastFileOffset ${head.last} is absurd`);
  }
  const total = sequence.reduce((n, e) => n + e.descriptors, 0);
  if (total > MAX_LOG_DESCRIPTORS) {
    throw new ImageTooLargeError(`${name}: the VHDX log holds ${total} descriptors`, {
      format: FORMAT,
      field: 'log.descriptorCount',
      value: total,
      limit: MAX_LOG_DESCRIPTORS,
    });
  }
  const logEnd = opts.logOffset + log.length;
  let fileSize = Math.max(opts.fileSize, Number(head.last));
  const writes: LogWrite[] = [];
  for (const e of sequence) {
    let data = 0;
    for (let d = 0; d < e.descriptors; d++) {
      const at = LOG_ENTRY_HEADER_SIZE + d * LOG_DESCRIPTOR_SIZE;
      const isData = e.bytes.toString('latin1', at, at + 4) === LOG_DATA_DESCRIPTOR_SIGNATURE;
      const start64 = e.bytes.readBigUInt64LE(at + 16);
      const length64 = isData ? BigInt(LOG_SECTOR_SIZE) : e.bytes.readBigUInt64LE(at + 8);
      if (start64 + length64 > BigInt(MAX_FILE_OFFSET)) {
        throw corrupt(
          name,
          'log.fileOffset',
          String(start64),
          `log write at ${start64} is past any possible file`,
        );
      }
      const start = Number(start64);
      const end = start + Number(length64);
      if (end > start && (start < LOG_PROTECTED_END || (start < logEnd && opts.logOffset < end))) {
        throw corrupt(
          name,
          'log.fileOffset',
          start,
          `log writes into the ${start < LOG_PROTECTED_END ? 'headers' : 'log'}`,
        );
      }
      if (isData) {
        const sector = (e.descSectors + data++) * LOG_SECTOR_SIZE;
        const buf = Buffer.allocUnsafe(LOG_SECTOR_SIZE);
        e.bytes.copy(buf, 0, at + 8, at + 16); // LeadingBytes
        e.bytes.copy(buf, LOG_LEADING_BYTES, sector + 8, sector + LOG_SECTOR_SIZE - LOG_TRAILING_BYTES);
        e.bytes.copy(buf, LOG_SECTOR_SIZE - LOG_TRAILING_BYTES, at + 4, at + 8); // TrailingBytes
        writes.push({ start, end, data: buf });
      } else if (end > start) {
        writes.push({ start, end });
      }
      fileSize = Math.max(fileSize, end);
    }
  }
  return { entries: sequence.length, headSequence: head.seq, writes, fileSize };
}

/**
 * The active sequence (spec 2.3.3): among sequences of valid entries, each one sequence
 * number after the previous and following it in the ring, whose head's Tail points at an
 * entry of the sequence, the one with the highest head sequence number; from the entry the
 * head's Tail names to the head. Equivalent to the spec's scan: a head that is not the end
 * of its run of entries is never the head of the run's scan.
 */
function activeSequence(name: string, log: Buffer, guid: Buffer): Entry[] {
  const sectors = log.length / LOG_SECTOR_SIZE;
  const budget = { bytes: CRC_BUDGET_FACTOR * log.length };
  const valid = new Map<number, Entry>();
  for (let s = 0; s < sectors; s++) {
    const e = validEntry(name, log, s, guid, budget);
    if (e) valid.set(s, e);
  }
  const next = (e: Entry): Entry | undefined => {
    const n = valid.get((e.sector + e.sectors) % sectors);
    return n && n.seq === e.seq + 1n ? n : undefined;
  };
  let best: Entry[] | undefined;
  for (const head of valid.values()) {
    if (next(head) || head.tail % LOG_SECTOR_SIZE !== 0 || head.tail >= log.length) continue;
    if (best && (best[best.length - 1] as Entry).seq >= head.seq) continue;
    let cur = valid.get(head.tail / LOG_SECTOR_SIZE);
    const run: Entry[] = [];
    let used = 0;
    while (cur && cur !== head && used <= sectors) {
      run.push(cur);
      used += cur.sectors;
      cur = next(cur);
    }
    if (cur !== head || used + head.sectors > sectors) continue;
    run.push(head);
    best = run;
  }
  if (!best) {
    throw corrupt(
      name,
      'log',
      valid.size,
      valid.size === 0
        ? 'the VHDX header names a log but the log holds no valid entry (spec: the file is corrupt)'
        : 'the VHDX log holds entries but no complete sequence to replay',
    );
  }
  return best;
}

/** The entry starting at log sector `s`, if it is valid (spec 2.3.1), else undefined. */
function validEntry(
  name: string,
  log: Buffer,
  s: number,
  guid: Buffer,
  budget: { bytes: number },
): Entry | undefined {
  const at = s * LOG_SECTOR_SIZE;
  if (log.toString('latin1', at, at + 4) !== LOG_ENTRY_SIGNATURE) return undefined;
  if (!log.subarray(at + 32, at + 48).equals(guid)) return undefined;
  const length = log.readUInt32LE(at + 8);
  const seq = log.readBigUInt64LE(at + 16);
  const descriptors = log.readUInt32LE(at + 24);
  if (length === 0 || length % LOG_SECTOR_SIZE !== 0 || length > log.length || seq === 0n) return undefined;
  const sectors = length / LOG_SECTOR_SIZE;
  const descSectors = Math.ceil((descriptors + 2) / (LOG_SECTOR_SIZE / LOG_DESCRIPTOR_SIZE));
  if (descSectors > sectors) return undefined;
  budget.bytes -= length;
  if (budget.bytes < 0) {
    throw corrupt(name, 'log', s, 'the VHDX log has too many overlapping entries to validate');
  }
  // An entry may wrap around the end of the ring.
  const bytes =
    at + length <= log.length
      ? log.subarray(at, at + length)
      : Buffer.concat([log.subarray(at), log.subarray(0, at + length - log.length)]);
  if (crc32cWithZeroedField(bytes, LOG_CHECKSUM_OFFSET) !== bytes.readUInt32LE(LOG_CHECKSUM_OFFSET))
    return undefined;
  let data = 0;
  for (let d = 0; d < descriptors; d++) {
    const p = LOG_ENTRY_HEADER_SIZE + d * LOG_DESCRIPTOR_SIZE;
    const sig = bytes.toString('latin1', p, p + 4);
    if (bytes.readBigUInt64LE(p + 24) !== seq || bytes.readBigUInt64LE(p + 16) % 4096n !== 0n)
      return undefined;
    if (sig === LOG_DATA_DESCRIPTOR_SIGNATURE) data++;
    else if (sig !== LOG_ZERO_DESCRIPTOR_SIGNATURE || bytes.readBigUInt64LE(p + 8) % 4096n !== 0n)
      return undefined;
  }
  if (descSectors + data > sectors) return undefined;
  for (let d = 0; d < data; d++) {
    const p = (descSectors + d) * LOG_SECTOR_SIZE;
    if (
      bytes.toString('latin1', p, p + 4) !== LOG_DATA_SECTOR_SIGNATURE ||
      bytes.readUInt32LE(p + 4) !== Number(seq >> 32n) ||
      bytes.readUInt32LE(p + LOG_SECTOR_SIZE - 4) !== Number(seq & 0xffffffffn)
    ) {
      return undefined;
    }
  }
  return {
    sector: s,
    sectors,
    seq,
    tail: log.readUInt32LE(at + 12),
    flushed: log.readBigUInt64LE(at + 48),
    last: log.readBigUInt64LE(at + 56),
    bytes,
    descriptors,
    descSectors,
  };
}

function corrupt(name: string, field: string, value: string | number, what: string): FerryError {
  return new ImageCorruptError(`${name}: ${what}`, { format: FORMAT, field, value });
}
