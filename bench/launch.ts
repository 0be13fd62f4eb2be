/**
 * Launch benchmark (issue: launch): how long an image takes to become a starting instance,
 * whatever its size, because nothing is copied (NBD export of the stored image + qcow2
 * overlay). For a 2 GiB mixed image and a 2 TiB sparse one, stored in a local image store:
 * the time before QEMU starts (`prepare`: checks, NBD export, overlay) and until QEMU
 * answers on QMP (`start`), best of N. The reference is what copying would cost: `qemu-img
 * convert` of the same 2 GiB disk to a new qcow2 (the step a copy-based launcher adds).
 *
 *   npm run build && node dist/bench/launch.js [--runs 3] [--dir /tmp/ferry-bench-launch]
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDisk } from '../src/disk/index.js';
import { launchInstance } from '../src/launch/index.js';
import { LocalBackend, openImageDisk, RawMasterKey, Repository, writeImage } from '../src/store/index.js';
import { ensureMixedDisk } from './mixed-disk.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: '/tmp/ferry-bench-launch' },
  },
});
const RUNS = Number(values.runs);
const DIR = values.dir as string;
const TiB = 1024 ** 4;

async function main(): Promise<void> {
  await rm(join(DIR, 'repo'), { recursive: true, force: true });
  await rm(join(DIR, 'i'), { recursive: true, force: true });
  await mkdir(join(DIR, 'i'), { recursive: true });
  const repo = await Repository.init(new LocalBackend(join(DIR, 'repo')), RawMasterKey.generate().master);
  const mixed = join(DIR, 'mixed.raw');
  await ensureMixedDisk(mixed, 2 * 1024 ** 3);
  const big = join(DIR, 'big.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', big, '2T']);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${TiB} 1M`, big]);
  const images: [string, string][] = [];
  for (const [name, path] of [
    ['2 GiB mixed', mixed],
    ['2 TiB sparse', big],
  ] as const) {
    const d = await openDisk(path);
    try {
      images.push([name, (await writeImage(repo, { name, disks: [{ name: 'd0', disk: d }] })).id]);
    } finally {
      await d.close();
    }
  }

  let copy = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const out = join(DIR, 'copy.qcow2');
    const t = performance.now();
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', mixed, out]);
    copy = Math.min(copy, (performance.now() - t) / 1000);
    await rm(out);
  }

  console.log(
    `\nmachine: ${cpus().length} x ${cpus()[0]?.model} | node ${process.version}, best of ${RUNS}\n`,
  );
  console.log('| image | before QEMU starts | until QEMU answers | target | met |');
  console.log('| --- | ---: | ---: | --- | --- |');
  for (const [name, id] of images) {
    let prepare = Infinity;
    let start = Infinity;
    for (let i = 0; i < RUNS; i++) {
      const view = await openImageDisk(repo, id, 0);
      const inst = await launchInstance({
        dir: join(DIR, 'i', `r${i}`),
        name: 'bench',
        disk: view.disk,
        type: 'custom:1x128',
      });
      prepare = Math.min(prepare, inst.timings.prepareMs);
      start = Math.min(start, inst.timings.startMs);
      await inst.terminate({ timeoutMs: 0 });
    }
    const ok = prepare < 2000;
    console.log(
      `| ${name} | ${(prepare / 1000).toFixed(3)} s | ${(start / 1000).toFixed(3)} s | < 2 s | ${ok ? 'yes' : 'NO'} |`,
    );
  }
  console.log(
    `\nreference: copying the 2 GiB disk first (qemu-img convert → qcow2) takes ${copy.toFixed(2)} s`,
  );
}

await main();
