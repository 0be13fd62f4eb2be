/**
 * `ferry images export (--data-dir DIR | --repo DIR) ami-… DST -O FORMAT [--disk N]
 * [--subformat S] [-c] [--force] [--json] [--progress]`: one disk (0-based) of an image to
 * raw/qcow2/VMDK/VHD/VHDX, to a file or stdout ("-"). With --data-dir, the image of a
 * completed run (its amiId) in a server's data directory, also while the server runs. The content checksum recorded at write time is verified; a file is
 * written to DST.partial-<pid> and renamed into place only when it matches.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { driverFor, FileSink, StreamSink, type BlockSink } from '../../disk/index.js';
import { InvalidArgumentError, OutputExistsError, SinkNotSeekableError } from '../../errors/index.js';
import { exportImage, getImage } from '../../store/index.js';
import { formatOption, needPositionals, parse, sizeOption } from '../args.js';
import { writeJson } from '../output.js';
import { progressFor } from '../progress-bar.js';
import { intOption, openRepo, REPO_OPTIONS, REPO_USAGE } from './store-common.js';

const USAGE =
  `ferry images export ${REPO_USAGE} ami-ID DST -O FORMAT [--disk N] [--subformat S] [-c] ` +
  '[--cluster-size N] [--force] [--json] [--progress]';

export async function imagesExport(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...REPO_OPTIONS,
      'output-format': { type: 'string', short: 'O' },
      disk: { type: 'string' },
      subformat: { type: 'string' },
      compress: { type: 'boolean', short: 'c' },
      'cluster-size': { type: 'string' },
      force: { type: 'boolean' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
    },
    USAGE,
  );
  const [id, dst] = needPositionals(positionals, 2, USAGE) as [string, string];
  const format = formatOption(values['output-format'], 'output');
  if (!format) throw new InvalidArgumentError(`-O FORMAT is required\nusage: ${USAGE}`);
  const driver = driverFor(format);
  const subformat = values.subformat ?? driver.writableSubformats[0];
  if (!driver.createWriter || !subformat || !driver.writableSubformats.includes(subformat)) {
    throw new InvalidArgumentError(
      `cannot write ${format}${values.subformat ? ` subformat ${values.subformat}` : ''}`,
      {
        format,
      },
    );
  }
  const toStdout = dst === '-';
  if (toStdout && driver.needsSeekableSink(subformat)) {
    throw new SinkNotSeekableError(`${format} ${subformat} must be written to a file, not stdout`);
  }
  if (
    !toStdout &&
    !values.force &&
    (await stat(dst).then(
      () => true,
      () => false,
    ))
  ) {
    throw new OutputExistsError(`${dst} already exists (pass --force to overwrite)`, { path: dst });
  }
  const diskIndex = intOption(values.disk, '--disk') ?? 0;
  const clusterSize = sizeOption(values['cluster-size'], 'cluster size');
  const repo = await openRepo(values);
  const image = await getImage(repo, id);
  const disk = image.disks[diskIndex];
  if (!disk)
    throw new InvalidArgumentError(`${id} has ${image.disks.length} disk(s); there is no disk ${diskIndex}`);

  const tmp = toStdout ? undefined : `${dst}.partial-${process.pid}`;
  const sink: BlockSink = toStdout ? new StreamSink(process.stdout) : await FileSink.create(tmp as string);
  const bar = progressFor('export', values['no-progress'] ? false : values.progress);
  let ok = false;
  try {
    const writer = await driver.createWriter(sink, {
      virtualSize: disk.virtualSize,
      subformat,
      compress: values.compress ?? false,
      ...(clusterSize !== undefined ? { clusterSize } : {}),
    });
    const result = await exportImage(repo, id, diskIndex, writer, bar ? { progress: bar } : {});
    await sink.close();
    if (tmp) await rename(tmp, dst);
    ok = true;
    if (values.json && !toStdout)
      writeJson({ image: id, disk: diskIndex, output: dst, format, subformat, ...result });
    return 0;
  } finally {
    bar?.end();
    if (!ok) {
      await sink.close().catch(() => {});
      if (tmp) await rm(tmp, { force: true });
    }
  }
}
