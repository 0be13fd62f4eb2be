/**
 * `ferry images list (--data-dir DIR | --repo DIR) [--job J] [--incomplete] [--json]` and
 * `ferry images show (--data-dir DIR | --repo DIR) ami-… [--json]` (store-common.ts says
 * where the repository and its key come from).
 */
import { getImage, listImages, listIncomplete, type ServerImage } from '../../store/index.js';
import { needPositionals, parse } from '../args.js';
import { formatBytes, writeJson } from '../output.js';
import { openRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const LIST_USAGE = `ferry images list ${REPO_USAGE} [--job J] [--incomplete] [--json]`;
const SHOW_USAGE = `ferry images show ${REPO_USAGE} ami-ID [--json]`;

export async function imagesList(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...REPO_OPTIONS, job: { type: 'string' }, incomplete: { type: 'boolean' } },
    LIST_USAGE,
  );
  needPositionals(positionals, 0, LIST_USAGE);
  const repo = await openRepo(values);
  if (values.incomplete) {
    const writes = await listIncomplete(repo);
    if (values.json) writeJson(writes);
    else {
      for (const w of writes) {
        const what = w.committed
          ? 'committed (leftover staging)'
          : w.meta
            ? `${w.meta.name} (resumable)`
            : 'abandoned';
        process.stdout.write(`${w.id}  ${w.meta?.created ?? ''}  ${what}\n`);
      }
    }
    return 0;
  }
  const images = await listImages(repo, values.job !== undefined ? { job: values.job } : {});
  if (values.json) writeJson(images);
  else {
    for (const i of images) {
      const size = i.disks.reduce((s, d) => s + d.virtualSize, 0);
      process.stdout.write(
        `${i.id}  ${i.created}  ${String(i.disks.length).padStart(2)} disk(s) ${formatBytes(size).padStart(10)}  ` +
          `${i.job ?? '-'}  ${i.name}\n`,
      );
    }
  }
  return 0;
}

export async function imagesShow(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, REPO_OPTIONS, SHOW_USAGE);
  const [id] = needPositionals(positionals, 1, SHOW_USAGE) as [string];
  const repo = await openRepo(values);
  const image = await getImage(repo, id);
  if (values.json) writeJson(image);
  else process.stdout.write(render(image));
  return 0;
}

function render(i: ServerImage): string {
  const lines = [
    `id:            ${i.id}`,
    `name:          ${i.name}`,
    `created:       ${i.created}`,
    `job:           ${i.job ?? '-'}`,
    `source server: ${i.sourceServer ?? '-'}`,
    `run:           ${i.run ?? '-'}`,
  ];
  if (i.description) lines.push(`description:   ${i.description}`);
  for (const d of i.disks) {
    lines.push(
      `disk ${d.index}: ${d.name}  ${formatBytes(d.virtualSize)} (${d.virtualSize} bytes)  ${d.checksum}`,
      `  ${d.stats.dataBlocks} data / ${d.stats.zeroBlocks} zero blocks of ${d.blockSize}; ` +
        `${d.stats.newChunks} new chunk(s), ${formatBytes(d.stats.storedBytes)} stored by this image`,
    );
  }
  return lines.join('\n') + '\n';
}
