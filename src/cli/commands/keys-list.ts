/** `ferry keys list [--data-dir DIR] [--json]`: access keys and their status (never secrets). */
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { DATA_DIR_OPTIONS, iso, withControl } from './keys-common.js';

const USAGE = 'ferry keys list [--data-dir DIR] [--database URL] [--json]';

export async function keysList(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, DATA_DIR_OPTIONS, USAGE);
  needPositionals(positionals, 0, USAGE);
  const keys = await withControl(values, ({ control }) => control.keys.list());
  if (values.json) {
    writeJson(
      keys.map((k) => ({
        accessKeyId: k.accessKeyId,
        status: k.status,
        temporary: k.temporary,
        description: k.description,
        createdAt: iso(k.createdAt),
        ...(k.expiresAt !== undefined ? { expiresAt: iso(k.expiresAt) } : {}),
        ...(k.revokedAt !== undefined ? { revokedAt: iso(k.revokedAt) } : {}),
      })),
    );
    return 0;
  }
  const rows = keys.map(
    (k) => `${k.accessKeyId}  ${k.status.padEnd(7)}  ${iso(k.createdAt)}  ${k.description}`,
  );
  process.stdout.write((rows.length ? rows.join('\n') : '(no access keys)') + '\n');
  return 0;
}
