/**
 * VHD (Microsoft Virtual Hard Disk; QEMU's "vpc"): fixed, dynamic and differencing disks
 * read; dynamic and fixed written. See docs/formats/vhd.md and layout.ts.
 */
import type { FormatDriver } from '../../layer.js';
import { openVhd, probeVhd } from './open-layer.js';
import { VHD_SUBFORMATS, createVhdWriter } from './writer.js';

export const vhdDriver: FormatDriver = {
  name: 'vhd',
  writableSubformats: VHD_SUBFORMATS,
  probe: probeVhd,
  open: (src) => openVhd(src),
  needsSeekableSink: (subformat) => subformat !== 'fixed',
  createWriter: createVhdWriter,
};
