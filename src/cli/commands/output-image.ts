/**
 * The output side shared by `image convert` and `images export`: -O FORMAT / --subformat /
 * -c / --cluster-size / --force, checked before any work; the file is written to
 * DST.partial-<pid> and renamed into place only when complete, so a failed or interrupted
 * command never leaves a half-written file under the name the user asked for, and never
 * clobbers an existing file without --force. DST "-" streams to stdout where the format
 * allows it.
 */
import { rename, rm, stat } from 'node:fs/promises';
import {
  driverFor,
  FileSink,
  StreamSink,
  type BlockSink,
  type DiskWriter,
  type FormatDriver,
} from '../../disk/index.js';
import { InvalidArgumentError, OutputExistsError, SinkNotSeekableError } from '../../errors/index.js';
import { formatOption, sizeOption, type Options } from '../args.js';

export const OUTPUT_OPTIONS = {
  'output-format': { type: 'string', short: 'O' },
  subformat: { type: 'string' },
  compress: { type: 'boolean', short: 'c' },
  'cluster-size': { type: 'string' },
  force: { type: 'boolean' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
} as const satisfies Options;

export interface OutputFlags {
  'output-format'?: string | undefined;
  subformat?: string | undefined;
  compress?: boolean | undefined;
  'cluster-size'?: string | undefined;
  force?: boolean | undefined;
}

export interface OutputPlan {
  readonly dst: string;
  readonly driver: FormatDriver;
  readonly format: string;
  readonly subformat: string;
  readonly toStdout: boolean;
  readonly compress: boolean;
  readonly clusterSize: number | undefined;
}

/** Validates the output flags and DST (refusing an existing file early, before any work). */
export async function planOutput(flags: OutputFlags, dst: string, usage: string): Promise<OutputPlan> {
  const format = formatOption(flags['output-format'], 'output');
  if (!format) throw new InvalidArgumentError(`-O FORMAT is required\nusage: ${usage}`);
  const driver = driverFor(format);
  const subformat = flags.subformat ?? driver.writableSubformats[0];
  if (!driver.createWriter || !subformat || !driver.writableSubformats.includes(subformat)) {
    throw new InvalidArgumentError(
      `cannot write ${format}${flags.subformat ? ` subformat ${flags.subformat}` : ''}; ` +
        `writable: ${driver.writableSubformats.join(', ') || 'none'}`,
      { format, subformat: flags.subformat ?? null },
    );
  }
  const toStdout = dst === '-';
  if (toStdout && driver.needsSeekableSink(subformat)) {
    throw new SinkNotSeekableError(`${format} ${subformat} must be written to a file, not stdout`);
  }
  const exists = await stat(dst).then(
    () => true,
    () => false,
  );
  if (!toStdout && !flags.force && exists) {
    throw new OutputExistsError(`${dst} already exists (pass --force to overwrite)`, { path: dst });
  }
  return {
    dst,
    driver,
    format,
    subformat,
    toStdout,
    compress: flags.compress ?? false,
    clusterSize: sizeOption(flags['cluster-size'], 'cluster size'),
  };
}

/** Creates the writer, runs `copy` into it, and puts the file in place only on success. */
export async function writeOutput<R>(
  plan: OutputPlan,
  virtualSize: number,
  copy: (writer: DiskWriter) => Promise<R>,
): Promise<R> {
  const tmp = plan.toStdout ? undefined : `${plan.dst}.partial-${process.pid}`;
  const sink: BlockSink = tmp ? await FileSink.create(tmp) : new StreamSink(process.stdout);
  let ok = false;
  try {
    const writer = await plan.driver.createWriter!(sink, {
      virtualSize,
      subformat: plan.subformat,
      compress: plan.compress,
      ...(plan.clusterSize !== undefined ? { clusterSize: plan.clusterSize } : {}),
    });
    const result = await copy(writer);
    await sink.close();
    if (tmp) await rename(tmp, plan.dst);
    ok = true;
    return result;
  } finally {
    if (!ok) {
      await sink.close().catch(() => {});
      if (tmp) await rm(tmp, { force: true });
    }
  }
}
