/** Small VM-export folders for control-plane tests. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pseudoRandom, tempDir } from './qemu.js';

/** `count` servers vm01…, each with one raw disk of `diskBytes` pseudo-random bytes. */
export async function makeImagesDir(count: number, diskBytes = 256 * 1024): Promise<string> {
  const root = await tempDir('ferry-images-');
  for (let i = 1; i <= count; i++) {
    const dir = join(root, `vm${String(i).padStart(2, '0')}`);
    await mkdir(dir);
    await writeFile(join(dir, 'disk0.img'), pseudoRandom(diskBytes, i));
  }
  return root;
}
