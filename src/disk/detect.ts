/** Format detection from content: the first driver whose probe matches wins. */
import type { ByteSource } from './io/byte-source.js';
import type { FormatDriver } from './layer.js';
import { DRIVERS } from './formats/index.js';

export async function detectFormat(src: ByteSource): Promise<FormatDriver> {
  for (const driver of DRIVERS) {
    if (await driver.probe(src)) return driver;
  }
  // Unreachable while raw (which matches everything) is registered.
  return DRIVERS[DRIVERS.length - 1] as FormatDriver;
}
