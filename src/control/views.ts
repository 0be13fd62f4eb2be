/**
 * Records → the views the API returns. Views use the SMS member names (Ferry's domain
 * speaks SMS), with times as epoch milliseconds; the API edge converts units and drops
 * anything the model does not have.
 */
import type { ConnectorRecord, JobRecord, RunRecord, ServerRecord } from '../db/index.js';
import type { ServerFacts } from '../connectors/index.js';

/** A connector whose last heartbeat is older than this is UNHEALTHY (3 missed beats). */
export const HEARTBEAT_INTERVAL_MS = 30_000;
export const HEARTBEAT_TIMEOUT_MS = 3 * HEARTBEAT_INTERVAL_MS;

export interface VmServerView {
  vmServerAddress: { vmManagerId: string; vmId: string };
  vmName: string;
  vmManagerName?: string;
  vmManagerType?: string;
  vmPath?: string;
}

export interface ServerView {
  serverId: string;
  serverType: 'VIRTUAL_MACHINE';
  vmServer: VmServerView;
  replicationJobId?: string;
  replicationJobTerminated?: boolean;
}

export function serverView(s: ServerRecord): ServerView {
  return {
    serverId: s.serverId,
    serverType: 'VIRTUAL_MACHINE',
    vmServer: vmServerView(s),
    ...(s.replicationJobId ? { replicationJobId: s.replicationJobId } : {}),
    replicationJobTerminated: s.replicationJobTerminated,
  };
}

export function vmServerView(
  s: Pick<ServerRecord, 'vmManagerId' | 'vmId' | 'vmName' | 'vmManagerName' | 'vmManagerType' | 'vmPath'>,
): VmServerView {
  return {
    vmServerAddress: { vmManagerId: s.vmManagerId, vmId: s.vmId },
    vmName: s.vmName,
    ...(s.vmManagerName ? { vmManagerName: s.vmManagerName } : {}),
    ...(s.vmManagerType ? { vmManagerType: s.vmManagerType } : {}),
    ...(s.vmPath ? { vmPath: s.vmPath } : {}),
  };
}

/** The facts a job keeps about its server (so it survives DeleteServerCatalog). */
export interface JobServerSnapshot {
  readonly serverId: string;
  readonly connectorId: string;
  readonly vmManagerId: string;
  readonly vmId: string;
  readonly vmName: string;
  readonly vmManagerName: string | null;
  readonly vmManagerType: string | null;
  readonly vmPath: string | null;
  readonly facts: ServerFacts;
}

export function connectorView(c: ConnectorRecord, now: number) {
  return {
    connectorId: c.connectorId,
    version: c.version,
    status: now - c.lastHeartbeatAt <= HEARTBEAT_TIMEOUT_MS ? ('HEALTHY' as const) : ('UNHEALTHY' as const),
    capabilityList: [...c.capabilities],
    vmManagerName: c.vmManagerName,
    ...(c.vmManagerType ? { vmManagerType: c.vmManagerType } : {}),
    vmManagerId: c.vmManagerId,
    ...(c.ipAddress ? { ipAddress: c.ipAddress } : {}),
    ...(c.macAddress ? { macAddress: c.macAddress } : {}),
    associatedOn: c.associatedOn,
  };
}

export interface RunProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly bytesPerSecond: number;
  readonly etaSeconds?: number;
}

export function runView(r: RunRecord) {
  return {
    replicationRunId: r.replicationRunId,
    state: r.state,
    type: r.type,
    ...(r.stage
      ? { stageDetails: { stage: r.stage, ...(r.stageProgress ? { stageProgress: r.stageProgress } : {}) } }
      : {}),
    statusMessage: r.statusMessage,
    ...(r.amiId ? { amiId: r.amiId } : {}),
    scheduledStartTime: r.scheduledStartTime,
    ...(r.completedTime !== null ? { completedTime: r.completedTime } : {}),
    ...(r.description ? { description: r.description } : {}),
    encrypted: r.encrypted,
    ...(r.kmsKeyId ? { kmsKeyId: r.kmsKeyId } : {}),
  };
}

export function jobView(j: JobRecord, runs?: readonly RunRecord[]) {
  const server = j.server as JobServerSnapshot;
  return {
    replicationJobId: j.replicationJobId,
    serverId: j.serverId,
    serverType: 'VIRTUAL_MACHINE' as const,
    vmServer: vmServerView(server),
    seedReplicationTime: j.seedReplicationTime,
    ...(j.frequency !== null ? { frequency: j.frequency } : {}),
    runOnce: j.runOnce,
    ...(j.nextRunAt !== null ? { nextReplicationRunStartTime: j.nextRunAt } : {}),
    ...(j.licenseType ? { licenseType: j.licenseType } : {}),
    ...(j.roleName ? { roleName: j.roleName } : {}),
    ...(j.latestAmiId ? { latestAmiId: j.latestAmiId } : {}),
    state: j.state,
    statusMessage: j.statusMessage,
    ...(j.description ? { description: j.description } : {}),
    numberOfRecentAmisToKeep: j.numberOfRecentAmisToKeep,
    encrypted: j.encrypted,
    ...(j.kmsKeyId ? { kmsKeyId: j.kmsKeyId } : {}),
    ...(runs ? { replicationRunList: runs.map(runView) } : {}),
  };
}
