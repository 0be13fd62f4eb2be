/**
 * `ferry connector …`: a remote connector process next to its source, and
 * `ferry connectors …`: enrolment tokens and the connectors a server knows
 * (docs/connector-protocol.md).
 *
 *   ferry connectors enrol [--ttl 1h] [--description D] [--data-dir DIR | --endpoint URL]
 *   ferry connector --server HOST:PORT --ca-bundle CA.pem --state-dir DIR [--enrol-token T]
 *                   (--images-dir SRC | --qmp-dir DIR)
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createFolderConnector, createKvmConnector, link, type Connector } from '../../connectors/index.js';
import { AbortedError, InvalidArgumentError } from '../../errors/index.js';
import { BandwidthSchedule, enrol, Throttle } from '../../link/index.js';
import { intOption, needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS } from '../remote/connection.js';
import { withRemote } from '../remote/session.js';
import { DATA_DIR_OPTIONS, withControl } from './keys-common.js';
import { printEnrolmentToken } from './enrol-token.js';
import { ferryVersion, parseListen } from './server.js';

const USAGE =
  'ferry connector --server HOST:PORT --ca-bundle CA.pem --state-dir DIR [--enrol-token T] (--images-dir SRC | --qmp-dir DIR) ' +
  '[--bandwidth 50M] [--bandwidth-schedule "Mon-Fri 08:00-18:00=10M; …"] [--max-concurrent-runs N]';

export async function connectorCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      server: { type: 'string' },
      'ca-bundle': { type: 'string' },
      'state-dir': { type: 'string' },
      'enrol-token': { type: 'string' },
      'images-dir': { type: 'string' },
      'qmp-dir': { type: 'string' },
      bandwidth: { type: 'string' },
      'bandwidth-schedule': { type: 'string' },
      'max-concurrent-runs': { type: 'string' },
    },
    USAGE,
  );
  needPositionals(positionals, 0, USAGE);
  if (!values.server || !values['state-dir'])
    throw new InvalidArgumentError(`--server and --state-dir are required\nusage: ${USAGE}`);
  if ((values['images-dir'] === undefined) === (values['qmp-dir'] === undefined))
    throw new InvalidArgumentError(`give one source: --images-dir or --qmp-dir\nusage: ${USAGE}`);
  const at = parseListen(values.server);
  const schedule = new BandwidthSchedule(values.bandwidth, values['bandwidth-schedule']);
  const maxRuns = intOption(values['max-concurrent-runs'], '--max-concurrent-runs');
  if (maxRuns !== undefined && (maxRuns < 1 || maxRuns > 1000))
    throw new InvalidArgumentError('--max-concurrent-runs is 1 … 1000');
  const stateDir = values['state-dir'];
  let caPem = '';
  if (values['ca-bundle']) caPem = await readFile(values['ca-bundle'], 'utf8');
  const target = { host: at.host, port: at.port, caPem };
  const log = {
    info: (m: string) => process.stdout.write(`ferry connector: ${m}\n`),
    warn: (m: string) => process.stderr.write(`ferry connector: ${m}\n`),
  };
  const version = ferryVersion();
  const identity = await enrol(stateDir, target, values['enrol-token'], {
    version,
    vmManagerName: hostname(),
  });
  if (!caPem && !identity.caPem)
    throw new InvalidArgumentError(`--ca-bundle is required (the server's DATA_DIR/tls/ca.pem)`);
  const connector: Connector = values['images-dir']
    ? await createFolderConnector({
        connectorId: identity.id,
        imagesDir: values['images-dir'],
        version,
      })
    : await createKvmConnector({
        connectorId: identity.id,
        qmpDir: values['qmp-dir']!,
        stateDir: join(stateDir, 'kvm'),
        version,
      });
  const abort = new AbortController();
  const stop = () => abort.abort(new AbortedError('stopped'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const descriptor = {
      ...connector.descriptor,
      kind: 'remote' as const,
      ...(maxRuns !== undefined ? { maxConcurrentRuns: maxRuns } : {}),
    };
    await link.runLink(
      target,
      identity,
      { ...connector, descriptor },
      {
        signal: abort.signal,
        log,
        ...(schedule.limited ? { throttle: new Throttle(schedule) } : {}),
      },
    );
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}

const CONNECTORS_USAGE =
  'ferry connectors [list] | enrol [--ttl 1h] [--description D] | disassociate ID   (--data-dir DIR, or --endpoint URL …)';

export async function connectorsCommand(argv: string[]): Promise<number> {
  const [verb = 'list', ...rest] = argv;
  const { values, positionals } = parse(
    rest,
    { ...DATA_DIR_OPTIONS, ...CLIENT_OPTIONS, ttl: { type: 'string' }, description: { type: 'string' } },
    CONNECTORS_USAGE,
  );
  const local = values['data-dir'] !== undefined;
  if (verb === 'enrol') {
    needPositionals(positionals, 0, CONNECTORS_USAGE);
    await printEnrolmentToken(values, 'connector');
    return 0;
  }
  if (verb === 'disassociate') {
    const [id] = needPositionals(positionals, 1, CONNECTORS_USAGE) as [string];
    if (local)
      await withControl(values, ({ control }) =>
        control.connectors.disassociateConnector({ connectorId: id }),
      );
    else await withRemote(values, (r) => r.call((s, o) => s.disassociateConnector({ connectorId: id }, o)));
    return 0;
  }
  if (verb === 'list') {
    needPositionals(positionals, 0, CONNECTORS_USAGE);
    const list = local
      ? (await withControl(values, ({ control }) => control.connectors.getConnectors({}))).connectorList
      : ((await withRemote(values, (r) => r.call((s, o) => s.getConnectors({}, o)))).connectorList ?? []);
    if (values.json) writeJson(list);
    else
      process.stdout.write(
        (list
          .map(
            (c) =>
              `${c.connectorId}  ${String(c.status).padEnd(9)}  ${c.version}  ${c.vmManagerName}  ${c.ipAddress ?? ''}`,
          )
          .join('\n') || '(no connectors)') + '\n',
      );
    return 0;
  }
  throw new InvalidArgumentError(`unknown connectors command ${verb}\nusage: ${CONNECTORS_USAGE}`);
}
