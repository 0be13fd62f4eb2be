/**
 * Ferry's extension operations (model/ferry/) bound to the control plane, like
 * operations.ts does for SMS. Inputs arrive validated against the extension model.
 */
import type { ControlPlane } from '../control/index.js';
import type { OperationInput, OperationTable } from './server.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type In = any;
const as = (i: OperationInput): In => i;

export function bindFerryOperations(c: ControlPlane): OperationTable {
  return {
    // Instances (docs/launch.md)
    ListInstances: (i) => c.instances.list(as(i)),
    GetInstanceConsole: (i) => c.instances.console(as(i)),
    StopInstances: (i) => c.instances.act('stop', as(i)),
    StartInstances: (i) => c.instances.act('start', as(i)),
    TerminateInstances: (i) => c.instances.act('terminate', as(i)),
    // The application lifecycle and waves (docs/launch.md)
    GetAppLifecycle: (i) => c.lifecycle.getAppLifecycle(as(i)),
    StartTest: (i) => c.lifecycleAction(as(i), (appId) => c.lifecycle.startTest({ appId })),
    MarkReadyForCutover: (i) =>
      c.lifecycleAction(as(i), (appId) => c.lifecycle.markReadyForCutover({ appId })),
    RevertToReadyForTesting: (i) =>
      c.lifecycleAction(as(i), (appId) => c.lifecycle.revertToReadyForTesting({ appId })),
    StartCutover: (i) =>
      c.lifecycleAction(as(i), (appId) =>
        c.lifecycle.startCutover({
          appId,
          ...(i.finalReplication !== undefined ? { finalReplication: i.finalReplication as boolean } : {}),
        }),
      ),
    RevertCutover: (i) => c.lifecycleAction(as(i), (appId) => c.lifecycle.revertCutover({ appId })),
    FinalizeCutover: (i) => c.lifecycleAction(as(i), (appId) => c.lifecycle.finalizeCutover({ appId })),
    ArchiveApp: (i) => c.lifecycleAction(as(i), (appId) => c.lifecycle.archiveApp({ appId })),
    UnarchiveApp: (i) => c.lifecycleAction(as(i), (appId) => c.lifecycle.unarchiveApp({ appId })),
    AssignWave: (i) => c.waves.assignWave(as(i)),
    ListWaves: () => c.waves.listWaves(),
    // Stored templates (GenerateTemplate / GenerateChangeSet locations)
    GetTemplate: (i) => c.appLaunch.templateAt(as(i)),
    // Per-server boot settings
    PutServerLaunchOptions: (i) => c.launchOptions.putServerLaunchOptions(as(i)),
    GetServerLaunchOptions: (i) => c.launchOptions.getServerLaunchOptions(as(i)),
    // Launch checks (validation)
    PutServerChecks: (i) => c.checks.putServerChecks(as(i)),
    GetServerChecks: (i) => c.checks.getServerChecks(as(i)),
    // The local bucket of user data and configure scripts
    PutObject: (i) => c.bucket().put(as(i)),
    GetObject: (i) => c.bucket().getObject(as(i)),
    DeleteObject: (i) => c.bucket().delete(as(i)),
    ListObjects: (i) => c.bucket().list(as(i)),
    // Remote connectors (docs/connector-protocol.md)
    CreateEnrolmentToken: (i) => c.enrolment.createEnrolmentToken(as(i)),
    // Remote launch hosts (docs/launch.md)
    ListLaunchHosts: () => c.launchHosts().list(),
    DisassociateLaunchHost: (i) => c.launchHosts().disassociate(as(i).hostId),
    // Events and webhooks (docs/events.md)
    ListEvents: (i) => c.events.listEvents(c.db, as(i)),
    CreateWebhook: (i) => c.webhooks.createWebhook(as(i)),
    UpdateWebhook: (i) => c.webhooks.updateWebhook(as(i)),
    GetWebhook: (i) => c.webhooks.getWebhook(as(i)),
    ListWebhooks: () => c.webhooks.listWebhooks(),
    DeleteWebhook: (i) => c.webhooks.deleteWebhook(as(i)),
    TestWebhook: (i) => c.webhooks.testWebhook(as(i)),
    ListWebhookDeliveries: (i) => c.webhooks.listWebhookDeliveries(as(i)),
    RedeliverWebhookDeliveries: (i) => c.webhooks.redeliverWebhookDeliveries(as(i)),
  };
}
