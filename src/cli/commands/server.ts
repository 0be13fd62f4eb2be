/**
 * `ferry server`: the control plane in one process — SMS API, the built-in local
 * connector (with --images-dir), scheduler and workers — over one data directory.
 *
 *   ferry server --data-dir DIR --listen 127.0.0.1:PORT --insecure-http [--images-dir SRC]
 *
 * prints `listening on http://HOST:PORT` once requests are accepted, and runs until
 * SIGINT/SIGTERM. Without --insecure-http it serves HTTPS: with --tls-cert/--tls-key, or
 * with a certificate from the CA Ferry makes in DIR/tls (clients trust DIR/tls/ca.pem).
 * First start initialises the data directory and writes an admin access key to
 * DIR/admin-credentials.json (0600).
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { pino, type Logger } from 'pino';
import {
  bindOperations,
  bindFerryOperations,
  createApi,
  ApiMetrics,
  ensureTlsMaterial,
  type GaugeSample,
} from '../../api/index.js';
import { createFolderConnector, createKvmConnector, type Connector } from '../../connectors/index.js';
import {
  HEARTBEAT_INTERVAL_MS,
  LinkServer,
  loadCa,
  createPrivateFile,
  defaultDataDir,
  newId,
  openControlPlane,
  sha256,
  type ControlPlane,
} from '../../control/index.js';
import { repositories } from '../../db/index.js';
import { InvalidArgumentError, toFerryError } from '../../errors/index.js';
import { needPositionals, parse } from '../args.js';

const USAGE =
  'ferry server [--data-dir DIR] [--listen HOST:PORT] [--insecure-http | --tls-cert PEM --tls-key PEM] ' +
  '[--images-dir SRC] [--qmp-dir DIR] [--connector-listen HOST:PORT] [--database postgres://…] ' +
  '[--frequency-unit hours|minutes] [--on-demand-runs-per-day N] [--event-retention-days N] ' +
  '[--terminate-test-instances-on-stop] [--log-level LEVEL]';

const OPTIONS = {
  'data-dir': { type: 'string' },
  listen: { type: 'string' },
  'insecure-http': { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'images-dir': { type: 'string' },
  'qmp-dir': { type: 'string' },
  database: { type: 'string' },
  'frequency-unit': { type: 'string' },
  'on-demand-runs-per-day': { type: 'string' },
  'event-retention-days': { type: 'string' },
  'connector-listen': { type: 'string' },
  'log-level': { type: 'string' },
  'terminate-test-instances-on-stop': { type: 'boolean' },
} as const;

export const DEFAULT_LISTEN = '127.0.0.1:8443';

export function ferryVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** HOST:PORT (IPv6 as [::1]:PORT); port 0 picks a free one. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new InvalidArgumentError(`--listen wants HOST:PORT, not ${JSON.stringify(text)}`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export async function serverCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, USAGE);
  needPositionals(positionals, 0, USAGE);
  const { host, port } = parseListen(values.listen ?? DEFAULT_LISTEN);
  const insecure = values['insecure-http'] === true;
  if (insecure && !isLoopback(host)) {
    throw new InvalidArgumentError(`--insecure-http serves only on loopback (127.0.0.0/8, ::1), not ${host}`);
  }
  if (insecure && (values['tls-cert'] || values['tls-key'])) {
    throw new InvalidArgumentError('--insecure-http and --tls-cert/--tls-key exclude each other');
  }
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) {
    throw new InvalidArgumentError('--tls-cert and --tls-key go together');
  }
  const unit = values['frequency-unit'] ?? 'hours';
  if (unit !== 'hours' && unit !== 'minutes')
    throw new InvalidArgumentError('--frequency-unit is hours or minutes');
  const perDay =
    values['on-demand-runs-per-day'] === undefined ? undefined : Number(values['on-demand-runs-per-day']);
  if (perDay !== undefined && !(Number.isInteger(perDay) && perDay >= 0 && perDay <= 1000)) {
    throw new InvalidArgumentError('--on-demand-runs-per-day is an integer from 0 to 1000');
  }
  const retentionDays =
    values['event-retention-days'] === undefined ? undefined : Number(values['event-retention-days']);
  if (
    retentionDays !== undefined &&
    !(Number.isInteger(retentionDays) && retentionDays >= 1 && retentionDays <= 3650)
  ) {
    throw new InvalidArgumentError('--event-retention-days is an integer from 1 to 3650');
  }
  const log: Logger = pino(
    { level: values['log-level'] ?? 'info', base: { pid: process.pid } },
    pino.destination(2),
  );

  const opened = await openControlPlane({
    dataDir: values['data-dir'] ?? defaultDataDir(),
    ...(values.database !== undefined ? { database: values.database } : {}),
    jobPolicy: { frequencyUnit: unit, ...(perDay !== undefined ? { onDemandRunsPerDay: perDay } : {}) },
    ...(retentionDays !== undefined ? { webhooks: { retentionMs: retentionDays * 24 * 3600_000 } } : {}),
    log,
    withStore: true,
    exclusive: true,
  });
  const { control, dir } = opened;
  const stops: (() => Promise<void> | void)[] = [() => opened.close()];
  try {
    log.info({ database: opened.databaseDescription, applied: opened.migration.applied }, 'database ready');
    await firstStart(control, dir.adminCredentialsPath, log);

    if (values['images-dir'] !== undefined) {
      const connector = await createFolderConnector({
        connectorId: await localConnectorId(control),
        imagesDir: values['images-dir'],
        version: ferryVersion(),
      });
      stops.unshift(await runLocalConnector(control, connector, log));
    }
    if (values['qmp-dir'] !== undefined) {
      // Running QEMU VMs, one QMP socket each (docs/connectors/kvm.md).
      const connector = await createKvmConnector({
        connectorId: await localConnectorId(control, 'kvm'),
        qmpDir: values['qmp-dir'],
        stateDir: join(dir.root, 'kvm'),
        version: ferryVersion(),
        log,
      });
      stops.unshift(await runLocalConnector(control, connector, log));
    }

    let https: { cert: string; key: string } | undefined;
    if (!insecure) {
      if (values['tls-cert'] && values['tls-key']) {
        https = {
          cert: await readFile(values['tls-cert'], 'utf8'),
          key: await readFile(values['tls-key'], 'utf8'),
        };
      } else {
        const tls = await ensureTlsMaterial(dir.tlsDir, host);
        https = { cert: tls.cert, key: tls.key };
        process.stderr.write(
          `ferry: TLS certificate from Ferry's CA; clients trust ${tls.caPath} (aws --ca-bundle ${tls.caPath})\n`,
        );
      }
    }
    if (values['connector-listen'] !== undefined) {
      // Remote connectors dial in over mutual TLS (docs/connector-protocol.md).
      const at = parseListen(values['connector-listen']);
      const tls = await ensureTlsMaterial(dir.tlsDir, at.host);
      const link = new LinkServer({
        ca: await loadCa(dir.tlsDir),
        cert: tls.cert,
        key: tls.key,
        connectors: control.connectors,
        enrolment: control.enrolment,
        hosts: control.hosts,
        log,
      });
      const bound = await link.listen(at.host, at.port);
      stops.unshift(async () => {
        control.hosts.close();
        await link.close();
      });
      process.stdout.write(
        `ferry: connector link on ${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port} (connectors trust ${tls.caPath})\n`,
      );
    }
    const metrics = new ApiMetrics();
    metrics.addGauges(() => gauges(control));
    const api = createApi({
      operations: { ...bindOperations(control), ...bindFerryOperations(control) },
      keys: (id) => control.keys.resolve(id),
      sha256,
      logger: log,
      metrics,
      health: () => control.ping(),
      ...(https ? { https } : {}),
    });
    stops.unshift(() => api.close());
    await api.listen({ host, port });
    const address = api.server.address();
    const actual = typeof address === 'object' && address ? address.port : port;
    const shown = host.includes(':') ? `[${host}]` : host;
    // Only one process may use the embedded SQLite database, so orphaned runs are ours.
    await control.db.warm();
    control.startWorkers({ soleWorker: control.db.dialect === 'sqlite' });
    stops.unshift(() => control.stopWorkers());
    // Launch host: instances a previous process left are taken back or removed (with
    // PostgreSQL other live servers may share the table: only the embedded case is sure).
    if (control.db.dialect === 'sqlite') {
      // The next start recovers them too, so instances may outlive this process
      // (docs/launch.md, "Server restarts").
      if (control.launches)
        control.launches.host.keepOnStop = {
          stopped: true,
          testInstances: values['terminate-test-instances-on-stop'] !== true,
        };
      await control.launches?.recover();
      await control.lifecycle.recover();
    }
    stops.unshift(() => control.launches?.stop());
    // Before the launch host stops: a cutover in flight ends first (and says why).
    stops.unshift(() => control.lifecycle.stop());
    const url = `${https ? 'https' : 'http'}://${shown}:${actual}`;
    process.stdout.write(`listening on ${url}\n`);
    log.info({ url, dataDir: dir.root }, 'listening');

    const signal = await new Promise<string>((resolve) => {
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve(s));
    });
    log.info({ signal }, 'shutting down');
    return 0;
  } finally {
    for (const stop of stops) {
      try {
        await stop();
      } catch (err) {
        log.warn({ err: toFerryError(err) }, 'error during shutdown');
      }
    }
    log.flush();
  }
}

/** On first start (no access key yet): an admin key in a 0600 file, never in the log. */
async function firstStart(control: ControlPlane, path: string, log: Logger): Promise<void> {
  if ((await control.keys.list()).length > 0) return;
  const key = await control.keys.create({ description: 'admin (created at first start)' });
  const body =
    JSON.stringify({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey }, null, 2) + '\n';
  if (await createPrivateFile(path, body)) {
    log.info({ path, accessKeyId: key.accessKeyId }, 'first start: admin access key written');
    process.stderr.write(
      `ferry: first start: admin access key ${key.accessKeyId} written to ${path} (mode 0600)\n`,
    );
  }
}

/** The built-in connector's id, fixed at first use so its registration survives restarts. */
async function localConnectorId(control: ControlPlane, kind: 'folder' | 'kvm' = 'folder'): Promise<string> {
  const r = repositories(control.db);
  const key = kind === 'folder' ? 'local-connector-id' : `local-${kind}-connector-id`;
  const existing = await r.settings.get(key);
  if (existing) return existing;
  const id = newId.connector();
  await r.settings.set(key, id);
  return id;
}

/** Registers the connector, heartbeats it, and catalogs its source once at start. */
async function runLocalConnector(
  control: ControlPlane,
  connector: Connector,
  log: Logger,
): Promise<() => Promise<void>> {
  await control.connectors.attach(connector);
  const timer = setInterval(() => {
    control.connectors.heartbeat(connector.descriptor.connectorId).catch((err: unknown) => {
      log.warn({ err: toFerryError(err) }, 'connector heartbeat failed');
    });
  }, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  try {
    await control.catalog.importServerCatalog();
  } catch (err) {
    log.warn({ err: toFerryError(err) }, 'initial catalog import failed');
  }
  return async () => {
    clearInterval(timer);
    await control.catalog.idle();
    control.connectors.detach(connector.descriptor.connectorId);
  };
}

async function gauges(control: ControlPlane): Promise<GaugeSample[]> {
  const out: GaugeSample[] = [];
  for (const [state, n] of Object.entries(await control.jobs.countByState())) {
    out.push({
      name: 'ferry_replication_jobs',
      help: 'Replication jobs by state.',
      labels: { state },
      value: n,
    });
  }
  const health = await control.connectors.healthCounts();
  out.push({
    name: 'ferry_connectors',
    help: 'Associated connectors by health.',
    labels: { status: 'HEALTHY' },
    value: health.healthy,
  });
  out.push({
    name: 'ferry_connectors',
    help: 'Associated connectors by health.',
    labels: { status: 'UNHEALTHY' },
    value: health.unhealthy,
  });
  out.push({
    name: 'ferry_catalog_servers',
    help: 'Servers in the catalog.',
    value: await repositories(control.db).servers.count(),
  });
  return out;
}
