/**
 * Finding the footer and opening the right kind of layer.
 *
 * Where the footer is (spec, and QEMU's vpc_open):
 * - dynamic and differencing disks carry a copy at offset 0, which QEMU (and Ferry) use;
 *   the footer at the end of the file should be identical (a warning when it is not);
 * - a fixed disk has its footer only in the last 512 bytes. The pre-2004 511-byte footer
 *   is not recognised (QEMU does not recognise it either).
 */
import { ImageCorruptError, ImageTruncatedError } from '../../../errors/index.js';
import type { ByteSource } from '../../io/byte-source.js';
import type { DiskLayer } from '../../layer.js';
import { parseBat } from './bat.js';
import {
  dynamicHeaderOffset,
  hasFooterCookie,
  parseDynamicHeader,
  parseFooter,
  vhdChecksum,
} from './header.js';
import { DISK_TYPE, DYN_HEADER_SIZE, F, FOOTER_SIZE } from './layout.js';
import { DynamicVhdLayer, FixedVhdLayer, readParent } from './reader.js';

/**
 * Content probe: "conectix" at offset 0 (as QEMU probes), or a valid footer (cookie,
 * checksum, known disk type) in the last 512 bytes: how a fixed VHD is found. Never throws.
 */
export async function probeVhd(src: ByteSource): Promise<boolean> {
  try {
    if (src.size < FOOTER_SIZE) return false;
    if (hasFooterCookie(await src.read(0, 8))) return true;
    const tail = await src.read(src.size - FOOTER_SIZE, FOOTER_SIZE);
    // Any known type: a dynamic disk that lost its copy at offset 0 is then reported as a
    // damaged VHD rather than silently read as a raw disk.
    return (
      hasFooterCookie(tail) &&
      tail.readUInt32BE(F.checksum) === vhdChecksum(tail, F.checksum) &&
      Object.values(DISK_TYPE).includes(tail.readUInt32BE(F.diskType) as 2 | 3 | 4)
    );
  } catch {
    return false;
  }
}

export async function openVhd(src: ByteSource): Promise<DiskLayer> {
  const name = src.name;
  if (src.size < FOOTER_SIZE) {
    throw new ImageCorruptError(`${name}: ${src.size} bytes is too small for a VHD`, {
      format: 'vhd',
      file: name,
      field: 'size',
      value: src.size,
    });
  }
  const head = await src.read(0, FOOTER_SIZE);
  if (hasFooterCookie(head)) {
    const copy = parseFooter(head, name, 'footer copy at offset 0');
    // A fixed disk whose first data sector happens to hold a VHD footer: the real footer
    // is the one at the end.
    if (copy.diskType !== 'fixed') return openDynamic(src, head);
  }
  const tail = await src.read(src.size - FOOTER_SIZE, FOOTER_SIZE);
  const footer = parseFooter(tail, name, 'footer at the end of the file');
  if (footer.diskType !== 'fixed') {
    throw new ImageCorruptError(`${name}: ${footer.diskType} VHD without its footer copy at offset 0`, {
      format: 'vhd',
      file: name,
      field: 'footer.diskType',
      value: footer.diskType,
    });
  }
  const dataBytes = src.size - FOOTER_SIZE;
  if (footer.virtualSize > dataBytes) {
    throw new ImageTruncatedError(
      `${name}: fixed VHD of ${footer.virtualSize} bytes holds only ${dataBytes} bytes of data`,
      { format: 'vhd', file: name, field: 'footer.size', value: footer.virtualSize, size: dataBytes },
    );
  }
  return new FixedVhdLayer(src, footer);
}

async function openDynamic(src: ByteSource, head: Buffer): Promise<DiskLayer> {
  const name = src.name;
  const footer = parseFooter(head, name, 'footer copy at offset 0');
  const headerAt = dynamicHeaderOffset(footer, src.size, name);
  const header = parseDynamicHeader(await src.read(headerAt, DYN_HEADER_SIZE), footer, src.size, name);
  const bat = parseBat(
    await src.read(header.tableOffset, header.maxTableEntries * 4),
    header,
    src.size,
    name,
  );
  const warnings: string[] = [];
  const tail = await src.read(src.size - FOOTER_SIZE, FOOTER_SIZE);
  if (!tail.equals(head)) {
    warnings.push('the footer at the end of the file differs from its copy at offset 0 (the copy is used)');
  }
  const parent = footer.diskType === 'differencing' ? await readParent(src, header) : undefined;
  return new DynamicVhdLayer(src, { footer, header, bat, ...(parent ? { parent } : {}), warnings });
}
