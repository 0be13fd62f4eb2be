/**
 * Conformance through Debian's awscli 2.9.19 against a real `ferry server` on loopback,
 * once per database back end: all 35 `aws sms` commands, error printing and exit codes,
 * auto-pagination and timestamps. Most commands run through awscli's own entry point in
 * one Python process (helpers/aws_batch.py) to keep this fast; a few run as separate
 * `/usr/bin/aws` processes to prove the real binary behaves the same.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { aws, awsBatch, type AwsResult } from '../helpers/aws-cli.js';
import { DIALECTS } from '../helpers/databases.js';
import { makeImagesDir } from '../helpers/fixtures.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const OPERATIONS = [
  'get-connectors',
  'disassociate-connector',
  'import-server-catalog',
  'get-servers',
  'delete-server-catalog',
  'create-replication-job',
  'get-replication-jobs',
  'update-replication-job',
  'delete-replication-job',
  'start-on-demand-replication-run',
  'get-replication-runs',
  'create-app',
  'get-app',
  'list-apps',
  'update-app',
  'delete-app',
  'import-app-catalog',
  'put-app-replication-configuration',
  'get-app-replication-configuration',
  'delete-app-replication-configuration',
  'start-app-replication',
  'start-on-demand-app-replication',
  'stop-app-replication',
  'put-app-launch-configuration',
  'get-app-launch-configuration',
  'delete-app-launch-configuration',
  'launch-app',
  'terminate-app',
  'generate-template',
  'generate-change-set',
  'put-app-validation-configuration',
  'get-app-validation-configuration',
  'delete-app-validation-configuration',
  'get-app-validation-output',
  'notify-app-validation-output',
];

const ok = (r: AwsResult | undefined, what: string): Record<string, unknown> => {
  assert.ok(r, what);
  assert.equal(r.rc, 0, `${what}: rc ${r.rc} ${r.stderr}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
};
const fails = (r: AwsResult | undefined, type: string, what: string) => {
  assert.ok(r, what);
  assert.equal(r.rc, 254, `${what}: rc ${r.rc} ${r.stdout} ${r.stderr}`);
  assert.match(
    r.stderr,
    new RegExp(`An error occurred \\(${type}\\) when calling the \\w+ operation: .+`),
    what,
  );
};

for (const dialect of DIALECTS) {
  describe(`SMS conformance through awscli 2.9.19 (${dialect})`, () => {
    let server: RunningServer;
    const used = new Set<string>();
    const batch = async (commands: string[][]) => {
      for (const c of commands) used.add(c[0] as string);
      return awsBatch(server.url, server.credentials, commands, 'ap-southeast-2');
    };

    before(async () => {
      server = await startServer({ dialect, imagesDir: await makeImagesDir(3) });
    });
    after(async () => {
      await server?.stop();
    });

    test('all 35 commands, their errors, pagination and timestamps', async () => {
      // Times within Ferry's 30-day seed window, whole seconds, as the CLI takes them.
      const day = (n: number) => new Date(Math.floor(Date.now() / 86_400_000 + n) * 86_400_000);
      const seedIso = day(10).toISOString().replace('.000Z', 'Z');
      const nextIso = day(11).toISOString().replace('.000Z', 'Z');
      const seedOut = seedIso.replace('Z', '+00:00');
      // Phase 1: connectors and catalog.
      const p1 = await batch([
        ['get-connectors'],
        ['disassociate-connector', '--connector-id', 'c-unknown'],
        ['import-server-catalog'],
        ['get-servers', '--no-paginate'],
        ['get-servers', '--page-size', '1'],
        ['get-servers', '--max-items', '1', '--page-size', '1'],
      ]);
      const connectors = ok(p1[0], 'get-connectors').connectorList as {
        status: string;
        associatedOn: string;
      }[];
      assert.equal(connectors[0]?.status, 'HEALTHY');
      assert.match(connectors[0]?.associatedOn ?? '', /^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/);
      fails(p1[1], 'InvalidParameterException', 'disassociate unknown');
      ok(p1[2], 'import-server-catalog');
      const full = ok(p1[3], 'get-servers --no-paginate');
      assert.equal(full.serverCatalogStatus, 'AVAILABLE');
      assert.match(String(full.lastModifiedOn), /^20\d\d-/, 'epoch seconds printed as a real date');
      const servers = full.serverList as {
        serverId: string;
        vmServer: { vmServerAddress: { vmId: string } };
      }[];
      assert.deepEqual(
        servers.map((s) => s.vmServer.vmServerAddress.vmId),
        ['vm01', 'vm02', 'vm03'],
      );
      // Auto-pagination (page size 1: three requests) merges pages and drops non-list members (§2.6).
      const paged = ok(p1[4], 'get-servers --page-size 1');
      assert.deepEqual(
        (paged.serverList as { serverId: string }[]).map((s) => s.serverId),
        servers.map((s) => s.serverId),
      );
      const firstItem = ok(p1[5], 'get-servers --max-items 1');
      assert.equal((firstItem.serverList as unknown[]).length, 1);
      assert.ok(firstItem.NextToken, 'the CLI hands back a token to resume');
      const [s1, s2, s3] = servers.map((s) => s.serverId) as [string, string, string];

      // Phase 2: jobs and apps.
      const p2 = await batch([
        [
          'create-replication-job',
          '--server-id',
          s1,
          '--seed-replication-time',
          seedIso,
          '--frequency',
          '12',
          '--license-type',
          'BYOL',
        ],
        [
          'create-replication-job',
          '--server-id',
          s1,
          '--seed-replication-time',
          seedIso,
          '--frequency',
          '12',
        ],
        [
          'create-replication-job',
          '--server-id',
          s2,
          '--seed-replication-time',
          seedIso,
          '--frequency',
          '12',
          '--license-type',
          'FREE',
        ],
        ['create-replication-job', '--server-id', s2],
        [
          'create-app',
          '--name',
          'shop',
          '--client-token',
          'cli-1',
          '--server-groups',
          JSON.stringify([{ name: 'all', serverList: [{ serverId: s2 }, { serverId: s3 }] }]),
          '--tags',
          'key=env,value=ci',
        ],
        ['list-apps'],
        ['import-app-catalog'],
      ]);
      const jobId = ok(p2[0], 'create-replication-job').replicationJobId as string;
      fails(p2[1], 'ReplicationJobAlreadyExistsException', 'duplicate job');
      fails(p2[2], 'InvalidParameterException', 'enum not checked by the CLI, checked by the server');
      assert.equal(p2[3]?.rc, 252, 'the CLI itself refuses a missing required argument');
      const app = ok(p2[4], 'create-app') as {
        appSummary: { appId: string };
        serverGroups: { serverGroupId: string }[];
      };
      const appId = app.appSummary.appId;
      const sg = app.serverGroups[0]!.serverGroupId;
      assert.deepEqual(
        (ok(p2[5], 'list-apps').apps as { appId: string }[]).map((a) => a.appId),
        [appId],
      );
      ok(p2[6], 'import-app-catalog');

      // Phase 3: everything that needs those ids.
      const rc = JSON.stringify([
        {
          serverGroupId: sg,
          serverReplicationConfigurations: [
            {
              server: { serverId: s2 },
              serverReplicationParameters: { seedTime: day(12).getTime() / 1000, frequency: 6 },
            },
          ],
        },
      ]);
      const lc = JSON.stringify([
        {
          serverGroupId: sg,
          launchOrder: 1,
          serverLaunchConfigurations: [
            { server: { serverId: s3 }, logicalId: 'Web', instanceType: 't3.micro' },
          ],
        },
      ]);
      const vc = JSON.stringify([
        {
          name: 'smoke',
          appValidationStrategy: 'SSM',
          ssmValidationParameters: {
            instanceId: 'i-0123456789abcdef0',
            command: 'x',
            executionTimeoutSeconds: 60,
          },
        },
      ]);
      const p3 = await batch([
        ['get-replication-jobs', '--replication-job-id', jobId],
        [
          'update-replication-job',
          '--replication-job-id',
          jobId,
          '--frequency',
          '8',
          '--next-replication-run-start-time',
          nextIso,
        ],
        ['start-on-demand-replication-run', '--replication-job-id', jobId, '--description', 'cli'],
        ['get-replication-runs', '--replication-job-id', jobId, '--no-paginate'],
        ['get-replication-runs', '--replication-job-id', 'sms-job-unknown'],
        ['get-app', '--app-id', appId],
        ['update-app', '--app-id', appId, '--description', 'updated'],
        [
          'put-app-replication-configuration',
          '--app-id',
          appId,
          '--server-group-replication-configurations',
          rc,
        ],
        ['get-app-replication-configuration', '--app-id', appId],
        ['start-app-replication', '--app-id', appId],
        ['start-on-demand-app-replication', '--app-id', appId],
        ['stop-app-replication', '--app-id', appId],
        ['delete-app-replication-configuration', '--app-id', appId],
        [
          'put-app-launch-configuration',
          '--app-id',
          appId,
          '--role-name',
          'r',
          '--server-group-launch-configurations',
          lc,
        ],
        ['get-app-launch-configuration', '--app-id', appId],
        ['launch-app', '--app-id', appId],
        ['terminate-app', '--app-id', appId],
        ['generate-template', '--app-id', appId, '--template-format', 'JSON'],
        ['generate-change-set', '--app-id', appId, '--changeset-format', 'YAML'],
        ['delete-app-launch-configuration', '--app-id', appId],
        ['put-app-validation-configuration', '--app-id', appId, '--app-validation-configurations', vc],
        ['get-app-validation-configuration', '--app-id', appId],
        ['get-app-validation-output', '--app-id', appId],
        ['get-app-validation-output', '--app-id', 'app-bad'],
      ]);
      const job = (ok(p3[0], 'get-replication-jobs').replicationJobList as Record<string, unknown>[])[0]!;
      assert.equal(job.seedReplicationTime, seedOut, 'timestamps round-trip exactly');
      assert.equal(job.licenseType, 'BYOL');
      ok(p3[1], 'update-replication-job');
      const runId = ok(p3[2], 'start-on-demand-replication-run').replicationRunId as string;
      const runs = ok(p3[3], 'get-replication-runs');
      assert.equal((runs.replicationJob as { frequency: number }).frequency, 8);
      assert.equal(
        (runs.replicationJob as { nextReplicationRunStartTime: string }).nextReplicationRunStartTime,
        nextIso.replace('Z', '+00:00'),
      );
      assert.ok(
        (runs.replicationRunList as { replicationRunId: string }[]).some((r) => r.replicationRunId === runId),
      );
      fails(p3[4], 'ReplicationJobNotFoundException', 'runs of unknown job');
      assert.equal((ok(p3[5], 'get-app').appSummary as { totalServers: number }).totalServers, 2);
      assert.equal((ok(p3[6], 'update-app').appSummary as { description: string }).description, 'updated');
      ok(p3[7], 'put-app-replication-configuration');
      const params = (
        ok(p3[8], 'get-app-replication-configuration').serverGroupReplicationConfigurations as {
          serverReplicationConfigurations: { serverReplicationParameters: { seedTime: string } }[];
        }[]
      )[0]!;
      assert.equal(
        params.serverReplicationConfigurations[0]!.serverReplicationParameters.seedTime,
        day(12).toISOString().replace('.000Z', '+00:00'),
      );
      for (const i of [9, 10, 11, 12, 13]) ok(p3[i], `phase 3 #${i}`);
      assert.equal((ok(p3[14], 'get-app-launch-configuration') as { roleName: string }).roleName, 'r');
      fails(p3[15], 'OperationNotPermittedException', 'launch-app');
      fails(p3[16], 'OperationNotPermittedException', 'terminate-app');
      assert.match((ok(p3[17], 'generate-template').s3Location as { key: string }).key, /\.json$/);
      assert.match((ok(p3[18], 'generate-change-set').s3Location as { key: string }).key, /\.yaml$/);
      ok(p3[19], 'delete-app-launch-configuration');
      ok(p3[20], 'put-app-validation-configuration');
      const validationId = (
        ok(p3[21], 'get-app-validation-configuration').appValidationConfigurations as {
          validationId: string;
        }[]
      )[0]!.validationId;
      assert.equal(
        (ok(p3[22], 'get-app-validation-output').validationOutputList as { status: string }[])[0]?.status,
        'READY_FOR_VALIDATION',
      );
      fails(p3[23], 'InvalidParameterException', 'app id pattern');

      // Phase 4: notifications and deletions.
      const p4 = await batch([
        [
          'notify-app-validation-output',
          '--app-id',
          appId,
          '--notification-context',
          `validationId=${validationId},status=SUCCEEDED,statusMessage=fine`,
        ],
        ['get-app-validation-output', '--app-id', appId],
        ['delete-app-validation-configuration', '--app-id', appId],
        ['delete-replication-job', '--replication-job-id', jobId],
        ['delete-replication-job', '--replication-job-id', jobId],
        ['delete-app', '--app-id', appId, '--force-stop-app-replication'],
        ['delete-server-catalog'],
        ['get-servers', '--no-paginate'],
        [
          'disassociate-connector',
          '--connector-id',
          (ok(p1[0], '').connectorList as { connectorId: string }[])[0]!.connectorId,
        ],
      ]);
      ok(p4[0], 'notify-app-validation-output');
      const out = (
        ok(p4[1], 'get-app-validation-output').validationOutputList as {
          status: string;
          latestValidationTime: string;
        }[]
      )[0]!;
      assert.equal(out.status, 'SUCCEEDED');
      assert.match(out.latestValidationTime, /^20\d\d-/);
      ok(p4[2], 'delete-app-validation-configuration');
      ok(p4[3], 'delete-replication-job');
      fails(p4[4], 'ReplicationJobNotFoundException', 'delete twice');
      ok(p4[5], 'delete-app');
      ok(p4[6], 'delete-server-catalog');
      assert.equal(ok(p4[7], 'get-servers').serverCatalogStatus, 'DELETED');
      ok(p4[8], 'disassociate-connector');

      assert.deepEqual([...used].sort(), [...OPERATIONS].sort(), 'every aws sms command was run');
    });

    test('the real /usr/bin/aws binary: success, a service error (exit 254) and a bad signature', async () => {
      const r = await aws(server.url, server.credentials, ['get-connectors']);
      assert.equal(r.rc, 0, r.stderr);
      const e = await aws(server.url, server.credentials, [
        'get-replication-jobs',
        '--replication-job-id',
        'sms-job-none',
      ]);
      fails(e, 'ReplicationJobNotFoundException', 'real binary error');
      const bad = await aws(server.url, { ...server.credentials, secretAccessKey: 'wrong' }, ['get-servers']);
      fails(bad, 'InvalidSignatureException', 'wrong secret');
    });
  });
}
