/**
 * The 35 SMS operations bound to the control plane. Inputs arrive validated against the
 * model (validate.ts), so each binding only picks the service; outputs go back through
 * the model (serialize.ts).
 */
import type { ControlPlane } from '../control/index.js';
import type { OperationInput, OperationTable } from './server.js';

// Inputs are model-validated plain objects; each service declares the fields it reads.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type In = any;
const as = (i: OperationInput): In => i;

export function bindOperations(c: ControlPlane): OperationTable {
  return {
    // Connectors
    GetConnectors: (i) => c.connectors.getConnectors(as(i)),
    DisassociateConnector: (i) => c.connectors.disassociateConnector(as(i)),
    // Server catalog
    ImportServerCatalog: () => c.catalog.importServerCatalog(),
    GetServers: (i) => c.catalog.getServers(as(i)),
    DeleteServerCatalog: () => c.catalog.deleteServerCatalog(),
    // Replication jobs and runs
    CreateReplicationJob: (i) => c.jobs.createReplicationJob(as(i)),
    GetReplicationJobs: (i) => c.jobs.getReplicationJobs(as(i)),
    UpdateReplicationJob: (i) => c.jobs.updateReplicationJob(as(i)),
    DeleteReplicationJob: (i) => c.jobs.deleteReplicationJob(as(i)),
    StartOnDemandReplicationRun: (i) => c.jobs.startOnDemandReplicationRun(as(i)),
    GetReplicationRuns: (i) => c.jobs.getReplicationRuns(as(i)),
    // Applications
    CreateApp: (i) => c.apps.createApp(as(i)),
    GetApp: (i) => c.apps.getApp(as(i)),
    ListApps: (i) => c.apps.listApps(as(i)),
    UpdateApp: (i) => c.apps.updateApp(as(i)),
    DeleteApp: (i) => c.deleteApp(as(i)),
    ImportAppCatalog: () => c.apps.importAppCatalog(),
    // Application replication
    PutAppReplicationConfiguration: (i) => c.appReplication.putAppReplicationConfiguration(as(i)),
    GetAppReplicationConfiguration: (i) => c.appReplication.getAppReplicationConfiguration(as(i)),
    DeleteAppReplicationConfiguration: (i) => c.appReplication.deleteAppReplicationConfiguration(as(i)),
    StartAppReplication: (i) => c.appReplication.startAppReplication(as(i)),
    StartOnDemandAppReplication: (i) => c.appReplication.startOnDemandAppReplication(as(i)),
    StopAppReplication: (i) => c.appReplication.stopAppReplication(as(i)),
    // Application launch and templates
    PutAppLaunchConfiguration: (i) => c.appLaunch.putAppLaunchConfiguration(as(i)),
    GetAppLaunchConfiguration: (i) => c.appLaunch.getAppLaunchConfiguration(as(i)),
    DeleteAppLaunchConfiguration: (i) => c.appLaunch.deleteAppLaunchConfiguration(as(i)),
    LaunchApp: (i) => c.appLaunch.launchApp(as(i)),
    TerminateApp: (i) => c.appLaunch.terminateApp(as(i)),
    GenerateTemplate: (i) => c.appLaunch.generateTemplate(as(i)),
    GenerateChangeSet: (i) => c.appLaunch.generateChangeSet(as(i)),
    // Application validation
    PutAppValidationConfiguration: (i) => c.appValidation.putAppValidationConfiguration(as(i)),
    GetAppValidationConfiguration: (i) => c.appValidation.getAppValidationConfiguration(as(i)),
    DeleteAppValidationConfiguration: (i) => c.appValidation.deleteAppValidationConfiguration(as(i)),
    GetAppValidationOutput: (i) => c.appValidation.getAppValidationOutput(as(i)),
    NotifyAppValidationOutput: (i) => c.appValidation.notifyAppValidationOutput(as(i)),
  };
}
