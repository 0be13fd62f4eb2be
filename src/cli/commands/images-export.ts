/**
 * `ferry images export (--data-dir DIR | --repo DIR) ami-… DST -O FORMAT [--disk N]
 * [--subformat S] [-c] [--force] [--json] [--progress]`: one disk (0-based) of an image to
 * raw/qcow2/VMDK/VHD/VHDX, to a file or stdout ("-"). With --data-dir, the image of a
 * completed run (its amiId) in a server's data directory, also while the server runs. The content checksum recorded at write time is verified; a file is
 * written to DST.partial-<pid> and renamed into place only when it matches.
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { exportImage, getImage } from '../../store/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { progressFor } from '../progress-bar.js';
import { OUTPUT_OPTIONS, planOutput, writeOutput } from './output-image.js';
import { intOption, openRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const USAGE =
  `ferry images export ${REPO_USAGE} ami-ID DST -O FORMAT [--disk N] [--subformat S] [-c] ` +
  '[--cluster-size N] [--force] [--json] [--progress]';

export async function imagesExport(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...REPO_OPTIONS, ...OUTPUT_OPTIONS, disk: { type: 'string' } },
    USAGE,
  );
  const [id, dst] = needPositionals(positionals, 2, USAGE) as [string, string];
  const plan = await planOutput(values, dst, USAGE);
  const diskIndex = intOption(values.disk, '--disk') ?? 0;
  const repo = await openRepo(values);
  const image = await getImage(repo, id);
  const disk = image.disks[diskIndex];
  if (!disk)
    throw new InvalidArgumentError(`${id} has ${image.disks.length} disk(s); there is no disk ${diskIndex}`);
  const bar = progressFor('export', values['no-progress'] ? false : values.progress);
  try {
    const result = await writeOutput(plan, disk.virtualSize, (writer) =>
      exportImage(repo, id, diskIndex, writer, bar ? { progress: bar } : {}),
    );
    if (values.json && !plan.toStdout)
      writeJson({
        image: id,
        disk: diskIndex,
        output: dst,
        format: plan.format,
        subformat: plan.subformat,
        ...result,
      });
    return 0;
  } finally {
    bar?.end();
  }
}
