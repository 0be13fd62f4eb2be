/**
 * `ferry store gc --repo DIR [--dry-run] [--wait SECONDS] [--repack-threshold 0.2] [--json]`:
 * deletes chunks no image needs any more. Safe while writers run: what a live writer might
 * use is only condemned, and deleted by a later run once that writer is gone (or by this
 * one with --wait).
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { collectGarbage } from '../../store/index.js';
import { needPositionals, parse } from '../args.js';
import { formatBytes, writeJson } from '../output.js';
import { intOption, openRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const USAGE = `ferry store gc ${REPO_USAGE} [--dry-run] [--wait SECONDS] [--repack-threshold F] [--json]`;

export async function storeGc(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...REPO_OPTIONS,
      'dry-run': { type: 'boolean' },
      wait: { type: 'string' },
      'repack-threshold': { type: 'string' },
    },
    USAGE,
  );
  needPositionals(positionals, 0, USAGE);
  const threshold = values['repack-threshold'] === undefined ? undefined : Number(values['repack-threshold']);
  if (threshold !== undefined && !(threshold > 0 && threshold <= 1)) {
    throw new InvalidArgumentError(`--repack-threshold must be in (0, 1], got ${values['repack-threshold']}`);
  }
  const repo = await openRepo(values);
  const report = await collectGarbage(repo, {
    dryRun: values['dry-run'] ?? false,
    waitMs: (intOption(values.wait, '--wait') ?? 0) * 1000,
    ...(threshold !== undefined ? { repackThreshold: threshold } : {}),
  });
  if (values.json) writeJson(report);
  else {
    const verb = values['dry-run'] ? 'would condemn' : 'condemned';
    process.stdout.write(
      `${report.images} image(s), ${report.incomplete} interrupted write(s) referenced; ${verb} ` +
        `${report.condemnedPacks} pack(s) (${formatBytes(report.condemnedBytes)}), ${report.orphanPacks} orphan(s); ` +
        `repacked ${report.repackedChunks} chunk(s); deleted ${report.deletedPacks} pack(s) ` +
        `(${formatBytes(report.deletedBytes)}), resurrected ${report.resurrectedChunks} chunk(s)\n` +
        (report.waiting > 0
          ? `${report.waiting} collection(s) wait for live writers; run gc again later\n`
          : ''),
    );
  }
  return 0;
}
