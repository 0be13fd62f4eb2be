/**
 * The control plane's domain: catalog, connectors, replication jobs and runs, apps and
 * their configurations, access keys. No HTTP here: the API edge binds SMS operations to
 * these services.
 */
export { ControlPlane, type ControlPlaneOptions } from './control-plane.js';
export { systemClock, ManualClock, type Clock } from './clock.js';
export { KeyService, sha256, type AccessKeySummary, type NewAccessKey, type ResolvedKey } from './keys.js';
export {
  dataDir,
  defaultDataDir,
  ensureDataDir,
  loadOrCreateMasterKey,
  readConfig,
  writeConfig,
  databaseTarget,
  createPrivateFile,
  lockDataDir,
  writePrivateFile,
  type DataDir,
  type DataDirConfig,
} from './data-dir.js';
export { DEFAULT_JOB_POLICY, MAX_FREQUENCY, type JobPolicy } from './jobs.js';
export { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS, type RunProgress } from './views.js';
export { progressText } from './runs/executor.js';
export {
  JOB_STATES,
  RUN_STATES,
  JOB_TRANSITIONS,
  RUN_TRANSITIONS,
  type JobState,
  type RunState,
} from './states.js';
export { newId, serverIdFor } from './ids.js';
export { openControlPlane, openStore, type OpenControlOptions, type OpenedControlPlane } from './open.js';
export type { WorkerOptions } from './control-plane.js';
export {
  EVENT_TYPES,
  verifySignature,
  signatureHeader,
  SIGNATURE_HEADER,
  type DetailType,
  type FerryEvent,
} from './events/index.js';
export { ensureTlsMaterial, loadCa, serverNames, type TlsFiles } from './pki/material.js';
export { LinkServer } from './link-server.js';
export { HostService, type HostView } from './hosts/service.js';
export { EnrolmentService, DEFAULT_TOKEN_TTL_MS } from './enrolment.js';
