/**
 * Opening images for reading: a Disk over one disk of a server image, and export through
 * any disk-engine writer with the checksum verified. Readers hold a `read` lock while
 * open, so GC never deletes a pack under them.
 */
import {
  copyDisk,
  LayeredDisk,
  type CopyResult,
  type Disk,
  type DiskWriter,
  type ProgressObserver,
} from '../../disk/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import type { ChunkIndex } from '../index/chunk-index.js';
import { RepoLock } from '../lock/lock.js';
import type { ServerImage } from '../manifest/record.js';
import type { Repository } from '../repo/repository.js';
import { getImage } from '../images/images.js';
import { ChunkFetcher } from './fetch.js';
import { ImageLayer } from './image-layer.js';

export interface ImageView {
  readonly image: ServerImage;
  readonly layer: ImageLayer;
  /** Closing the disk releases the read lock. */
  readonly disk: Disk;
  /** The index the view reads through, loaded under its read lock (see WriteImageOptions.index). */
  readonly index: ChunkIndex;
}

export interface OpenImageOptions {
  /** Recompute the checksum while reading sequentially (exports). */
  readonly verify?: boolean;
  /** An index already loaded (saves loading it again). */
  readonly index?: ChunkIndex;
}

export async function openImageDisk(
  repo: Repository,
  imageId: string,
  diskIndex: number,
  options: OpenImageOptions = {},
): Promise<ImageView> {
  const lock = await RepoLock.acquire(repo, 'read');
  try {
    const image = await getImage(repo, imageId);
    const d = image.disks[diskIndex];
    if (!d) {
      throw new InvalidArgumentError(
        `${imageId} has ${image.disks.length} disk(s); there is no disk ${diskIndex}`,
        {
          image: imageId,
          disk: diskIndex,
        },
      );
    }
    const index = options.index ?? (await repo.loadIndex()).index;
    const layer = new ImageLayer(imageId, d, new ChunkFetcher(repo, index), {
      verify: options.verify ?? false,
      onClose: () => lock.release(),
    });
    return { image, layer, index, disk: new LayeredDisk([layer], [`${imageId}/${diskIndex}`]) };
  } catch (err) {
    await lock.release().catch(() => {});
    throw err;
  }
}

export interface ExportResult extends CopyResult {
  readonly checksum: string;
}

/**
 * Copies one disk of an image into `writer` (any disk-engine format) and verifies its
 * content checksum; FERRY_STORE_CHECKSUM_MISMATCH after the writer finished otherwise (a
 * caller writing a file renames it into place only when this resolves).
 */
export async function exportImage(
  repo: Repository,
  imageId: string,
  diskIndex: number,
  writer: DiskWriter,
  options: { progress?: ProgressObserver; signal?: AbortSignal } = {},
): Promise<ExportResult> {
  const view = await openImageDisk(repo, imageId, diskIndex, { verify: true });
  try {
    const result = await copyDisk(view.disk, writer, options);
    return { ...result, checksum: await view.layer.verify() };
  } finally {
    await view.disk.close();
  }
}
