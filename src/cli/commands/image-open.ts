/** Shared by the image commands: open options from flags, and always close the disk. */
import { openDisk, type Disk } from '../../disk/index.js';
import { formatOption } from '../args.js';

export interface ImageFlags {
  format?: string | undefined;
  'allow-external-references'?: boolean | undefined;
  'no-backing'?: boolean | undefined;
}

export async function withDisk<T>(
  path: string,
  flags: ImageFlags,
  fn: (disk: Disk) => Promise<T>,
): Promise<T> {
  const disk = await openDisk(path, {
    format: formatOption(flags.format, 'source'),
    allowExternal: flags['allow-external-references'] ?? false,
    noBacking: flags['no-backing'] ?? false,
  });
  try {
    return await fn(disk);
  } finally {
    await disk.close();
  }
}
