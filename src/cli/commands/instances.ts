/**
 * `ferry instances list [--data-dir DIR] [--json]` and `ferry instances console INSTANCE_ID
 * [--data-dir DIR]`: the instances LaunchApp started on this machine (docs/launch.md), read
 * from the server's data directory, also while the server runs. The console is the
 * instance's serial log so far (its last MiB).
 *
 * With `--endpoint URL` (or FERRY_ENDPOINT) and no `--data-dir`, list and console ask the running
 * server instead (the only way to the console of an instance on a remote launch host).
 *
 * `ferry instances stop|start|terminate ID... [--endpoint URL]` go through the running
 * server (StopInstances / StartInstances / TerminateInstances): it owns the QEMU processes
 * and the image exports they boot from.
 */
import type { InstanceRecord } from '../../db/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { CLIENT_OPTIONS, CLIENT_USAGE } from '../remote/connection.js';
import { withRemote } from '../remote/session.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { DATA_DIR_OPTIONS, iso, withControl } from './keys-common.js';

const USAGE =
  'ferry instances list|console [INSTANCE_ID] [--data-dir DIR] [--database URL] [--endpoint URL] [--json] | ferry instances stop|start|terminate ID... [--endpoint URL]';

const REMOTE_VERBS = {
  stop: 'StopInstances',
  start: 'StartInstances',
  terminate: 'TerminateInstances',
} as const;
const REMOTE_USAGE = `ferry instances stop|start|terminate INSTANCE_ID... ${CLIENT_USAGE}`;

export async function instancesCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== undefined && Object.hasOwn(REMOTE_VERBS, verb)) {
    // Through the server: it owns the instances' QEMU processes and image exports.
    const { values, positionals } = parse(rest, CLIENT_OPTIONS, REMOTE_USAGE);
    if (positionals.length === 0) throw new InvalidArgumentError(`give instance ids\nusage: ${REMOTE_USAGE}`);
    return withRemote(values, async (remote) => {
      const { instances } = await remote.ferry<{ instances: { instanceId: string; state: string }[] }>(
        REMOTE_VERBS[verb as keyof typeof REMOTE_VERBS],
        { instanceIds: positionals },
      );
      if (values.json) writeJson(instances);
      else for (const i of instances) process.stdout.write(`${i.instanceId}  ${i.state}\n`);
      return 0;
    });
  }
  const { values, positionals } = parse(rest, { ...DATA_DIR_OPTIONS, ...CLIENT_OPTIONS }, USAGE);
  // With --endpoint (and no --data-dir) through the running server: it also reaches the
  // consoles of instances on remote launch hosts.
  const viaServer =
    values['data-dir'] === undefined && (values.endpoint ?? process.env['FERRY_ENDPOINT']) !== undefined;
  if (verb === 'list') {
    needPositionals(positionals, 0, USAGE);
    const { instances: list } = viaServer
      ? await withRemote(values, (r) => r.ferry<{ instances: InstanceRecord[] }>('ListInstances', {}))
      : await withControl(values, ({ control }) => control.instances.list());
    const rows = (list ?? []).map((i) => ({
      instanceId: i.instanceId,
      appId: i.appId,
      serverId: i.serverId,
      imageId: i.imageId,
      instanceType: i.instanceType,
      state: i.state,
      statusMessage: i.statusMessage,
      launchOrder: i.launchOrder,
      hostId: i.hostId ?? null,
      createdAt: viaServer ? new Date(i.createdAt * 1000).toISOString() : iso(i.createdAt),
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
    const { output } = viaServer
      ? await withRemote(values, (r) => r.ferry<{ output: string }>('GetInstanceConsole', { instanceId: id }))
      : await withControl(values, ({ control }) => control.instances.console({ instanceId: id }));
    process.stdout.write(output);
    return 0;
  }
  throw new InvalidArgumentError(`unknown instances command ${verb ?? '(none)'}\nusage: ${USAGE}`);
}
