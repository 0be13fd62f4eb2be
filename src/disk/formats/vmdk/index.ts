/**
 * VMDK: VMware's virtual disk (descriptor + extents). Reads monolithicSparse,
 * streamOptimized (QEMU's and VMware's layouts), monolithicFlat, twoGbMaxExtent*, vmfs*,
 * ZERO extents and delta disks (KDMV or ESX COWD); writes streamOptimized (also to a
 * pipe) and monolithicSparse. See docs/formats/vmdk.md.
 */
import type { ByteSource } from '../../io/byte-source.js';
import type { BlockSink } from '../../io/block-sink.js';
import type { DiskLayer, DiskWriter, FormatDriver, OpenContext, WriterOptions } from '../../layer.js';
import { MAX_DESCRIPTOR_BYTES } from '../../limits.js';
import { InvalidArgumentError } from '../../../errors/index.js';
import { descriptorText, looksLikeDescriptor } from './descriptor.js';
import { isCowdMagic, isSparseMagic } from './header.js';
import { openVmdk } from './reader.js';
import { createMonolithicSparseWriter } from './sparse-writer.js';
import { createStreamOptimizedWriter } from './writer.js';

/** Bytes looked at by the probe: a descriptor's first lines are far shorter. */
const PROBE_BYTES = 4096;

export const vmdkDriver: FormatDriver = {
  name: 'vmdk',
  writableSubformats: ['streamOptimized', 'monolithicSparse'],
  async probe(src: ByteSource): Promise<boolean> {
    try {
      if (src.size < 4) return false;
      const head = await src.read(0, Math.min(src.size, PROBE_BYTES));
      if (isSparseMagic(head) || isCowdMagic(head)) return true;
      // A descriptor is a small text file; a large file is a disk, whatever its first bytes.
      if (src.size > MAX_DESCRIPTOR_BYTES) return false;
      return looksLikeDescriptor(descriptorText(head));
    } catch {
      return false;
    }
  },
  open(src: ByteSource, ctx: OpenContext): Promise<DiskLayer> {
    return openVmdk(src, ctx);
  },
  needsSeekableSink(subformat: string): boolean {
    return subformat === 'monolithicSparse';
  },
  async createWriter(sink: BlockSink, options: WriterOptions): Promise<DiskWriter> {
    const sub = options.subformat ?? 'streamOptimized';
    if (sub === 'streamOptimized') return createStreamOptimizedWriter(sink, options);
    if (sub === 'monolithicSparse') return createMonolithicSparseWriter(sink, options);
    throw new InvalidArgumentError(`VMDK cannot write subformat ${JSON.stringify(sub)}`, {
      format: 'vmdk',
      subformat: sub,
    });
  },
};
