/** Real `ferry connector` and `ferry host` processes for end-to-end tests (docs/connector-protocol.md). */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FERRY_BIN, ferry } from './qemu.js';
import type { RunningServer } from './server.js';

export interface ConnectorProcess {
  readonly child: ChildProcess;
  out(): string;
  err(): string;
  readonly exited: Promise<number | null>;
}

/** The link port a server started with `--connector-listen 127.0.0.1:0` announced. */
export function linkPort(server: RunningServer): number {
  const port = Number(/connector link on 127\.0\.0\.1:(\d+)/.exec(server.stdout())?.[1]);
  assert.ok(port > 0, `no connector link announced: ${server.stdout()}`);
  return port;
}

/** A one-time enrolment token, made on the server's data directory. */
export async function enrolmentToken(server: RunningServer): Promise<string> {
  const r = await ferry(['connectors', 'enrol', '--data-dir', server.dataDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { enrolmentToken: string }).enrolmentToken;
}

/** Starts `ferry connector` for `source` (--images-dir DIR or --qmp-dir DIR). */
export function startConnector(
  server: RunningServer,
  stateDir: string,
  source: readonly string[],
  token?: string,
): ConnectorProcess {
  return startLinked(server, 'connector', stateDir, source, token);
}

/** Starts a process that dials the server's link: `ferry connector` or `ferry host`. */
export function startLinked(
  server: RunningServer,
  command: 'connector' | 'host',
  stateDir: string,
  extra: readonly string[],
  token?: string,
): ConnectorProcess {
  const child = spawn(
    process.execPath,
    [
      FERRY_BIN,
      command,
      '--server',
      `127.0.0.1:${linkPort(server)}`,
      '--ca-bundle',
      join(server.dataDir, 'tls', 'ca.pem'),
      '--state-dir',
      stateDir,
      ...extra,
      ...(token ? ['--enrol-token', token] : []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}
