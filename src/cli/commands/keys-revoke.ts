/** `ferry keys revoke ACCESS_KEY_ID [--data-dir DIR] [--json]`: the key stops working at once. */
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { DATA_DIR_OPTIONS, iso, withControl } from './keys-common.js';

const USAGE = 'ferry keys revoke ACCESS_KEY_ID [--data-dir DIR] [--database URL] [--json]';

export async function keysRevoke(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, DATA_DIR_OPTIONS, USAGE);
  const [id] = needPositionals(positionals, 1, USAGE) as [string];
  const k = await withControl(values, ({ control }) => control.keys.revoke(id));
  if (values.json) writeJson({ accessKeyId: k.accessKeyId, status: k.status, revokedAt: iso(k.revokedAt) });
  else process.stdout.write(`revoked ${k.accessKeyId}\n`);
  return 0;
}
