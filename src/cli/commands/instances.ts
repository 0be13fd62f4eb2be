/**
 * `ferry instances list [--data-dir DIR] [--json]` and `ferry instances console INSTANCE_ID
 * [--data-dir DIR]`: the instances LaunchApp started on this machine (docs/launch.md), read
 * from the server's data directory, also while the server runs. The console is the
 * instance's serial log so far (its last MiB).
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { repositories } from '../../db/index.js';
import { InvalidArgumentError, NotFoundError } from '../../errors/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { DATA_DIR_OPTIONS, iso, withControl } from './keys-common.js';

const USAGE = 'ferry instances list|console [INSTANCE_ID] [--data-dir DIR] [--database URL] [--json]';
/** The console shows the end of a long log: a guest may print without end. */
const CONSOLE_TAIL_BYTES = 1024 * 1024;

export async function instancesCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parse(rest, DATA_DIR_OPTIONS, USAGE);
  if (verb === 'list') {
    needPositionals(positionals, 0, USAGE);
    const list = await withControl(values, ({ control }) => repositories(control.db).instances.all());
    const rows = list.map((i) => ({
      instanceId: i.instanceId,
      appId: i.appId,
      serverId: i.serverId,
      imageId: i.imageId,
      instanceType: i.instanceType,
      state: i.state,
      statusMessage: i.statusMessage,
      launchOrder: i.launchOrder,
      createdAt: iso(i.createdAt),
    }));
    if (values.json) writeJson(rows);
    else
      process.stdout.write(
        (rows.length
          ? rows
              .map(
                (r) =>
                  `${r.instanceId}  ${r.state.padEnd(10)}  ${r.appId ?? '-'}  ${r.serverId}  ${r.imageId}  ${r.instanceType}`,
              )
              .join('\n')
          : '(no instances)') + '\n',
      );
    return 0;
  }
  if (verb === 'console') {
    const [id] = needPositionals(positionals, 1, USAGE) as [string];
    const rec = await withControl(values, ({ control }) => repositories(control.db).instances.get(id));
    if (!rec) throw new NotFoundError(`no instance ${id}`, { resource: 'instance', instanceId: id });
    process.stdout.write(await tail(join(rec.dir, 'console.log')));
    return 0;
  }
  throw new InvalidArgumentError(`unknown instances command ${verb ?? '(none)'}\nusage: ${USAGE}`);
}

async function tail(path: string): Promise<string> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return '';
  try {
    const { size } = await fh.stat();
    const n = Math.min(size, CONSOLE_TAIL_BYTES);
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, size - n);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}
