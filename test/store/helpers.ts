/** Shared helpers for the image store tests: in-memory disks and repositories. */
import { driverFor, LayeredDisk, MemorySource, type Disk } from '../../src/disk/index.js';
import {
  MemoryBackend,
  RawMasterKey,
  Repository,
  type Backend,
  type InitOptions,
} from '../../src/store/index.js';
import { pseudoRandom } from '../helpers/qemu.js';

export async function memoryDisk(buf: Buffer, name = 'mem.raw'): Promise<Disk> {
  const layer = await driverFor('raw').open(new MemorySource(buf, name), {
    openReference: () => Promise.reject(new Error('no references')),
  });
  return new LayeredDisk([layer], [name]);
}

export const TEST_KEY = RawMasterKey.generate();

/** A small repository: 4 KiB blocks and fan-out 16 so tests cross page and pack boundaries. */
export async function memoryRepo(
  options: InitOptions = { blockSize: 4096, fanout: 16 },
  backend: Backend = new MemoryBackend(),
): Promise<Repository> {
  return Repository.init(backend, TEST_KEY.master, options);
}

/**
 * A "mixed" disk like the benchmark's, scaled down: random, zero and text-like regions,
 * plus zero blocks scattered inside data.
 */
export function mixedDisk(size: number, seed = 1): Buffer {
  const buf = Buffer.alloc(size);
  const words = Buffer.from('the quick brown fox jumps over the lazy dog; server migration with ferry\n');
  for (let off = 0; off < size; off += 256 * 1024) {
    const kind = (off / (256 * 1024) + seed) % 10;
    const n = Math.min(256 * 1024, size - off);
    if (kind < 5) pseudoRandom(n, seed * 7919 + off).copy(buf, off);
    else if (kind < 7)
      continue; // zeros
    else for (let i = 0; i < n; i++) buf[off + i] = words[(i * 7 + off) % words.length] as number;
  }
  return buf;
}
