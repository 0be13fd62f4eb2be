/**
 * The server's local bucket `ferry-local` (user data and configure scripts that launch
 * configurations name by S3 location), over its Ferry API:
 *
 *   ferry objects put KEY FILE        upload (at most 1 MiB)
 *   ferry objects get KEY             print the content
 *   ferry objects list [PREFIX]       keys and sizes
 *   ferry objects delete KEY
 */
import { open } from 'node:fs/promises';
import { InvalidArgumentError, toFerryError } from '../../errors/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS, CLIENT_USAGE } from '../remote/connection.js';
import { withRemote } from '../remote/session.js';
import { renderTable } from '../table.js';

const USAGE = `ferry objects put KEY FILE | get KEY | list [PREFIX] | delete KEY ${CLIENT_USAGE}`;
/** Same bound as the server's (src/control/objects.ts). */
const MAX_OBJECT_BYTES = 1024 * 1024;

export async function objectsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, CLIENT_OPTIONS, USAGE);
  const [verb, ...rest] = positionals;
  return withRemote(values, async (remote) => {
    if (verb === 'put') {
      const [key, file] = needPositionals(rest, 2, USAGE) as [string, string];
      const body = await readBounded(file);
      const out = await remote.ferry<{ key: string; size: number }>('PutObject', {
        key,
        bodyBase64: body.toString('base64'),
      });
      if (values.json) writeJson(out);
      else process.stdout.write(`ferry-local/${out.key}  ${out.size} bytes\n`);
      return 0;
    }
    if (verb === 'get') {
      const [key] = needPositionals(rest, 1, USAGE) as [string];
      const out = await remote.ferry<{ bodyBase64: string }>('GetObject', { key });
      process.stdout.write(Buffer.from(out.bodyBase64, 'base64'));
      return 0;
    }
    if (verb === 'delete') {
      const [key] = needPositionals(rest, 1, USAGE) as [string];
      await remote.ferry('DeleteObject', { key });
      if (!values.json) process.stdout.write(`deleted ferry-local/${key}\n`);
      return 0;
    }
    if (verb === 'list') {
      const prefix = rest[0];
      const { objects } = await remote.ferry<{ objects: { key: string; size: number }[] }>(
        'ListObjects',
        prefix ? { prefix } : {},
      );
      if (values.json) writeJson(objects);
      else
        process.stdout.write(
          renderTable(
            ['KEY', 'BYTES'],
            objects.map((o) => [o.key, String(o.size)]),
          ),
        );
      return 0;
    }
    throw new InvalidArgumentError(`unknown objects command ${JSON.stringify(verb ?? '')}\nusage: ${USAGE}`);
  });
}

async function readBounded(path: string): Promise<Buffer> {
  const fh = await open(path, 'r').catch((err: unknown) => {
    throw toFerryError(err);
  });
  try {
    const buf = Buffer.alloc(MAX_OBJECT_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_OBJECT_BYTES) {
      throw new InvalidArgumentError(`${path}: an object is at most ${MAX_OBJECT_BYTES} bytes`, { path });
    }
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
