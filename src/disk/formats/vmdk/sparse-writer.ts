/**
 * monolithicSparse writer, in QEMU's layout (vmdk_init_extent): header, 20-sector
 * descriptor, redundant grain directory and tables, grain directory and tables, then
 * uncompressed grains in disk order. Grain tables are pre-allocated (the spec's rule for
 * hosted sparse extents) but written only when they have entries: the rest stay holes.
 * Needs a seekable sink: tables are filled in after their grains.
 */
import { SinkNotSeekableError, OutputTooLargeError } from '../../../errors/index.js';
import type { BlockSink } from '../../io/block-sink.js';
import { CoalescingWriter } from '../../io/coalesce.js';
import type { DiskWriter, WriterOptions } from '../../layer.js';
import { buildSparseHeader, tableBytes } from './build.js';
import { formatDescriptor } from './descriptor.js';
import {
  EMBEDDED_DESCRIPTOR_SECTORS,
  FLAG_NL_DETECT,
  FLAG_RGD,
  GTE_BYTES,
  GTES_PER_GT,
  MAX_EXTENT_FILE_SECTORS,
  SECTOR,
} from './layout.js';
import { grainsOf, planWriter, type WriterPlan } from './writer.js';

interface Placement {
  readonly rgdSector: number;
  readonly rgtSector: number;
  readonly gdSector: number;
  readonly gtSector: number;
  readonly gtSectors: number;
  readonly overHeadSectors: number;
}

function place(plan: WriterPlan): Placement {
  const gdSectors = Math.ceil((plan.gdEntries * GTE_BYTES) / SECTOR);
  const gtSectors = (GTES_PER_GT * GTE_BYTES) / SECTOR;
  const rgdSector = 1 + EMBEDDED_DESCRIPTOR_SECTORS;
  const rgtSector = rgdSector + gdSectors;
  const gdSector = rgtSector + plan.gdEntries * gtSectors;
  const gtSector = gdSector + gdSectors;
  const metaEnd = gtSector + plan.gdEntries * gtSectors;
  const overHeadSectors = Math.ceil(metaEnd / plan.grainSectors) * plan.grainSectors;
  return { rgdSector, rgtSector, gdSector, gtSector, gtSectors, overHeadSectors };
}

class MonolithicSparseWriter implements DiskWriter {
  readonly blockSize: number;
  readonly #sink: BlockSink;
  readonly #plan: WriterPlan;
  readonly #at: Placement;
  readonly #out: CoalescingWriter;
  readonly #gt = new Uint32Array(GTES_PER_GT);
  #gtIndex = -1;
  #gtUsed = false;
  #pos: number;
  #next = 0;

  constructor(sink: BlockSink, plan: WriterPlan, at: Placement) {
    this.#sink = sink;
    this.#plan = plan;
    this.#at = at;
    this.blockSize = plan.grainBytes;
    this.#out = new CoalescingWriter(sink);
    this.#pos = at.overHeadSectors * SECTOR;
  }

  async writeBlock(offset: number, data: Buffer): Promise<void> {
    for (const [grain, bytes] of grainsOf(this.#plan, offset, data, this.#next)) {
      const gt = Math.floor(grain / GTES_PER_GT);
      if (gt !== this.#gtIndex) {
        await this.#flushTable();
        this.#gtIndex = gt;
      }
      this.#gt[grain % GTES_PER_GT] = this.#pos / SECTOR;
      this.#gtUsed = true;
      await this.#out.write(this.#pos, bytes);
      this.#pos += bytes.length;
    }
    this.#next = offset + data.length;
  }

  async finish(): Promise<void> {
    await this.#out.drain();
    await this.#flushTable();
    await this.#sink.truncate(this.#pos);
  }

  /** Writes the current grain table and its redundant copy (both pre-allocated). */
  async #flushTable(): Promise<void> {
    if (!this.#gtUsed) return;
    const bytes = tableBytes(this.#gt);
    const rel = this.#gtIndex * this.#at.gtSectors;
    await this.#sink.write((this.#at.gtSector + rel) * SECTOR, bytes);
    await this.#sink.write((this.#at.rgtSector + rel) * SECTOR, bytes);
    this.#gt.fill(0);
    this.#gtUsed = false;
  }
}

export async function createMonolithicSparseWriter(
  sink: BlockSink,
  options: WriterOptions,
): Promise<DiskWriter> {
  if (!sink.seekable) {
    throw new SinkNotSeekableError(
      'VMDK monolithicSparse must be written to a file (use streamOptimized for a pipe)',
    );
  }
  const plan = planWriter(sink, options);
  const at = place(plan);
  const grains = Math.ceil(plan.capacitySectors / plan.grainSectors);
  if (at.overHeadSectors + grains * plan.grainSectors > MAX_EXTENT_FILE_SECTORS) {
    throw new OutputTooLargeError('the disk does not fit the 2 TiB a monolithicSparse file can address', {
      format: 'vmdk',
      virtualSize: plan.virtualSize,
      limit: MAX_EXTENT_FILE_SECTORS * SECTOR,
    });
  }
  const text = formatDescriptor({
    cid: plan.cid,
    createType: 'monolithicSparse',
    capacitySectors: plan.capacitySectors,
    fileName: plan.fileName,
  });
  const head = Buffer.alloc((1 + EMBEDDED_DESCRIPTOR_SECTORS) * SECTOR);
  buildSparseHeader({
    version: 1,
    flags: FLAG_NL_DETECT | FLAG_RGD,
    capacitySectors: plan.capacitySectors,
    grainSectors: plan.grainSectors,
    descriptorOffset: 1,
    descriptorSectors: EMBEDDED_DESCRIPTOR_SECTORS,
    rgdOffset: at.rgdSector,
    gdOffset: at.gdSector,
    overHeadSectors: at.overHeadSectors,
    compressed: false,
  }).copy(head, 0);
  head.write(
    text,
    SECTOR,
    Math.min(Buffer.byteLength(text), EMBEDDED_DESCRIPTOR_SECTORS * SECTOR - 1),
    'utf8',
  );
  await sink.write(0, head);
  // Both directories point at every (pre-allocated) table; tables are written as filled.
  const gd = new Uint32Array(plan.gdEntries);
  for (let i = 0; i < gd.length; i++) gd[i] = at.rgtSector + i * at.gtSectors;
  await sink.write(at.rgdSector * SECTOR, tableBytes(gd));
  for (let i = 0; i < gd.length; i++) gd[i] = at.gtSector + i * at.gtSectors;
  await sink.write(at.gdSector * SECTOR, tableBytes(gd));
  await sink.truncate(at.overHeadSectors * SECTOR);
  return new MonolithicSparseWriter(sink, plan, at);
}
