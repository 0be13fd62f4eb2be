/**
 * `ferry image convert SRC DST -O FORMAT [--subformat S] [-c] [--cluster-size N] [--force]`.
 * Writes to DST.partial-<pid> and renames on success, so a failed or interrupted convert
 * never leaves a half-written file under the name the user asked for (and never
 * clobbers an existing file without --force). DST "-" streams to stdout where the
 * output format allows it.
 */
import { copyDisk } from '../../disk/index.js';
import { COMMON_IMAGE_OPTIONS, needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { progressFor } from '../progress-bar.js';
import { withDisk } from './image-open.js';
import { OUTPUT_OPTIONS, planOutput, writeOutput } from './output-image.js';

const USAGE =
  'ferry image convert SRC DST -O FORMAT [--subformat S] [-c|--compress] [--cluster-size N] ' +
  '[-f SRCFORMAT] [--force] [--json] [--progress|--no-progress]';

export async function imageConvert(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...COMMON_IMAGE_OPTIONS, ...OUTPUT_OPTIONS }, USAGE);
  const [src, dst] = needPositionals(positionals, 2, USAGE) as [string, string];
  const plan = await planOutput(values, dst, USAGE);
  const bar = progressFor('convert', values['no-progress'] ? false : values.progress);
  return withDisk(src, values, async (disk) => {
    try {
      const result = await writeOutput(plan, disk.virtualSize, (writer) =>
        copyDisk(disk, writer, { progress: bar }),
      );
      bar?.end();
      if (values.json && !plan.toStdout)
        writeJson({ source: src, output: dst, format: plan.format, subformat: plan.subformat, ...result });
      return 0;
    } finally {
      bar?.end();
    }
  });
}
