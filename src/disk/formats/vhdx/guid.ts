/**
 * Microsoft GUIDs in binary form: Data1 (uint32), Data2 and Data3 (uint16) little-endian,
 * then Data4 as 8 plain bytes. Ferry shows them lowercase without braces, the way
 * `qemu-img info` and PowerShell's Get-VHD print them.
 */

/** The GUID stored at `buf[offset..offset+16]`, as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
export function readGuid(buf: Buffer, offset: number): string {
  const d1 = buf.readUInt32LE(offset).toString(16).padStart(8, '0');
  const d2 = buf
    .readUInt16LE(offset + 4)
    .toString(16)
    .padStart(4, '0');
  const d3 = buf
    .readUInt16LE(offset + 6)
    .toString(16)
    .padStart(4, '0');
  const d4 = buf.toString('hex', offset + 8, offset + 10);
  const d5 = buf.toString('hex', offset + 10, offset + 16);
  return `${d1}-${d2}-${d3}-${d4}-${d5}`;
}

const GUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses "xxxxxxxx-…" or "{xxxxxxxx-…}" (any case) to its lowercase form, or undefined. */
export function parseGuidText(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  const bare = t.startsWith('{') && t.endsWith('}') ? t.slice(1, -1) : t;
  return GUID_TEXT.test(bare) ? bare : undefined;
}

/** Writes a GUID (string form) into `buf` at `offset` in binary form. */
export function writeGuid(buf: Buffer, offset: number, guid: string): void {
  const g = parseGuidText(guid);
  if (!g) throw new Error(`not a GUID: ${guid}`);
  const hex = g.replace(/-/g, '');
  buf.writeUInt32LE(parseInt(hex.slice(0, 8), 16), offset);
  buf.writeUInt16LE(parseInt(hex.slice(8, 12), 16), offset + 4);
  buf.writeUInt16LE(parseInt(hex.slice(12, 16), 16), offset + 6);
  Buffer.from(hex.slice(16), 'hex').copy(buf, offset + 8);
}

export const ZERO_GUID = '00000000-0000-0000-0000-000000000000';
