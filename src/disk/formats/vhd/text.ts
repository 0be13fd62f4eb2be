/**
 * Text stored in VHD headers and parent locators. The spec says "UTF-16" without a byte
 * order: the header's parent name is big-endian and W2ru/W2ku locators little-endian in
 * every producer we know (Virtual PC, Hyper-V, VirtualBox, libvhd), but some tools write
 * the other order, so a byte-order mark or the position of the zero bytes of ASCII
 * characters decides, and the usual order is the default.
 */

/** Decodes UTF-16 up to the first NUL; `usual` is the byte order when nothing says otherwise. */
export function decodeUtf16(bytes: Buffer, usual: 'be' | 'le'): string {
  let body = bytes.subarray(0, bytes.length - (bytes.length % 2));
  let order = usual;
  if (body[0] === 0xfe && body[1] === 0xff) {
    order = 'be';
    body = body.subarray(2);
  } else if (body[0] === 0xff && body[1] === 0xfe) {
    order = 'le';
    body = body.subarray(2);
  } else {
    // ASCII characters have their zero byte first in big-endian, second in little-endian.
    let zeroFirst = 0;
    let zeroSecond = 0;
    for (let i = 0; i + 1 < body.length && i < 512; i += 2) {
      const a = body[i] as number;
      const b = body[i + 1] as number;
      if (a === 0 && b === 0) break;
      if (a === 0) zeroFirst++;
      else if (b === 0) zeroSecond++;
    }
    if (zeroFirst > zeroSecond) order = 'be';
    else if (zeroSecond > zeroFirst) order = 'le';
  }
  const le = order === 'be' ? Buffer.from(body).swap16() : body;
  return cutAtNul(le.toString('utf16le'));
}

/** Decodes UTF-8 (MacX file URLs, deprecated Wi2r/Wi2k paths) up to the first NUL. */
export function decodeUtf8(bytes: Buffer): string {
  return cutAtNul(bytes.toString('utf8'));
}

function cutAtNul(s: string): string {
  const nul = s.indexOf('\0');
  return nul === -1 ? s : s.slice(0, nul);
}
