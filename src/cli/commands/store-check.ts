/**
 * `ferry store check --repo DIR [--read-data] [--json]`: verifies the repository (like
 * `restic check`). Exit 0 when no error was found; FERRY_STORE_CHECK_FAILED (exit 4)
 * otherwise, after the report. Warnings (orphans left by interrupted writes) do not fail.
 */
import { StoreCheckFailedError } from '../../errors/index.js';
import { checkRepository } from '../../store/index.js';
import { needPositionals, parse } from '../args.js';
import { formatBytes, writeJson } from '../output.js';
import { openRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const USAGE = `ferry store check ${REPO_USAGE} [--read-data] [--json]`;

export async function storeCheck(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...REPO_OPTIONS, 'read-data': { type: 'boolean' } }, USAGE);
  needPositionals(positionals, 0, USAGE);
  const repo = await openRepo(values);
  const report = await checkRepository(repo, { readData: values['read-data'] ?? false });
  if (values.json) writeJson(report);
  else {
    const s = report.stats;
    process.stdout.write(
      `checked ${s.images} image(s), ${s.disks} disk(s), ${s.indexFiles} index file(s), ${s.packs} pack(s), ` +
        `${s.chunks} chunk(s), ${s.treeNodes} tree node(s)` +
        (values['read-data'] ? `; read ${s.readPacks} pack(s), ${formatBytes(s.readBytes)}` : '') +
        '\n',
    );
    for (const w of report.warnings) process.stdout.write(`warning: ${w.code}: ${w.object}: ${w.message}\n`);
    for (const e of report.errors) process.stdout.write(`error: ${e.code}: ${e.object}: ${e.message}\n`);
    if (report.errors.length === 0) process.stdout.write('no errors found\n');
  }
  if (report.errors.length > 0) {
    throw new StoreCheckFailedError(`${report.errors.length} error(s) found in ${repo.location}`, {
      errors: report.errors.length,
      first: report.errors[0]?.code,
    });
  }
  return 0;
}
