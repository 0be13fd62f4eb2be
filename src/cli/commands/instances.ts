/**
 * `ferry instances list [--data-dir DIR] [--json]` and `ferry instances console INSTANCE_ID
 * [--data-dir DIR]`: the instances LaunchApp started on this machine (docs/launch.md), read
 * from the server's data directory, also while the server runs. The console is the
 * instance's serial log so far (its last MiB).
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { DATA_DIR_OPTIONS, iso, withControl } from './keys-common.js';

const USAGE = 'ferry instances list|console [INSTANCE_ID] [--data-dir DIR] [--database URL] [--json]';

export async function instancesCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parse(rest, DATA_DIR_OPTIONS, USAGE);
  if (verb === 'list') {
    needPositionals(positionals, 0, USAGE);
    const { instances: list } = await withControl(values, ({ control }) => control.instances.list());
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
    const { output } = await withControl(values, ({ control }) =>
      control.instances.console({ instanceId: id }),
    );
    process.stdout.write(output);
    return 0;
  }
  throw new InvalidArgumentError(`unknown instances command ${verb ?? '(none)'}\nusage: ${USAGE}`);
}
