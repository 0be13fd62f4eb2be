/**
 * The Block Allocation Table: big-endian sector numbers of each block's bitmap, all ones
 * when the block is not allocated. Every allocated entry is checked against the file size
 * the way QEMU checks it (block/vpc.c computes the highest bitmap + block end and refuses
 * an image whose blocks run past the end of the file).
 */
import { ImageTruncatedError } from '../../../errors/index.js';
import type { DynamicHeader } from './header.js';
import { BAT_UNALLOCATED, SECTOR } from './layout.js';

export function parseBat(buf: Buffer, header: DynamicHeader, fileSize: number, name: string): Uint32Array {
  const n = header.maxTableEntries;
  const bat = new Uint32Array(n);
  const blockBytes = header.bitmapSize + header.blockSize;
  for (let i = 0; i < n; i++) {
    const entry = buf.readUInt32BE(i * 4);
    bat[i] = entry;
    if (entry !== BAT_UNALLOCATED && entry * SECTOR + blockBytes > fileSize) {
      throw new ImageTruncatedError(
        `${name}: VHD block ${i} at sector ${entry} runs past the end of the file (${fileSize} bytes)`,
        { format: 'vhd', file: name, field: `bat[${i}]`, value: entry, size: fileSize },
      );
    }
  }
  return bat;
}
