/**
 * `ferry host …`: a remote launch host process next to QEMU, and `ferry hosts …`: its
 * enrolment tokens and the launch hosts a server knows (docs/launch.md, "Launch hosts").
 *
 *   ferry hosts enrol [--ttl 1h] [--description D] [--data-dir DIR | --endpoint URL]
 *   ferry host --server HOST:PORT --ca-bundle CA.pem --state-dir DIR [--enrol-token T]
 *              [--instances-dir DIR]
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AbortedError, InvalidArgumentError } from '../../errors/index.js';
import { HostAgent } from '../../launch/index.js';
import { enrol, keepLinked, LinkSlot } from '../../link/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS } from '../remote/connection.js';
import { withRemote } from '../remote/session.js';
import { DATA_DIR_OPTIONS, withControl } from './keys-common.js';
import { printEnrolmentToken } from './enrol-token.js';
import { ferryVersion, parseListen } from './server.js';

const USAGE =
  'ferry host --server HOST:PORT --ca-bundle CA.pem --state-dir DIR [--enrol-token T] [--instances-dir DIR]';

export async function hostCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      server: { type: 'string' },
      'ca-bundle': { type: 'string' },
      'state-dir': { type: 'string' },
      'enrol-token': { type: 'string' },
      'instances-dir': { type: 'string' },
    },
    USAGE,
  );
  needPositionals(positionals, 0, USAGE);
  if (!values.server || !values['state-dir'])
    throw new InvalidArgumentError(`--server and --state-dir are required\nusage: ${USAGE}`);
  const at = parseListen(values.server);
  const stateDir = values['state-dir'];
  const caPem = values['ca-bundle'] ? await readFile(values['ca-bundle'], 'utf8') : '';
  const target = { host: at.host, port: at.port, caPem };
  const log = {
    info: (m: string) => process.stdout.write(`ferry host: ${m}\n`),
    warn: (m: string) => process.stderr.write(`ferry host: ${m}\n`),
  };
  const version = ferryVersion();
  const identity = await enrol(stateDir, target, values['enrol-token'], { name: hostname(), version });
  if (!identity.id.startsWith('h-'))
    throw new InvalidArgumentError(`${stateDir} holds the identity of ${identity.id}, not a launch host`);
  // Calls to the server (image reads) wait across reconnects; notes go on the current link.
  const server = new LinkSlot(() => 'the server', { details: { server: values.server } });
  const agent = new HostAgent({
    instancesDir: values['instances-dir'] ?? join(stateDir, 'instances'),
    server,
    note: (method, params) => server.peer?.note(method, params),
    log,
  });
  await agent.recover();
  const abort = new AbortController();
  const stop = () => abort.abort(new AbortedError('stopped'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await keepLinked(target, identity, {
      signal: abort.signal,
      log,
      hello: async () => ({ role: 'host', name: hostname(), version, ...(await agent.hello()) }),
      serve: () => ({ handlers: agent.handlers(), closeAll: async () => undefined }),
      onUp: (peer) => server.attach(peer),
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await agent.stop();
  }
  return 0;
}

const HOSTS_USAGE =
  'ferry hosts [list] | enrol [--ttl 1h] [--description D] | disassociate ID   (--data-dir DIR, or --endpoint URL …)';

interface HostRow {
  hostId: string;
  name: string;
  connected: boolean;
  instances: number;
  ipAddress?: string | null;
  facts?: { cpus?: number; memoryMiB?: number; accelerator?: string };
}

export async function hostsCommand(argv: string[]): Promise<number> {
  const [verb = 'list', ...rest] = argv;
  const { values, positionals } = parse(
    rest,
    { ...DATA_DIR_OPTIONS, ...CLIENT_OPTIONS, ttl: { type: 'string' }, description: { type: 'string' } },
    HOSTS_USAGE,
  );
  const local = values['data-dir'] !== undefined;
  if (verb === 'enrol') {
    needPositionals(positionals, 0, HOSTS_USAGE);
    await printEnrolmentToken(values, 'host');
    return 0;
  }
  if (verb === 'disassociate') {
    const [id] = needPositionals(positionals, 1, HOSTS_USAGE) as [string];
    if (local) await withControl(values, ({ control }) => control.launchHosts().disassociate(id));
    else await withRemote(values, (r) => r.ferry('DisassociateLaunchHost', { hostId: id }));
    return 0;
  }
  if (verb === 'list') {
    needPositionals(positionals, 0, HOSTS_USAGE);
    const hosts: HostRow[] = local
      ? ((await withControl(values, ({ control }) => control.launchHosts().list())).hosts as HostRow[])
      : ((await withRemote(values, (r) => r.ferry<{ hosts?: HostRow[] }>('ListLaunchHosts', {}))).hosts ??
        []);
    if (values.json) writeJson(hosts);
    else
      process.stdout.write(
        (hosts
          .map(
            (h) =>
              `${h.hostId}  ${h.connected ? 'CONNECTED   ' : 'UNREACHABLE '}  ${h.name}  ${h.facts?.cpus ?? '?'} CPU  ${h.facts?.memoryMiB ?? '?'} MiB  ${h.facts?.accelerator ?? '?'}  ${h.instances} instance(s)  ${h.ipAddress ?? ''}`,
          )
          .join('\n') || '(no launch hosts)') + '\n',
      );
    return 0;
  }
  throw new InvalidArgumentError(`unknown hosts command ${verb}\nusage: ${HOSTS_USAGE}`);
}
