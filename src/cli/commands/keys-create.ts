/**
 * `ferry keys create [--data-dir DIR] [--description TEXT] [--ttl DURATION] [--json]`:
 * makes an access key for SigV4 and prints its secret, once. Works while `ferry server`
 * runs on the same data directory (the server reads keys from the database per request).
 * With --ttl the key is temporary (ASIA…) and needs the printed session token.
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { DATA_DIR_OPTIONS, iso, withControl } from './keys-common.js';

const USAGE =
  'ferry keys create [--data-dir DIR] [--database URL] [--description TEXT] [--ttl 15m|12h] [--json]';

export function durationMs(text: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`invalid duration ${JSON.stringify(text)} (use e.g. 90s, 15m, 12h)`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3600_000 }[m[2] as 's' | 'm' | 'h'];
}

export async function keysCreate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...DATA_DIR_OPTIONS, description: { type: 'string' }, ttl: { type: 'string' } },
    USAGE,
  );
  needPositionals(positionals, 0, USAGE);
  const key = await withControl(values, ({ control }) =>
    control.keys.create({
      ...(values.description !== undefined ? { description: values.description } : {}),
      ...(values.ttl !== undefined ? { ttlMs: durationMs(values.ttl) } : {}),
    }),
  );
  if (values.json) {
    writeJson({
      accessKeyId: key.accessKeyId,
      secretAccessKey: key.secretAccessKey,
      ...(key.sessionToken ? { sessionToken: key.sessionToken, expiration: iso(key.expiration) } : {}),
    });
    return 0;
  }
  const lines = [`accessKeyId: ${key.accessKeyId}`, `secretAccessKey: ${key.secretAccessKey}`];
  if (key.sessionToken) lines.push(`sessionToken: ${key.sessionToken}`, `expiration: ${iso(key.expiration)}`);
  lines.push('(the secret is shown only now; store it safely)');
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
