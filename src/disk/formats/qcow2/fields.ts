/** Low-level header field checks shared by header.ts (bounds, truncation, bit lists). */
import { ImageTruncatedError } from '../../../errors/index.js';
import { corrupt, pastEnd } from './errors.js';

/**
 * A cluster-aligned table of `bytes` at the u64 offset stored at `field`: aligned, not
 * overlapping the header cluster, inside the file. Returns the offset (0 when empty).
 */
export function checkTable(
  buf: Buffer,
  field: number,
  bytes: number,
  cs: number,
  fileSize: number,
  file: string,
  name: string,
  what: string,
): number {
  const raw = buf.readBigUInt64BE(field);
  if (bytes === 0) return 0;
  if (raw % BigInt(cs) !== 0n) throw corrupt(file, name, `${what} offset is not cluster aligned`, raw);
  if (raw === 0n) throw corrupt(file, name, `${what} overlaps the header`, raw);
  if (raw + BigInt(bytes) > BigInt(fileSize)) {
    throw pastEnd(
      file,
      name,
      what,
      raw > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(raw),
      bytes,
      fileSize,
    );
  }
  return Number(raw);
}

export function need(buf: Buffer, bytes: number, file: string): void {
  if (buf.length < bytes) {
    throw new ImageTruncatedError(
      `${file}: qcow2 header needs ${bytes} bytes but the file has ${buf.length}`,
      {
        format: 'qcow2',
        field: 'header',
        length: bytes,
        size: buf.length,
      },
    );
  }
}

export function bitList(mask: bigint): number[] {
  const out: number[] = [];
  for (let b = 0; b < 64; b++) if ((mask >> BigInt(b)) & 1n) out.push(b);
  return out;
}
