/**
 * kill -9 at random moments of `images write`, `images delete` and `store gc` (the CLI as a
 * child process): the repository stays consistent (`store check` passes), no listed image
 * loses a block (each exports identical to its source), interrupted writes resume, and GC
 * finishes what a killed GC left. Set FERRY_CRASH_SEED to replay a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ferry, FERRY_BIN, pseudoRandom, sha256File, tempDir, type CliResult } from '../helpers/qemu.js';
import { mixedDisk } from './helpers.js';

const SEED = Number(process.env.FERRY_CRASH_SEED ?? Date.now() % 1_000_000);
let state = SEED || 1;
function rand(): number {
  state = (state * 1103515245 + 12345) % 2147483648;
  return state / 2147483648;
}
const why = (s: string) => `${s} (FERRY_CRASH_SEED=${SEED})`;

interface Ctx {
  dir: string;
  args: string[];
  /** image id → source file */
  sources: Map<string, string>;
}

async function setup(): Promise<Ctx> {
  const dir = await tempDir('ferry-crash-');
  const repo = join(dir, 'repo');
  const key = join(dir, 'master.key');
  const init = await ferry([
    'store',
    'init',
    '--repo',
    repo,
    '--new-key-file',
    key,
    '--block-size',
    '4K',
    '--fanout',
    '16',
  ]);
  assert.equal(init.code, 0, init.stderr);
  return { dir, args: ['--repo', repo, '--key-file', key], sources: new Map() };
}

const run = (c: Ctx, args: string[]) => ferry([...args, ...c.args], { timeoutMs: 180_000 });

/** Starts the CLI and SIGKILLs it after `ms` (if still running). */
function killAfter(c: Ctx, args: string[], ms: number): Promise<{ killed: boolean; r: CliResult }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args, ...c.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    let killed = false;
    const timer = setTimeout(() => {
      killed = child.kill('SIGKILL');
    }, ms);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        killed: killed && signal === 'SIGKILL',
        r: {
          code,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
          ms: performance.now() - started,
        },
      });
    });
  });
}

async function assertConsistent(c: Ctx, label: string, exportAll = false): Promise<void> {
  const check = await run(c, ['store', 'check']);
  assert.equal(check.code, 0, why(`${label}: check failed: ${check.stdout}${check.stderr}`));
  const listed = JSON.parse((await run(c, ['images', 'list', '--json'])).stdout) as { id: string }[];
  for (const { id } of listed) {
    assert.ok(c.sources.has(id), why(`${label}: unknown image ${id} listed`));
    if (!exportAll) continue;
    const out = join(c.dir, `check-${id}.raw`);
    const e = await run(c, ['images', 'export', id, out, '-O', 'raw', '--force']);
    assert.equal(e.code, 0, why(`${label}: export ${id}: ${e.stderr}`));
    assert.equal(await sha256File(out), await sha256File(c.sources.get(id)!), why(`${label}: ${id} content`));
  }
}

/** A variant of `base`: some 64 KiB regions rewritten (new chunks), the rest shared. */
async function variant(c: Ctx, base: Buffer, n: number): Promise<string> {
  const buf = Buffer.from(base);
  for (let i = 0; i < 24; i++) {
    const off = Math.floor(rand() * (buf.length / 65536)) * 65536;
    pseudoRandom(65536, n * 1000 + i).copy(buf, off);
  }
  const file = join(c.dir, `disk-${n}.raw`);
  await writeFile(file, buf);
  return file;
}

const WRITE = (file: string, name: string) => [
  'images',
  'write',
  file,
  '--name',
  name,
  '--job',
  'crash',
  '--threads',
  '1',
  '--pack-size',
  '96K',
  '--checkpoint-interval',
  '0',
];

test(`kill -9 during images write, then resume: consistent, nothing half-listed (seed ${SEED})`, async () => {
  const c = await setup();
  const base = mixedDisk(16 * 1024 * 1024, 9);
  const first = await variant(c, base, 0);
  const t0 = performance.now();
  const w0 = await run(c, WRITE(first, 'base'));
  assert.equal(w0.code, 0, w0.stderr);
  c.sources.set(w0.stdout.trim(), first);
  const full = performance.now() - t0;
  const s0 = performance.now();
  await run(c, ['images', 'list']);
  const startup = performance.now() - s0; // node start + repository open: nothing to kill yet

  let resumed = 0;
  /** One write killed `at` ms in; an interrupted one is resumed (or, if `abandon`, deleted). */
  const round = async (i: number, at: number, abandon: boolean) => {
    const file = await variant(c, base, i);
    const { killed, r } = await killAfter(c, WRITE(file, `v${i}`), at);
    if (!killed) {
      assert.equal(r.code, 0, r.stderr);
      c.sources.set(r.stdout.trim(), file);
      return 'finished';
    }
    const incomplete = JSON.parse((await run(c, ['images', 'list', '--incomplete', '--json'])).stdout) as {
      id: string;
      committed: boolean;
      meta?: unknown;
    }[];
    // The write may have committed just before the kill: then it is listed and complete —
    // with its staging left (`committed`), or already cleaned up (listed, but its id never
    // printed: the kill came between the cleanup and the output).
    for (const w of incomplete.filter((x) => x.committed)) c.sources.set(w.id, file);
    const listedNow = JSON.parse((await run(c, ['images', 'list', '--json'])).stdout) as { id: string }[];
    const fresh = listedNow.filter((x) => !c.sources.has(x.id));
    assert.ok(fresh.length <= 1, why(`one killed write lists at most one image: ${JSON.stringify(fresh)}`));
    for (const x of fresh) c.sources.set(x.id, file);
    await assertConsistent(c, `write ${i} killed at ${Math.round(at)} ms`);
    const pending = incomplete.find((x) => !x.committed && x.meta);
    const outcome = pending
      ? 'interrupted'
      : incomplete.some((x) => x.committed) || fresh.length > 0
        ? 'committed'
        : 'not started';
    process.stderr.write(`write ${i}: killed at ${Math.round(at)} of ${Math.round(full)} ms: ${outcome}\n`);
    if (!pending) return outcome;
    if (abandon) {
      // Abandon instead of resuming: delete the incomplete write.
      assert.equal((await run(c, ['images', 'delete', pending.id])).code, 0);
      return outcome;
    }
    const res = await run(c, [...WRITE(file, `v${i}`), '--resume', pending.id]);
    assert.equal(res.code, 0, why(`resume ${pending.id}: ${res.stderr}`));
    assert.equal(res.stdout.trim(), pending.id);
    c.sources.set(pending.id, file);
    resumed++;
    return outcome;
  };
  const rounds = 6;
  for (let i = 1; i <= rounds; i++) {
    // Stratified random kill points over the part of the run that does work.
    const at = startup * 0.8 + (full - startup * 0.8) * ((i - 1 + rand()) / rounds);
    await round(i, at, i % 3 === 0);
  }
  // On a loaded machine every kill may have missed the write's working part: bisect the
  // kill time towards it (too early → later, too late → earlier) until one lands.
  let lo = startup * 0.5;
  let hi = full * 2;
  for (let i = rounds + 1; resumed === 0 && i <= rounds + 10; i++) {
    const at = (lo + hi) / 2;
    const outcome = await round(i, at, false);
    if (outcome === 'not started') lo = at;
    else if (outcome !== 'interrupted') hi = at;
  }
  await assertConsistent(c, 'after writes');
  const gc = await run(c, ['store', 'gc']);
  assert.equal(gc.code, 0, gc.stderr);
  await assertConsistent(c, 'after gc', true);
  const deep = await run(c, ['store', 'check', '--read-data']);
  assert.equal(deep.code, 0, why(deep.stdout));
  assert.doesNotMatch(deep.stdout, /warning/, why('GC left no orphan'));
  process.stderr.write(`crash test: ${resumed} write(s) resumed after kill -9 (seed ${SEED})\n`);
  assert.ok(resumed > 0, why('at least one kill landed mid-write and was resumed'));
});

test(`kill -9 during images delete and store gc: the next GC finishes, nothing listed is lost (seed ${SEED})`, async () => {
  const c = await setup();
  const base = mixedDisk(4 * 1024 * 1024, 4);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const file = await variant(c, base, 100 + i);
    const w = await run(c, WRITE(file, `g${i}`));
    assert.equal(w.code, 0, w.stderr);
    ids.push(w.stdout.trim());
    c.sources.set(w.stdout.trim(), file);
  }
  const t0 = performance.now();
  const probe = await run(c, ['store', 'gc', '--dry-run']);
  assert.equal(probe.code, 0, probe.stderr);
  const gcTime = Math.max(300, performance.now() - t0);
  for (let round = 0; round < 4; round++) {
    const victim = ids.shift();
    if (victim) {
      const { killed, r } = await killAfter(c, ['images', 'delete', victim], 100 + rand() * 500);
      if (!killed) assert.equal(r.code, 0, r.stderr);
      const still = (await run(c, ['images', 'show', victim])).code === 0;
      if (!still) c.sources.delete(victim);
      else ids.push(victim); // not deleted: keep it, it must stay whole
    }
    const at = 100 + rand() * gcTime * 2;
    await killAfter(c, ['store', 'gc', '--repack-threshold', '0.05'], at);
    await assertConsistent(c, `gc round ${round} killed at ${Math.round(at)} ms`);
  }
  for (let i = 0; i < 2; i++) assert.equal((await run(c, ['store', 'gc'])).code, 0);
  await assertConsistent(c, 'final', true);
  const deep = await run(c, ['store', 'check', '--read-data']);
  assert.equal(deep.code, 0, why(deep.stdout));
  assert.doesNotMatch(deep.stdout, /warning/, why(`GC finished what killed runs left: ${deep.stdout}`));
});

test('store gc while a writer runs (separate processes): the new image stays whole', async () => {
  const c = await setup();
  const base = mixedDisk(8 * 1024 * 1024, 6);
  const a = await variant(c, base, 200);
  const wa = await run(c, WRITE(a, 'a'));
  assert.equal(wa.code, 0, wa.stderr);
  const b = await variant(c, base, 201);
  const writer = run(c, WRITE(b, 'b'));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await run(c, ['images', 'delete', wa.stdout.trim()])).code, 0);
  for (let i = 0; i < 3; i++) assert.equal((await run(c, ['store', 'gc'])).code, 0);
  const wb = await writer;
  assert.equal(wb.code, 0, wb.stderr);
  c.sources.set(wb.stdout.trim(), b);
  for (let i = 0; i < 2; i++) assert.equal((await run(c, ['store', 'gc'])).code, 0);
  await assertConsistent(c, 'gc during write', true);
});
