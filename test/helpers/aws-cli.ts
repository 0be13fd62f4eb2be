/** Runs Debian's awscli 2.9.19 (`/usr/bin/aws`) against a Ferry server. */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { Credentials } from './server.js';

const run = promisify(execFile);
export const AWS_CLI = '/usr/bin/aws';
const BATCH = new URL('../../../test/helpers/aws_batch.py', import.meta.url).pathname;

export interface AwsResult {
  readonly rc: number;
  readonly stdout: string;
  readonly stderr: string;
}

function env(creds: Credentials, region: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_DEFAULT_REGION: region,
    AWS_PAGER: '',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    LC_ALL: 'C.UTF-8',
  };
}

/** One real `/usr/bin/aws sms …` process. */
export async function aws(
  url: string,
  creds: Credentials,
  args: readonly string[],
  region = 'us-east-1',
): Promise<AwsResult> {
  try {
    const { stdout, stderr } = await run(
      AWS_CLI,
      ['sms', ...args, '--endpoint-url', url, '--output', 'json'],
      {
        env: env(creds, region),
        timeout: 60_000,
      },
    );
    return { rc: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { rc: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * Many `aws sms …` command lines through awscli's own entry point (awscli.clidriver, what
 * /usr/bin/aws runs) in one Python process: same argument parsing, serialisation, signing
 * and error printing, without a second of start-up per command.
 */
export async function awsBatch(
  url: string,
  creds: Credentials,
  commands: readonly (readonly string[])[],
  region = 'us-east-1',
): Promise<AwsResult[]> {
  const argvs = commands.map((c) => ['sms', ...c, '--endpoint-url', url, '--output', 'json']);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [BATCH], {
      env: env(creds, region),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`aws batch failed (${code}): ${err}`));
      resolve(JSON.parse(out) as AwsResult[]);
    });
    child.stdin.end(JSON.stringify(argvs));
  });
}
