/**
 * Application set-up shared by the launch end-to-end tests: replicate a server to its first
 * image, make a one-server app with a launch configuration, wait for a launch to settle,
 * and run `ferry` client commands against a test server.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { SMS } from '@aws-sdk/client-sms';
import { ferry } from './qemu.js';
import type { RunningServer } from './server.js';
import { waitForRun } from './sms.js';

/** Creates a replication job for the server and waits for its first image. */
export async function replicate(sms: SMS, serverId: string, timeoutMs = 180_000): Promise<string> {
  const { replicationJobId } = await sms.createReplicationJob({
    serverId,
    seedReplicationTime: new Date(),
    frequency: 600,
  });
  const r = await waitForRun(sms, replicationJobId!, undefined, timeoutMs);
  assert.equal(r.state, 'COMPLETED', r.statusMessage);
  return replicationJobId!;
}

/** An app of one server in one group (launch order 1), with a launch configuration. */
export async function oneServerApp(
  sms: SMS,
  name: string,
  serverId: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const app = await sms.createApp({ name, serverGroups: [{ name: 'g', serverList: [{ serverId }] }] });
  const appId = app.appSummary!.appId!;
  await sms.putAppLaunchConfiguration({
    appId,
    serverGroupLaunchConfigurations: [
      {
        serverGroupId: app.serverGroups![0]!.serverGroupId,
        launchOrder: 1,
        serverLaunchConfigurations: [{ server: { serverId }, instanceType: 't3.nano', ...extra }],
      },
    ],
  });
  return appId;
}

/** Waits until the app's launch is no longer pending, in progress or validating. */
export async function settledLaunch(sms: SMS, appId: string, timeoutMs = 300_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const s = (await sms.getApp({ appId })).appSummary!;
    if (!['LAUNCH_PENDING', 'LAUNCH_IN_PROGRESS', 'VALIDATION_IN_PROGRESS'].includes(s.launchStatus!))
      return s;
    await new Promise((r) => setTimeout(r, 500));
  }
  return assert.fail(`the launch of ${appId} did not settle`);
}

/** The environment `ferry` client commands need to reach the server with its admin key. */
export function clientEnv(server: RunningServer): NodeJS.ProcessEnv {
  return {
    FERRY_ENDPOINT: server.url,
    FERRY_ACCESS_KEY_FILE: join(server.dataDir, 'admin-credentials.json'),
  };
}

/** Runs `ferry …` against the server and asserts it succeeded; resolves its stdout. */
export async function ferryOk(server: RunningServer, args: string[], timeoutMs = 300_000): Promise<string> {
  const r = await ferry(args, { env: clientEnv(server), timeoutMs });
  assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
