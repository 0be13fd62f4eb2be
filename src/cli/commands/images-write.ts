/**
 * `ferry images write --repo DIR DISK... --name N [--job J] [--server S] [--run R]
 * [--description D] [--resume ami-…] [--threads N] [-f FORMAT] [--json] [--progress]`:
 * one server image from one or more disks in any format the disk engine reads. An
 * interrupted write is continued with --resume and the same disks.
 */
import { basename } from 'node:path';
import { openDisk, type Disk } from '../../disk/index.js';
import { writeImage, type ServerImage } from '../../store/index.js';
import { formatOption, parse, sizeOption } from '../args.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { formatBytes, writeJson } from '../output.js';
import { progressFor } from '../progress-bar.js';
import { intOption, openRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const USAGE =
  `ferry images write ${REPO_USAGE} DISK... --name NAME [--job J] [--server S] [--run R] ` +
  '[--description D] [--resume ami-ID] [--threads N] [--pack-size 16M] [--checkpoint-interval S] [-f FORMAT] [--allow-external-references] [--json] [--progress]';

export async function imagesWrite(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...REPO_OPTIONS,
      name: { type: 'string' },
      job: { type: 'string' },
      server: { type: 'string' },
      run: { type: 'string' },
      description: { type: 'string' },
      resume: { type: 'string' },
      threads: { type: 'string' },
      'pack-size': { type: 'string' },
      'checkpoint-interval': { type: 'string' },
      format: { type: 'string', short: 'f' },
      'allow-external-references': { type: 'boolean' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
    },
    USAGE,
  );
  if (positionals.length === 0) throw new InvalidArgumentError(`no disk given\nusage: ${USAGE}`);
  if (!values.name) throw new InvalidArgumentError(`--name is required\nusage: ${USAGE}`);
  const repo = await openRepo(values);
  const threads = intOption(values.threads, '--threads');
  const packBytes = sizeOption(values['pack-size'], 'pack size');
  const checkpointS = intOption(values['checkpoint-interval'], '--checkpoint-interval');
  const disks: { name: string; disk: Disk }[] = [];
  try {
    for (const path of positionals) {
      const disk = await openDisk(path, {
        format: formatOption(values.format, 'source'),
        allowExternal: values['allow-external-references'] ?? false,
      });
      disks.push({ name: basename(path), disk });
    }
    const bar = progressFor('write', values['no-progress'] ? false : values.progress);
    let image: ServerImage;
    try {
      image = await writeImage(repo, {
        name: values.name,
        description: values.description ?? '',
        job: values.job ?? null,
        sourceServer: values.server ?? null,
        run: values.run ?? null,
        disks,
        ...(values.resume ? { resume: values.resume } : {}),
        ...(threads !== undefined ? { threads } : {}),
        ...(packBytes !== undefined ? { packBytes } : {}),
        ...(checkpointS !== undefined ? { checkpointMs: checkpointS * 1000 } : {}),
        ...(bar ? { progress: bar } : {}),
      });
    } finally {
      bar?.end();
    }
    if (values.json) writeJson(image);
    else {
      process.stdout.write(`${image.id}\n`);
      for (const d of image.disks) {
        process.stderr.write(
          `disk ${d.index} ${d.name}: ${formatBytes(d.virtualSize)}, ${d.stats.newChunks} new chunk(s), ` +
            `${formatBytes(d.stats.storedBytes)} stored, ${d.checksum}\n`,
        );
      }
    }
    return 0;
  } finally {
    await Promise.allSettled(disks.map((d) => d.disk.close()));
  }
}
