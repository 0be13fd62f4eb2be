/**
 * Keeps the layering honest (docs/architecture.md): imports point one way, contexts are
 * entered only through their index.ts, format parsers never touch the file system, and
 * files stay small enough to read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;
const SRC = join(ROOT, 'src');

/** Which contexts each context may import (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  disk: ['errors'],
  store: ['disk', 'errors'],
  db: ['errors'],
  // The link is transport only: frames, calls, TLS dialling, disks read by range.
  link: ['disk', 'errors'],
  connectors: ['link', 'disk', 'errors'],
  replication: ['connectors', 'link', 'store', 'disk', 'errors'],
  launch: ['link', 'store', 'disk', 'errors'],
  control: ['replication', 'launch', 'connectors', 'link', 'store', 'disk', 'db', 'errors'],
  api: ['control', 'errors'],
  // The CLI wires the process together (server, connector, local commands).
  cli: ['api', 'control', 'replication', 'launch', 'connectors', 'link', 'store', 'disk', 'db', 'errors'],
};

const FS_MODULES = ['node:fs', 'node:fs/promises', 'fs', 'fs/promises'];
const NETWORK_OR_PROCESS = ['node:http', 'node:https', 'node:net', 'node:child_process', 'fastify'];
const MAX_LINES = 500;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1] as string);
}

const sources = files(SRC).filter((f) => !f.endsWith('.test.ts'));
const contextOf = (file: string) => relative(SRC, file).split('/')[0] as string;

test('contexts import only the contexts below them, through their index.ts', () => {
  const problems: string[] = [];
  for (const file of sources) {
    const from = contextOf(file);
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      const to = contextOf(target);
      if (to === from) continue;
      if (!(ALLOWED[from] ?? []).includes(to))
        problems.push(`${relative(ROOT, file)} imports ${to} (${spec})`);
      else if (relative(join(SRC, to), target) !== 'index.js') {
        problems.push(`${relative(ROOT, file)} reaches inside ${to}: ${spec} (import ${to}/index.js)`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('format parsers never touch the file system, the network or processes', () => {
  const problems: string[] = [];
  for (const file of sources.filter((f) => f.includes('/src/disk/formats/'))) {
    for (const spec of imports(file)) {
      if ([...FS_MODULES, ...NETWORK_OR_PROCESS].includes(spec))
        problems.push(`${relative(ROOT, file)}: ${spec}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('disk and store import no network server or child process modules', () => {
  const problems: string[] = [];
  for (const file of sources.filter((f) => ['disk', 'store'].includes(contextOf(f)))) {
    for (const spec of imports(file)) {
      if (NETWORK_OR_PROCESS.includes(spec)) problems.push(`${relative(ROOT, file)}: ${spec}`);
    }
  }
  assert.deepEqual(problems, []);
});

test(`source files stay under ${MAX_LINES} lines`, () => {
  const long = sources
    .map((f) => ({ f: relative(ROOT, f), n: readFileSync(f, 'utf8').split('\n').length }))
    .filter((x) => x.n > MAX_LINES)
    .map((x) => `${x.f}: ${x.n}`);
  assert.deepEqual(long, []);
});
