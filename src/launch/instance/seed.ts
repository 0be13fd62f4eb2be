/**
 * cloud-init NoCloud seeds: what an instance reads at first boot — its user data and the
 * configure script of its launch configuration (SMS's SHELL_SCRIPT / POWERSHELL_SCRIPT) —
 * as an ISO 9660 image labelled `cidata` with `user-data` and `meta-data` at its root
 * (https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html; Windows
 * guests read the same seed with cloudbase-init). Built with genisoimage, the tool
 * cloud-localds uses; Rock Ridge keeps the file names exact.
 *
 * User data and a configure script together become a MIME multipart document: cloud-init
 * runs each part by its type (text/cloud-config, text/x-shellscript, …), once per instance.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InvalidArgumentError, LaunchFailedError } from '../../errors/index.js';
import { findProgram } from './host.js';

const run = promisify(execFile);

/** Per part: cloud-init reads user data whole into memory; EC2 caps it at 16 KiB, we allow more. */
export const MAX_SEED_PART_BYTES = 1024 * 1024;

export type ScriptType = 'SHELL_SCRIPT' | 'POWERSHELL_SCRIPT';

export interface SeedContent {
  /** Becomes meta-data `instance-id`: cloud-init runs per-instance modules once per id. */
  readonly instanceId: string;
  readonly hostname: string;
  /** User data as given (cloud-config, a script, a multipart document …). */
  readonly userData?: Buffer;
  /** Run once at first boot. */
  readonly configureScript?: { readonly type: ScriptType; readonly body: Buffer };
}

/** Writes DIR/seed.iso for `content`; returns its path. */
export async function buildSeed(dir: string, content: SeedContent, genisoimage?: string): Promise<string> {
  for (const [what, b] of [
    ['user data', content.userData],
    ['configure script', content.configureScript?.body],
  ] as const) {
    if (b && b.length > MAX_SEED_PART_BYTES) {
      throw new InvalidArgumentError(`${what} is ${b.length} bytes; at most ${MAX_SEED_PART_BYTES}`, {
        bytes: b.length,
      });
    }
  }
  const tool = await findProgram('genisoimage', genisoimage);
  const work = await mkdtemp(join(dir, '.seed-'));
  const iso = join(dir, 'seed.iso');
  try {
    await writeFile(join(work, 'user-data'), userData(content));
    await writeFile(
      join(work, 'meta-data'),
      `instance-id: ${content.instanceId}\nlocal-hostname: ${hostname(content.hostname)}\n`,
    );
    await run(
      tool,
      [
        '-quiet',
        '-output',
        iso,
        '-volid',
        'cidata',
        '-joliet',
        '-rock',
        join(work, 'user-data'),
        join(work, 'meta-data'),
      ],
      { maxBuffer: 1 << 20 },
    ).catch((err: { stderr?: string; message: string }) => {
      throw new LaunchFailedError(
        `genisoimage could not build the seed: ${(err.stderr ?? err.message).trim()}`,
      );
    });
    return iso;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The user-data file: the user data alone, the script alone, or both as multipart. */
export function userData(content: SeedContent): Buffer {
  const script = content.configureScript ? scriptPart(content.configureScript) : undefined;
  if (!script) return content.userData ?? Buffer.from('#cloud-config\n{}\n');
  if (!content.userData) return script.body;
  const boundary = `ferry-${randomBytes(12).toString('hex')}`;
  const part = (type: string, name: string, body: Buffer) =>
    Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Type: ${type}; charset="utf-8"\r\nMIME-Version: 1.0\r\n` +
          `Content-Disposition: attachment; filename="${name}"\r\n\r\n`,
      ),
      body,
      Buffer.from('\r\n'),
    ]);
  return Buffer.concat([
    Buffer.from(`Content-Type: multipart/mixed; boundary="${boundary}"\r\nMIME-Version: 1.0\r\n\r\n`),
    part(partType(content.userData), 'user-data', content.userData),
    part(script.type, 'configure-script', script.body),
    Buffer.from(`--${boundary}--\r\n`),
  ]);
}

/** A configure script with the first-line marker cloud-init / cloudbase-init run it by. */
function scriptPart(s: { type: ScriptType; body: Buffer }): { type: string; body: Buffer } {
  const text = s.body.toString('utf8');
  if (s.type === 'POWERSHELL_SCRIPT') {
    return {
      type: 'text/x-shellscript',
      body: text.startsWith('#ps1') ? s.body : Buffer.from(`#ps1_sysnative\n${text}`),
    };
  }
  return {
    type: 'text/x-shellscript',
    body: text.startsWith('#!') ? s.body : Buffer.from(`#!/bin/sh\n${text}`),
  };
}

/** cloud-init's part types by the first line of the part (its "user data formats"). */
function partType(b: Buffer): string {
  const head = b.subarray(0, 64).toString('utf8');
  if (head.startsWith('#cloud-config')) return 'text/cloud-config';
  if (head.startsWith('#!')) return 'text/x-shellscript';
  if (head.startsWith('#cloud-boothook')) return 'text/cloud-boothook';
  if (head.startsWith('#include')) return 'text/x-include-url';
  return 'text/plain';
}

/** RFC 1123 host names: letters, digits, '-'; other characters become '-'. */
function hostname(name: string): string {
  const h = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return h || 'ferry-instance';
}
