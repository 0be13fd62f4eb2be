/**
 * The launch validator on both database back ends: checks against a real loopback listener
 * and HTTP server, outputs recorded in the app (GetAppValidationOutput), a FAILED
 * notification stopping a group whose checks are still running, and app-level commands.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttp } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../../test/helpers/databases.js';
import { repositories } from '../../db/index.js';
import type { ServerRecord } from '../../db/index.js';
import { systemClock } from '../clock.js';
import { AppService } from '../apps.js';
import { AppValidationService } from '../app-validation.js';
import { ChecksService } from './checks.js';
import { LaunchValidator, type GroupMember } from './run.js';

const serverRecord = (i: number): ServerRecord => ({
  serverId: `s-${String(i).padStart(17, '0')}`,
  connectorId: 'c-local',
  vmManagerId: 'vmm-1',
  vmId: `vm-${i}`,
  sortKey: `vmm-1/vm-${i}`,
  vmName: `vm${i}`,
  vmManagerName: 'folder',
  vmManagerType: null,
  vmPath: `/images/vm-${i}`,
  facts: { disks: [] },
  replicationJobId: null,
  replicationJobTerminated: false,
  importedAt: 1_700_000_000_000,
});

function member(serverId: string, console: () => string, forwards: [number, number][] = []): GroupMember {
  return {
    serverId,
    instanceId: `i-${serverId.slice(2)}`,
    consoleLog: '/nonexistent/console.log',
    forwards: new Map(forwards),
    consoleText: async () => console(),
    stopped: () => false,
  };
}

/** GetAppValidationOutput's entries, read loosely (app- and server-level entries differ). */
interface Out {
  readonly status: string;
  readonly name?: string;
  readonly statusMessage?: string;
  readonly latestValidationTime?: number;
  readonly serverValidationOutput?: { readonly server: { readonly serverId?: string } };
}

const listen = (srv: Server | ReturnType<typeof createHttp>) =>
  new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as AddressInfo).port)));

for (const dialect of DIALECTS) {
  describe(`launch validation (${dialect})`, () => {
    let t: TestDatabase;
    let appId: string;
    let groupIds: string[];
    const [a, b] = [serverRecord(1), serverRecord(2)];
    let checks: ChecksService;
    let validation: AppValidationService;
    let validator: LaunchValidator;
    const tcp = createServer((s) => s.end());
    const http = createHttp((req, res) => res.writeHead(200).end('shop ready'));
    let tcpPort: number;
    let httpPort: number;

    before(async () => {
      t = await openTestDatabase(dialect);
      const r = repositories(t.db);
      await r.servers.upsert(a);
      await r.servers.upsert(b);
      const app = await new AppService(t.db, systemClock).createApp({
        name: 'shop',
        serverGroups: [
          { name: 'db', serverList: [{ serverId: a.serverId }] },
          { name: 'web', serverList: [{ serverId: b.serverId }] },
        ],
      });
      appId = app.appSummary.appId!;
      groupIds = app.serverGroups.map((g: { serverGroupId?: string }) => g.serverGroupId!);
      checks = new ChecksService(t.db, systemClock);
      validation = new AppValidationService(t.db, systemClock);
      validator = new LaunchValidator(t.db, systemClock);
      [tcpPort, httpPort] = [await listen(tcp), await listen(http)];
    });
    after(async () => {
      tcp.close();
      http.close();
      await t.close();
    });

    const output = async (serverId: string) =>
      ((await validation.getAppValidationOutput({ appId })).validationOutputList as Out[]).find(
        (o) => 'serverValidationOutput' in o && o.serverValidationOutput?.server.serverId === serverId,
      )!;

    test('a group passes when every server passes; outputs say what passed', async () => {
      await checks.putServerChecks({
        appId,
        serverId: a.serverId,
        checks: [
          { kind: 'console', pattern: 'MARKER: db', timeoutSeconds: 5 },
          { kind: 'tcp', port: 5432, timeoutSeconds: 5 },
        ],
      });
      await checks.putServerChecks({
        appId,
        serverId: b.serverId,
        checks: [
          { kind: 'http', port: 80, path: '/health', status: 200, bodyPattern: 'ready', timeoutSeconds: 5 },
        ],
      });
      assert.deepEqual(await validator.probedPorts(appId, a.serverId), [5432]);
      assert.equal((await output(a.serverId)).status, 'READY_FOR_VALIDATION');
      let text = 'booting\n';
      setTimeout(() => (text += 'FERRY-BOOT-MARKER: db\n'), 300);
      const before = Date.now();
      const r = await validator.validateGroup(appId, [member(a.serverId, () => text, [[5432, tcpPort]])]);
      assert.equal(r.ok, true, r.message);
      const r2 = await validator.validateGroup(appId, [member(b.serverId, () => '', [[80, httpPort]])]);
      assert.equal(r2.ok, true, r2.message);
      const oa = await output(a.serverId);
      assert.equal(oa.status, 'SUCCEEDED');
      assert.match(oa.statusMessage!, /console matched.*; .*127\.0\.0\.1/);
      assert.ok((oa.latestValidationTime as number) >= before);
      assert.equal((await output(b.serverId)).status, 'SUCCEEDED');
    });

    test('a check that never passes fails the group, naming the check and the server', async () => {
      await checks.putServerChecks({
        appId,
        serverId: a.serverId,
        name: 'db boot',
        checks: [{ kind: 'console', pattern: 'login:', timeoutSeconds: 1 }],
      });
      const r = await validator.validateGroup(appId, [member(a.serverId, () => 'kernel panic')]);
      assert.equal(r.ok, false);
      assert.match(
        r.message,
        new RegExp(`^db boot of server ${a.serverId} .*did not match /login:/.*kernel panic`),
      );
      const oa = await output(a.serverId);
      assert.equal(oa.status, 'FAILED');
      assert.equal(oa.statusMessage, r.message);
      // An unforwarded port (tap network) fails with the reason rather than probing anything.
      await checks.putServerChecks({
        appId,
        serverId: a.serverId,
        checks: [{ kind: 'tcp', port: 22, timeoutSeconds: 1 }],
      });
      const tap = await validator.validateGroup(appId, [member(a.serverId, () => '')]);
      assert.match(tap.message, /guest port 22 is not forwarded/);
    });

    test('NotifyAppValidationOutput FAILED stops a group whose checks are still running', async () => {
      await checks.putServerChecks({
        appId,
        serverId: a.serverId,
        checks: [{ kind: 'console', pattern: 'never', timeoutSeconds: 60 }],
      });
      await validation.putAppValidationConfiguration({
        appId,
        serverGroupValidationConfigurations: [
          {
            serverGroupId: groupIds[0]!,
            serverValidationConfigurations: [
              { server: { serverId: a.serverId }, name: 'smoke', serverValidationStrategy: 'USERDATA' },
            ],
          },
        ],
      });
      const id = (await validation.getAppValidationConfiguration({ appId }))
        .serverGroupValidationConfigurations[0]!.serverValidationConfigurations[0]!.validationId;
      const t0 = Date.now();
      setTimeout(
        () =>
          void validation.notifyAppValidationOutput({
            appId,
            notificationContext: { validationId: id, status: 'FAILED', statusMessage: 'HTTP 500 on /' },
          }),
        500,
      );
      const r = await validator.validateGroup(appId, [member(a.serverId, () => '')]);
      assert.equal(r.ok, false);
      assert.match(r.message, /validation smoke of server .* was reported FAILED: HTTP 500 on \//);
      assert.ok(Date.now() - t0 < 10_000, 'stopped long before the 60 s check timeout');
      // The server's own checks gave up with the group rather than polling on.
      await new Promise((r) => setTimeout(r, 1500));
      const own = ((await validation.getAppValidationOutput({ appId })).validationOutputList as Out[]).find(
        (o) => o.name?.startsWith('Ferry checks') && o.serverValidationOutput?.server.serverId === a.serverId,
      )!;
      assert.equal(own.status, 'FAILED');
      assert.match(own.statusMessage!, /not finished, the group had already failed/);
      await validation.deleteAppValidationConfiguration({ appId });
      await checks.putServerChecks({ appId, serverId: a.serverId, checks: [] });
    });

    test('app-level SSM commands run on the launch host with the instances described', async () => {
      await validation.putAppValidationConfiguration({
        appId,
        appValidationConfigurations: [
          {
            name: 'ports',
            appValidationStrategy: 'SSM',
            ssmValidationParameters: {
              command: `node -e 'const i = JSON.parse(process.env.FERRY_INSTANCES); if (i[0].forwards["80"] !== ${httpPort}) process.exit(4); console.log("saw " + i.length)'`,
              executionTimeoutSeconds: 30,
            },
          },
        ],
      });
      const members = [member(b.serverId, () => '', [[80, httpPort]])];
      const ok = await validator.validateApp(appId, members);
      assert.equal(ok.ok, true, ok.message);
      const list = (await validation.getAppValidationOutput({ appId })).validationOutputList as Out[];
      const app = list.find((o) => o.name === 'ports')!;
      assert.equal(app.status, 'SUCCEEDED');
      assert.match(app.statusMessage!, /saw 1/);
      const bad = await validator.validateApp(appId, [member(b.serverId, () => '', [[80, 1]])]);
      assert.equal(bad.ok, false);
      assert.match(bad.message, /app validation ports: the script failed \(exit 4\)/);
      assert.equal(
        ((await validation.getAppValidationOutput({ appId })).validationOutputList as Out[]).find(
          (o) => o.name === 'ports',
        )!.status,
        'FAILED',
      );
    });
  });
}
