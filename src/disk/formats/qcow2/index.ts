/**
 * qcow2 (QEMU copy-on-write v2/v3): read every variant QEMU 7.2 writes except encrypted
 * images; write v3, optionally zlib-compressed. See docs/formats/qcow2.md.
 */
import type { ByteSource } from '../../io/byte-source.js';
import type { FormatDriver } from '../../layer.js';
import { MAGIC } from './layout.js';
import { openQcow2 } from './reader.js';
import { createQcow2Writer } from './writer.js';

export const qcow2Driver: FormatDriver = {
  name: 'qcow2',
  writableSubformats: ['v3'],
  async probe(src: ByteSource): Promise<boolean> {
    if (src.size < 4) return false;
    try {
      return (await src.read(0, 4)).readUInt32BE(0) === MAGIC;
    } catch {
      return false;
    }
  },
  open: openQcow2,
  needsSeekableSink: () => true,
  createWriter: createQcow2Writer,
};
