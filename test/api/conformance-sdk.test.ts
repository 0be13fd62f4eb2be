/**
 * Conformance through the real JS client (@aws-sdk/client-sms 3.523.0) against a real
 * `ferry server` on loopback, once per database back end: all 35 operations, their errors
 * (by the exception classes the SDK builds from `__type`), pagination and timestamps.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SMSServiceException } from '@aws-sdk/client-sms';
import { paginateGetServers, SMS } from '@aws-sdk/client-sms';
import { DIALECTS } from '../helpers/databases.js';
import { makeImagesDir } from '../helpers/fixtures.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const ALL_OPERATIONS = 35;

async function rejectsWith(p: Promise<unknown>, name: string, status = 400): Promise<SMSServiceException> {
  try {
    await p;
  } catch (err) {
    const e = err as SMSServiceException;
    assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, status);
    assert.ok(e.message.length > 0);
    return e;
  }
  assert.fail(`expected ${name}, but the call succeeded`);
}

for (const dialect of DIALECTS) {
  describe(`SMS conformance through @aws-sdk/client-sms (${dialect})`, () => {
    let server: RunningServer;
    let sms: SMS;
    const called = new Set<string>();
    const vm: Record<string, string> = {};

    before(async () => {
      server = await startServer({ dialect, imagesDir: await makeImagesDir(5) });
      sms = new SMS({
        endpoint: server.url,
        region: 'eu-west-3',
        credentials: server.credentials,
        maxAttempts: 1,
      });
      sms.middlewareStack.add(
        (next, context) => (args) => {
          called.add(String(context.commandName).replace(/Command$/, ''));
          return next(args);
        },
        { step: 'initialize', name: 'recordOperation' },
      );
    });
    after(async () => {
      sms?.destroy();
      await server?.stop();
    });

    test('connectors: the built-in connector is registered and HEALTHY', async () => {
      const r = await sms.getConnectors({});
      assert.equal(r.connectorList?.length, 1);
      const c = r.connectorList![0]!;
      assert.equal(c.status, 'HEALTHY');
      assert.deepEqual(c.capabilityList, ['VSPHERE', 'HYPERV-MANAGER']);
      assert.ok(c.associatedOn instanceof Date && Math.abs(c.associatedOn.getTime() - Date.now()) < 120_000);
      assert.match(c.vmManagerId ?? '', /^folder-/);
      await rejectsWith(sms.disassociateConnector({ connectorId: 'c-nope' }), 'InvalidParameterException');
      await rejectsWith(sms.disassociateConnector({} as never), 'MissingRequiredParameterException');
    });

    test('catalog: import, paginated GetServers with epoch-second timestamps, address filter', async () => {
      await sms.importServerCatalog({});
      const first = await sms.getServers({});
      assert.equal(first.serverCatalogStatus, 'AVAILABLE');
      assert.ok(first.lastModifiedOn instanceof Date);
      assert.ok(Math.abs(first.lastModifiedOn!.getTime() - Date.now()) < 120_000, 'a real time, not 1970');
      assert.equal(first.serverList?.length, 5);
      assert.equal(first.nextToken, undefined);
      const tokens: string[] = [];
      const pagedIds: string[] = [];
      for await (const page of paginateGetServers({ client: sms, pageSize: 2 }, {})) {
        pagedIds.push(...(page.serverList ?? []).map((s) => s.serverId!));
        if (page.nextToken) tokens.push(page.nextToken);
      }
      assert.deepEqual(
        pagedIds,
        first.serverList!.map((s) => s.serverId),
      );
      assert.equal(tokens.length, 2);
      assert.equal(new Set(tokens).size, tokens.length, 'never the same token twice');
      for (const s of first.serverList!) vm[s.vmServer!.vmServerAddress!.vmId!] = s.serverId!;
      assert.deepEqual(
        Object.keys(vm),
        ['vm01', 'vm02', 'vm03', 'vm04', 'vm05'],
        'catalog order is VM order',
      );
      const addr = first.serverList![2]!.vmServer!.vmServerAddress!;
      const only = await sms.getServers({ vmServerAddressList: [addr] });
      assert.deepEqual(
        only.serverList?.map((s) => s.vmServer?.vmServerAddress),
        [addr],
      );
      await rejectsWith(sms.getServers({ nextToken: 'garbage' }), 'InvalidParameterException');
      await rejectsWith(sms.getServers({ maxResults: 0 }), 'InvalidParameterException');
    });

    test('replication jobs: create, list, update, on-demand runs with the SMS limit, runs, delete', async () => {
      const seed = new Date(Date.now() + 3600_000);
      seed.setMilliseconds(0);
      const created = await sms.createReplicationJob({
        serverId: vm['vm01']!,
        seedReplicationTime: seed,
        frequency: 12,
        licenseType: 'BYOL',
        description: 'nightly',
        numberOfRecentAmisToKeep: 3,
      });
      const jobId = created.replicationJobId!;
      assert.match(jobId, /^sms-job-[0-9a-f]{17}$/);
      await rejectsWith(
        sms.createReplicationJob({ serverId: vm['vm01']!, seedReplicationTime: seed, frequency: 12 }),
        'ReplicationJobAlreadyExistsException',
      );
      await rejectsWith(
        sms.createReplicationJob({ serverId: vm['vm02']! } as never),
        'MissingRequiredParameterException',
      );
      await rejectsWith(
        sms.createReplicationJob({ serverId: 's-unknown', seedReplicationTime: seed, frequency: 12 }),
        'InvalidParameterException',
      );
      await rejectsWith(
        sms.createReplicationJob({ serverId: vm['vm02']!, seedReplicationTime: seed, frequency: 25 }),
        'InvalidParameterException',
      );
      await rejectsWith(
        sms.createReplicationJob({
          serverId: vm['vm02']!,
          seedReplicationTime: seed,
          frequency: 1,
          licenseType: 'FREE' as never,
        }),
        'InvalidParameterException',
      );

      const one = await sms.getReplicationJobs({ replicationJobId: jobId });
      const job = one.replicationJobList![0]!;
      assert.equal(job.state, 'PENDING');
      assert.equal(
        job.seedReplicationTime?.getTime(),
        seed.getTime(),
        'timestamps round-trip as epoch seconds',
      );
      assert.equal(job.nextReplicationRunStartTime?.getTime(), seed.getTime());
      assert.equal(job.licenseType, 'BYOL');
      assert.equal(job.serverId, vm['vm01']);
      assert.equal(job.vmServer?.vmServerAddress?.vmId, 'vm01');
      await rejectsWith(
        sms.getReplicationJobs({ replicationJobId: 'sms-job-nope' }),
        'ReplicationJobNotFoundException',
      );

      const second = await sms.createReplicationJob({
        serverId: vm['vm02']!,
        seedReplicationTime: seed,
        runOnce: true,
      });
      const list1 = await sms.getReplicationJobs({ maxResults: 1 });
      assert.equal(list1.replicationJobList?.length, 1);
      assert.ok(list1.nextToken);
      const list2 = await sms.getReplicationJobs({ maxResults: 1, nextToken: list1.nextToken });
      assert.equal(list2.nextToken, undefined);
      assert.deepEqual(
        [
          list1.replicationJobList![0]!.replicationJobId,
          list2.replicationJobList![0]!.replicationJobId,
        ].sort(),
        [jobId, second.replicationJobId].sort(),
      );

      const next = new Date(seed.getTime() + 7200_000);
      await sms.updateReplicationJob({
        replicationJobId: jobId,
        frequency: 6,
        nextReplicationRunStartTime: next,
        description: 'six-hourly',
      });
      const updated = (await sms.getReplicationJobs({ replicationJobId: jobId })).replicationJobList![0]!;
      assert.equal(updated.frequency, 6);
      assert.equal(updated.nextReplicationRunStartTime?.getTime(), next.getTime());
      await rejectsWith(
        sms.updateReplicationJob({ replicationJobId: 'sms-job-nope', frequency: 6 }),
        'ReplicationJobNotFoundException',
      );

      const run = await sms.startOnDemandReplicationRun({
        replicationJobId: jobId,
        description: 'now please',
      });
      assert.match(run.replicationRunId ?? '', /^sms-run-[0-9a-f]{17}$/);
      const runs = await sms.getReplicationRuns({ replicationJobId: jobId });
      assert.equal(runs.replicationJob?.replicationJobId, jobId);
      const r0 = runs.replicationRunList!.find((r) => r.replicationRunId === run.replicationRunId)!;
      assert.equal(r0.type, 'ON_DEMAND');
      assert.equal(r0.description, 'now please');
      assert.ok(r0.scheduledStartTime instanceof Date);
      await rejectsWith(
        sms.getReplicationRuns({ replicationJobId: 'sms-job-nope' }),
        'ReplicationJobNotFoundException',
      );

      await sms.deleteReplicationJob({ replicationJobId: jobId });
      await rejectsWith(
        sms.deleteReplicationJob({ replicationJobId: jobId }),
        'ReplicationJobNotFoundException',
      );
      await rejectsWith(
        sms.startOnDemandReplicationRun({ replicationJobId: jobId }),
        'ReplicationJobNotFoundException',
      );
      const servers = await sms.getServers({
        vmServerAddressList: [{ vmManagerId: job.vmServer!.vmServerAddress!.vmManagerId!, vmId: 'vm01' }],
      });
      assert.equal(servers.serverList?.[0]?.replicationJobTerminated, true);
      await sms.deleteReplicationJob({ replicationJobId: second.replicationJobId! });
    });

    test('on-demand runs: one at a time, at most 2 per job per 24 hours', async () => {
      const seed = new Date(Date.now() + 3600_000);
      const { replicationJobId } = await sms.createReplicationJob({
        serverId: vm['vm05']!,
        seedReplicationTime: seed,
        frequency: 24,
      });
      const finished = async (runId: string) => {
        for (let i = 0; i < 400; i++) {
          const run = (await sms.getReplicationRuns({ replicationJobId })).replicationRunList!.find(
            (r) => r.replicationRunId === runId,
          )!;
          if (run.state !== 'PENDING' && run.state !== 'ACTIVE') return run;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.fail('run did not finish');
      };
      const first = await sms.startOnDemandReplicationRun({ replicationJobId });
      const second = sms.startOnDemandReplicationRun({ replicationJobId });
      // While the first is pending or running a second must wait (unless it already finished).
      await second.then(
        (r) => finished(r.replicationRunId!),
        (e: SMSServiceException) => assert.equal(e.name, 'OperationNotPermittedException'),
      );
      assert.equal((await finished(first.replicationRunId!)).state, 'COMPLETED');
      const used = (await sms.getReplicationRuns({ replicationJobId })).replicationRunList!.length;
      if (used < 2)
        await finished((await sms.startOnDemandReplicationRun({ replicationJobId })).replicationRunId!);
      await rejectsWith(
        sms.startOnDemandReplicationRun({ replicationJobId }),
        'ReplicationRunLimitExceededException',
      );
      await sms.deleteReplicationJob({ replicationJobId });
    });

    test('apps: create (idempotent clientToken), get, list with pagination, update, import, delete', async () => {
      const a = await sms.createApp({
        name: 'shop',
        description: 'web + db',
        clientToken: 'token-1',
        serverGroups: [
          { name: 'web', serverList: [{ serverId: vm['vm03']! }] },
          { name: 'db', serverList: [{ serverId: vm['vm04']! }] },
        ],
        tags: [{ key: 'env', value: 'test' }],
      });
      const appId = a.appSummary!.appId!;
      assert.match(appId, /^app-[0-9a-f]{17}$/);
      assert.equal(a.appSummary?.totalServers, 2);
      assert.equal(a.appSummary?.replicationStatus, 'READY_FOR_CONFIGURATION');
      assert.ok(a.appSummary?.creationTime instanceof Date);
      assert.equal(a.serverGroups?.[0]?.serverList?.[0]?.vmServer?.vmServerAddress?.vmId, 'vm03');
      const again = await sms.createApp({ name: 'shop', clientToken: 'token-1' });
      assert.equal(again.appSummary?.appId, appId);
      const b = await sms.createApp({ name: 'empty' });
      await rejectsWith(
        sms.createApp({ serverGroups: [{ serverList: [{ serverId: 's-unknown' }] }] }),
        'InvalidParameterException',
      );

      const got = await sms.getApp({ appId });
      assert.deepEqual(got.tags, [{ key: 'env', value: 'test' }]);
      await rejectsWith(sms.getApp({}), 'MissingRequiredParameterException');
      await rejectsWith(sms.getApp({ appId: 'app-00000000000000000' }), 'InvalidParameterException');

      const p1 = await sms.listApps({ maxResults: 1 });
      const p2 = await sms.listApps({ maxResults: 1, nextToken: p1.nextToken });
      assert.equal(p2.nextToken, undefined);
      assert.deepEqual([p1.apps![0]!.appId, p2.apps![0]!.appId].sort(), [appId, b.appSummary!.appId].sort());
      const filtered = await sms.listApps({ appIds: [appId] });
      assert.deepEqual(
        filtered.apps?.map((x) => x.appId),
        [appId],
      );

      const up = await sms.updateApp({ appId, name: 'shop-2', tags: [] });
      assert.equal(up.appSummary?.name, 'shop-2');
      assert.deepEqual(up.tags, []);
      await sms.importAppCatalog({ roleName: 'ignored' });
      await sms.deleteApp({ appId: b.appSummary!.appId! });
      await rejectsWith(sms.getApp({ appId: b.appSummary!.appId! }), 'InvalidParameterException');
    });

    test('app replication, launch and validation configuration; templates; notifications', async () => {
      const { appSummary, serverGroups } = await sms.createApp({
        name: 'erp',
        serverGroups: [{ name: 'all', serverList: [{ serverId: vm['vm03']! }, { serverId: vm['vm04']! }] }],
      });
      const appId = appSummary!.appId!;
      const sg = serverGroups![0]!.serverGroupId!;
      const seedTime = new Date(Date.now() + 3600_000);
      seedTime.setMilliseconds(0);
      await sms.putAppReplicationConfiguration({
        appId,
        serverGroupReplicationConfigurations: [
          {
            serverGroupId: sg,
            serverReplicationConfigurations: [
              {
                server: { serverId: vm['vm03']! },
                serverReplicationParameters: { seedTime, frequency: 4, licenseType: 'AWS' },
              },
            ],
          },
        ],
      });
      const rc = await sms.getAppReplicationConfiguration({ appId });
      const params =
        rc.serverGroupReplicationConfigurations![0]!.serverReplicationConfigurations![0]!
          .serverReplicationParameters!;
      assert.equal(params.seedTime?.getTime(), seedTime.getTime());
      assert.equal(params.frequency, 4);
      await rejectsWith(
        sms.putAppReplicationConfiguration({
          appId,
          serverGroupReplicationConfigurations: [{ serverGroupId: 'sg-other' }],
        }),
        'InvalidParameterException',
      );
      await sms.startAppReplication({ appId });
      const jobs = (await sms.getReplicationJobs({})).replicationJobList!.filter((j) =>
        j.description?.includes(appId),
      );
      assert.equal(jobs.length, 2);
      assert.equal(jobs.find((j) => j.serverId === vm['vm03'])?.frequency, 4);
      await sms.startOnDemandAppReplication({ appId, description: 'all now' });
      assert.notEqual((await sms.getApp({ appId })).appSummary?.replicationStatus, 'READY_FOR_REPLICATION');
      await sms.stopAppReplication({ appId });
      await sms.deleteAppReplicationConfiguration({ appId });
      assert.equal(
        (await sms.getApp({ appId })).appSummary?.replicationConfigurationStatus,
        'NOT_CONFIGURED',
      );

      await sms.putAppLaunchConfiguration({
        appId,
        roleName: 'launcher',
        autoLaunch: false,
        serverGroupLaunchConfigurations: [
          {
            serverGroupId: sg,
            launchOrder: 1,
            serverLaunchConfigurations: [
              { server: { serverId: vm['vm04']! }, logicalId: 'Db', instanceType: 't3.large' },
            ],
          },
        ],
      });
      const lc = await sms.getAppLaunchConfiguration({ appId });
      assert.equal(lc.roleName, 'launcher');
      assert.equal(
        lc.serverGroupLaunchConfigurations![0]!.serverLaunchConfigurations![0]!.instanceType,
        't3.large',
      );
      await rejectsWith(sms.launchApp({ appId }), 'OperationNotPermittedException');
      await rejectsWith(sms.terminateApp({ appId }), 'OperationNotPermittedException');
      const t = await sms.generateTemplate({ appId, templateFormat: 'YAML' });
      assert.equal(t.s3Location?.bucket, 'ferry-local');
      assert.match(t.s3Location?.key ?? '', new RegExp(`^templates/${appId}/tpl-[0-9a-f]{17}\\.yaml$`));
      const cs = await sms.generateChangeSet({ appId, changesetFormat: 'JSON' });
      assert.match(cs.s3Location?.key ?? '', /^change-sets\//);
      await sms.deleteAppLaunchConfiguration({ appId });

      await sms.putAppValidationConfiguration({
        appId,
        appValidationConfigurations: [
          {
            name: 'smoke',
            appValidationStrategy: 'SSM',
            ssmValidationParameters: {
              instanceId: 'i-0123456789abcdef0',
              command: 'run.sh',
              executionTimeoutSeconds: 600,
              scriptType: 'SHELL_SCRIPT',
            },
          },
        ],
        serverGroupValidationConfigurations: [
          {
            serverGroupId: sg,
            serverValidationConfigurations: [
              { server: { serverId: vm['vm03']! }, name: 'ping', serverValidationStrategy: 'USERDATA' },
            ],
          },
        ],
      });
      const vc = await sms.getAppValidationConfiguration({ appId });
      const validationId = vc.appValidationConfigurations![0]!.validationId!;
      assert.match(validationId, /^val-[0-9a-f]{17}$/);
      let out = await sms.getAppValidationOutput({ appId });
      assert.deepEqual(
        out.validationOutputList?.map((o) => o.status),
        ['READY_FOR_VALIDATION', 'READY_FOR_VALIDATION'],
      );
      await sms.notifyAppValidationOutput({
        appId,
        notificationContext: { validationId, status: 'SUCCEEDED', statusMessage: 'all good' },
      });
      out = await sms.getAppValidationOutput({ appId });
      const o = out.validationOutputList!.find((x) => x.validationId === validationId)!;
      assert.equal(o.status, 'SUCCEEDED');
      assert.ok(o.latestValidationTime instanceof Date);
      await rejectsWith(
        sms.notifyAppValidationOutput({
          appId,
          notificationContext: { validationId: 'val-00000000000000000', status: 'FAILED' },
        }),
        'InvalidParameterException',
      );
      await rejectsWith(sms.getAppValidationOutput({ appId: 'not-an-app-id' }), 'InvalidParameterException');
      await rejectsWith(
        sms.putAppValidationConfiguration({
          appId,
          appValidationConfigurations: [{ ssmValidationParameters: { executionTimeoutSeconds: 5 } }],
        }),
        'InvalidParameterException',
      );
      await sms.deleteAppValidationConfiguration({ appId });
      assert.deepEqual((await sms.getAppValidationOutput({ appId })).validationOutputList, []);
      await sms.deleteApp({ appId, forceStopAppReplication: true });
    });

    test('DeleteServerCatalog empties the catalog; DisassociateConnector makes the catalog import fail', async () => {
      await sms.deleteServerCatalog({});
      const r = await sms.getServers({});
      assert.equal(r.serverCatalogStatus, 'DELETED');
      assert.deepEqual(r.serverList ?? [], []);
      const [c] = (await sms.getConnectors({})).connectorList!;
      await sms.disassociateConnector({ connectorId: c!.connectorId! });
      assert.deepEqual((await sms.getConnectors({})).connectorList ?? [], []);
      await rejectsWith(sms.importServerCatalog({}), 'NoConnectorsAvailableException');
    });

    test('wrong credentials are refused the way the SDK expects', async () => {
      const bad = new SMS({
        endpoint: server.url,
        region: 'us-east-1',
        credentials: { ...server.credentials, secretAccessKey: 'wrong' },
        maxAttempts: 1,
      });
      await rejectsWith(bad.getServers({}), 'InvalidSignatureException', 403);
      const unknown = new SMS({
        endpoint: server.url,
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' },
        maxAttempts: 1,
      });
      await rejectsWith(unknown.getServers({}), 'UnrecognizedClientException', 403);
      bad.destroy();
      unknown.destroy();
    });

    test('every one of the 35 operations was called', () => {
      assert.equal(called.size, ALL_OPERATIONS, `called: ${[...called].sort().join(', ')}`);
    });
  });
}
