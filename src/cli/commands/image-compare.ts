/**
 * `ferry image compare A B [--strict]`: exit 0 when the virtual contents are identical,
 * 1 when they differ (first differing offset printed), like `qemu-img compare`.
 */
import { compareDisks } from '../../disk/index.js';
import { COMMON_IMAGE_OPTIONS, needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { progressFor } from '../progress-bar.js';
import { withDisk } from './image-open.js';

const USAGE = 'ferry image compare A B [--strict] [--json] [-f FORMAT] [-F FORMAT]';

export async function imageCompare(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...COMMON_IMAGE_OPTIONS,
      'format-b': { type: 'string', short: 'F' },
      strict: { type: 'boolean', short: 's' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
    },
    USAGE,
  );
  const [a, b] = needPositionals(positionals, 2, USAGE) as [string, string];
  const bar = progressFor('compare', values['no-progress'] ? false : values.progress);
  const result = await withDisk(a, values, (da) =>
    withDisk(b, { ...values, format: values['format-b'] }, (db) =>
      compareDisks(da, db, { strict: values.strict ?? false, progress: bar }),
    ),
  );
  bar?.end();
  if (values.json) {
    writeJson(result);
  } else if (result.identical) {
    if (result.sizeA !== result.sizeB) process.stdout.write('Warning: Image size mismatch!\n');
    process.stdout.write('Images are identical.\n');
  } else if (result.reason === 'size') {
    process.stdout.write(`Strict mode: Image size mismatch! (${result.sizeA} vs ${result.sizeB})\n`);
  } else {
    process.stdout.write(`Content mismatch at offset ${result.offset}!\n`);
  }
  return result.identical ? 0 : 1;
}
