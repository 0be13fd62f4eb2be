/**
 * The format drivers, in probe order. Each driver's probe is a content signature (never
 * the file name); raw matches everything and so comes last.
 */
import { InvalidArgumentError } from '../../errors/index.js';
import type { FormatDriver, FormatName } from '../layer.js';
import { qcow2Driver } from './qcow2/index.js';
import { rawDriver } from './raw/index.js';
import { vmdkDriver } from './vmdk/index.js';
import { vhdDriver } from './vhd/index.js';
import { vhdxDriver } from './vhdx/index.js';

export const DRIVERS: readonly FormatDriver[] = [qcow2Driver, vhdxDriver, vmdkDriver, vhdDriver, rawDriver];

export function driverFor(name: string): FormatDriver {
  const d = DRIVERS.find((x) => x.name === name);
  if (!d) {
    throw new InvalidArgumentError(`unknown format ${JSON.stringify(name)}`, {
      format: name,
      known: DRIVERS.map((x) => x.name).join(','),
    });
  }
  return d;
}

export function isFormatName(name: string): name is FormatName {
  return DRIVERS.some((d) => d.name === name);
}
