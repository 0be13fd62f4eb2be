/**
 * Opens an image file and its whole chain: detects each layer's format from content,
 * lets the driver open it, then follows `info.parent` under the reference policy, with
 * loop and depth checks and the parent identity check (VMDK parentCID, VHD/VHDX ids).
 */
import { realpath } from 'node:fs/promises';
import {
  ChainLoopError,
  ChainMismatchError,
  ChainTooDeepError,
  FormatMismatchError,
  toFerryError,
} from '../errors/index.js';
import { LayeredDisk, type Disk } from './chain.js';
import { detectFormat } from './detect.js';
import { driverFor } from './formats/index.js';
import { FileSource } from './io/file-source.js';
import { FileResolver, type ReferencePolicy } from './io/resolver.js';
import type { DiskLayer, FormatDriver, FormatName, OpenContext, ParentReference } from './layer.js';
import { MAX_CHAIN_DEPTH } from './limits.js';

export interface OpenOptions extends ReferencePolicy {
  /** Refuse the file unless its content is this format (top layer only). */
  readonly format?: FormatName;
  /** Open only the named image, not its backing chain (unallocated reads as zeros). */
  readonly noBacking?: boolean;
}

export async function openDisk(path: string, options: OpenOptions = {}): Promise<Disk> {
  const layers: DiskLayer[] = [];
  const names: string[] = [];
  try {
    let current = await realpath(path).catch(() => path);
    const resolver = await FileResolver.forImage(current, options).catch(() => {
      throw toFerryError(Object.assign(new Error(`no such file: ${path}`), { code: 'ENOENT', path }));
    });
    const seen = new Set<string>([current]);
    let expect: ParentReference | undefined;
    while (true) {
      const src = await FileSource.open(current);
      const layer = await openLayer(
        src,
        current,
        resolver,
        expect?.format ?? (expect ? undefined : options.format),
      );
      layers.push(layer);
      names.push(src.name);
      if (
        expect?.expectedId !== undefined &&
        layer.info.id !== undefined &&
        layer.info.id !== expect.expectedId
      ) {
        throw new ChainMismatchError(
          `${src.name} is not the parent ${names[names.length - 2]} was made from ` +
            `(expected id ${expect.expectedId}, found ${layer.info.id})`,
          { parent: src.name, expected: expect.expectedId, found: layer.info.id },
        );
      }
      const parent = layer.info.parent;
      if (!parent || options.noBacking) break;
      if (layers.length >= MAX_CHAIN_DEPTH) {
        throw new ChainTooDeepError(`backing chain deeper than ${MAX_CHAIN_DEPTH} images`, {
          limit: MAX_CHAIN_DEPTH,
        });
      }
      const next = await resolver.resolve(parent.name, current);
      if (seen.has(next)) {
        throw new ChainLoopError(`backing chain loops back to ${parent.name}`, { reference: parent.name });
      }
      seen.add(next);
      current = next;
      expect = parent;
    }
    return new LayeredDisk(layers, names);
  } catch (err) {
    await Promise.allSettled(layers.map((l) => l.close()));
    throw toFerryError(err);
  }
}

/** Opens one layer; closes `src` if the driver fails. */
async function openLayer(
  src: FileSource,
  path: string,
  resolver: FileResolver,
  format: FormatName | undefined,
): Promise<DiskLayer> {
  try {
    const driver = await pickDriver(src, format);
    const ctx: OpenContext = {
      openReference: async (name) => FileSource.open(await resolver.resolve(name, path)),
    };
    return await driver.open(src, ctx);
  } catch (err) {
    await src.close();
    throw err;
  }
}

async function pickDriver(src: FileSource, forced: FormatName | undefined): Promise<FormatDriver> {
  if (!forced) return detectFormat(src);
  // A declared format wins over probing (qemu's backing_fmt rule): a raw disk whose guest
  // wrote a qcow2 header into sector 0 must stay raw, or the guest could make the host
  // read files of its choosing through a forged backing reference.
  const driver = driverFor(forced);
  if (forced !== 'raw' && !(await driver.probe(src))) {
    throw new FormatMismatchError(`${src.name} is not a ${forced} image`, {
      expected: forced,
      detected: (await detectFormat(src)).name,
    });
  }
  return driver;
}
