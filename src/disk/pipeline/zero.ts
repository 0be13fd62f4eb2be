/** Zero detection by memcmp against a shared zero page (Buffer.equals is native). */
const ZERO = Buffer.alloc(4 * 1024 * 1024);

export function isAllZero(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += ZERO.length) {
    const n = Math.min(ZERO.length, buf.length - off);
    if (!buf.subarray(off, off + n).equals(ZERO.subarray(0, n))) return false;
  }
  return true;
}

/** A read-only view of `length` zero bytes, at most 4 MiB. */
export function zeros(length: number): Buffer {
  return ZERO.subarray(0, length);
}

export const ZERO_BUFFER_BYTES = ZERO.length;
