/**
 * `ferry image convert SRC DST -O FORMAT [--subformat S] [-c] [--cluster-size N] [--force]`.
 * Writes to DST.partial-<pid> and renames on success, so a failed or interrupted convert
 * never leaves a half-written file under the name the user asked for (and never
 * clobbers an existing file without --force). DST "-" streams to stdout where the
 * output format allows it.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { copyDisk, driverFor, FileSink, StreamSink, type BlockSink } from '../../disk/index.js';
import { InvalidArgumentError, OutputExistsError, SinkNotSeekableError } from '../../errors/index.js';
import { COMMON_IMAGE_OPTIONS, formatOption, needPositionals, parse, sizeOption } from '../args.js';
import { writeJson } from '../output.js';
import { progressFor } from '../progress-bar.js';
import { withDisk } from './image-open.js';

const USAGE =
  'ferry image convert SRC DST -O FORMAT [--subformat S] [-c|--compress] [--cluster-size N] ' +
  '[-f SRCFORMAT] [--force] [--json] [--progress|--no-progress]';

export async function imageConvert(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...COMMON_IMAGE_OPTIONS,
      'output-format': { type: 'string', short: 'O' },
      subformat: { type: 'string' },
      compress: { type: 'boolean', short: 'c' },
      'cluster-size': { type: 'string' },
      force: { type: 'boolean' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
    },
    USAGE,
  );
  const [src, dst] = needPositionals(positionals, 2, USAGE) as [string, string];
  const outFormat = formatOption(values['output-format'], 'output');
  if (!outFormat) throw new InvalidArgumentError(`-O FORMAT is required\nusage: ${USAGE}`);
  const driver = driverFor(outFormat);
  const subformat = values.subformat ?? driver.writableSubformats[0];
  if (!driver.createWriter || !subformat || !driver.writableSubformats.includes(subformat)) {
    throw new InvalidArgumentError(
      `cannot write ${outFormat}${values.subformat ? ` subformat ${values.subformat}` : ''}; ` +
        `writable: ${driver.writableSubformats.join(', ') || 'none'}`,
      { format: outFormat, subformat: values.subformat ?? null },
    );
  }
  const toStdout = dst === '-';
  if (toStdout && driver.needsSeekableSink(subformat)) {
    throw new SinkNotSeekableError(`${outFormat} ${subformat} must be written to a file, not stdout`);
  }
  const clusterSize = sizeOption(values['cluster-size'], 'cluster size');
  const bar = progressFor('convert', values['no-progress'] ? false : values.progress);

  return withDisk(src, values, async (disk) => {
    const tmp = toStdout ? undefined : `${dst}.partial-${process.pid}`;
    if (!toStdout && !values.force) {
      // Refuse early (before any work) when DST exists; rename below would overwrite it.
      if (
        await stat(dst).then(
          () => true,
          () => false,
        )
      ) {
        throw new OutputExistsError(`${dst} already exists (pass --force to overwrite)`, { path: dst });
      }
    }
    const sink: BlockSink = toStdout ? new StreamSink(process.stdout) : await FileSink.create(tmp as string);
    let ok = false;
    try {
      const writer = await driver.createWriter!(sink, {
        virtualSize: disk.virtualSize,
        subformat,
        compress: values.compress ?? false,
        ...(clusterSize !== undefined ? { clusterSize } : {}),
      });
      const result = await copyDisk(disk, writer, { progress: bar });
      await sink.close();
      if (tmp) await rename(tmp, dst);
      ok = true;
      bar?.end();
      if (values.json && !toStdout)
        writeJson({ source: src, output: dst, format: outFormat, subformat, ...result });
      return 0;
    } finally {
      if (!ok) {
        bar?.end();
        await sink.close().catch(() => {});
        if (tmp) await rm(tmp, { force: true });
      }
    }
  });
}
