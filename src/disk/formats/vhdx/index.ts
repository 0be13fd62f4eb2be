/**
 * VHDX (Hyper-V's Virtual Hard Disk v2): reads fixed, dynamic and differencing disks with
 * 512 or 4096-byte sectors, replaying a pending log in memory; writes dynamic and fixed.
 * See docs/formats/vhdx.md.
 */
import type { ByteSource } from '../../io/byte-source.js';
import type { BlockSink } from '../../io/block-sink.js';
import type { DiskLayer, DiskWriter, FormatDriver, WriterOptions } from '../../layer.js';
import { hasFileSignature } from './header.js';
import { openVhdx } from './reader.js';
import { createVhdxWriter, WRITABLE_SUBFORMATS, writerSettings } from './writer.js';

export const vhdxDriver: FormatDriver = {
  name: 'vhdx',
  writableSubformats: WRITABLE_SUBFORMATS,
  async probe(src: ByteSource): Promise<boolean> {
    try {
      return src.size >= 8 && hasFileSignature(await src.read(0, 8));
    } catch {
      return false;
    }
  },
  open(src: ByteSource): Promise<DiskLayer> {
    return openVhdx(src);
  },
  needsSeekableSink: () => true,
  createWriter(sink: BlockSink, options: WriterOptions): Promise<DiskWriter> {
    return createVhdxWriter(sink, writerSettings(options));
  },
};
