/**
 * The benchmark disk the issues name: ≈50 % random, 30 % zeros, 20 % text-like, mixed in
 * 256 KiB runs chosen by a seeded PRNG (so every run and every tool sees the same bytes).
 * Written once and reused when present with the right size.
 */
import { randomFillSync } from 'node:crypto';
import { open, stat } from 'node:fs/promises';

const RUN = 256 * 1024;
const WORDS =
  'the server migration disk image block cluster grain table header footer kernel boot loader ' +
  'config service network address database record index journal volume snapshot replication ' +
  'application launch instance template validation schedule connector catalog status error '.split(' ');

function textPool(bytes: number, seed: number): Buffer {
  let x = seed;
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const w = WORDS[x % WORDS.length] as string;
    const s = x % 17 === 0 ? `${w}\n` : `${w} `;
    parts.push(s);
    n += s.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

export async function ensureMixedDisk(path: string, size: number, seed = 42): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (st?.size === size) return;
  const fh = await open(path, 'w');
  const pool = textPool(8 << 20, seed);
  const buf = Buffer.alloc(RUN);
  let x = seed >>> 0;
  try {
    for (let off = 0; off < size; off += RUN) {
      x = (x * 1664525 + 1013904223) >>> 0;
      const r = x / 2 ** 32;
      if (r < 0.5) randomFillSync(buf);
      else if (r < 0.8) buf.fill(0);
      else {
        const start = (x >>> 3) % (pool.length - RUN);
        pool.copy(buf, 0, start, start + RUN);
      }
      await fh.write(buf, 0, Math.min(RUN, size - off), off);
    }
  } finally {
    await fh.close();
  }
}
