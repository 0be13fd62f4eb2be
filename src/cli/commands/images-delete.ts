/**
 * `ferry images delete --repo DIR ami-… [ami-…]` or `--job J --keep N` (retention: keep the
 * N most recent images of the job). Space is reclaimed by `ferry store gc`.
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { applyRetention, deleteImage } from '../../store/index.js';
import { parse } from '../args.js';
import { writeJson } from '../output.js';
import { intOption, openRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const USAGE = `ferry images delete ${REPO_USAGE} (ami-ID... | --job J --keep N) [--json]`;

export async function imagesDelete(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...REPO_OPTIONS, job: { type: 'string' }, keep: { type: 'string' } },
    USAGE,
  );
  const keep = intOption(values.keep, '--keep');
  if ((values.job === undefined) !== (keep === undefined)) {
    throw new InvalidArgumentError(`--job and --keep go together\nusage: ${USAGE}`);
  }
  if (positionals.length > 0 === (values.job !== undefined)) {
    throw new InvalidArgumentError(`give image ids, or --job J --keep N\nusage: ${USAGE}`);
  }
  const repo = await openRepo(values);
  const deleted: string[] = [];
  if (values.job !== undefined && keep !== undefined)
    deleted.push(...(await applyRetention(repo, values.job, keep)));
  for (const id of positionals) {
    await deleteImage(repo, id);
    deleted.push(id);
  }
  if (values.json) writeJson({ deleted });
  else for (const id of deleted) process.stdout.write(`deleted ${id}\n`);
  return 0;
}
