/** Each table of schema.ts as a Table: record field → [column, storage kind]. */
import type {
  AccessKeyRecord,
  AppRecord,
  ConnectorRecord,
  JobRecord,
  RunRecord,
  ServerRecord,
  InstanceRecord,
  TemplateRecord,
  EventRecord,
  WebhookRecord,
  DeliveryRecord,
  EnrolmentTokenRecord,
  LaunchHostRecord,
} from './records.js';
import { Table } from './table.js';

export const accessKeys = new Table<AccessKeyRecord>('access_keys', 'accessKeyId', {
  accessKeyId: ['access_key_id', 'text'],
  secretCiphertext: ['secret_ciphertext', 'text'],
  sessionTokenHash: ['session_token_hash', 'text'],
  description: ['description', 'text'],
  createdAt: ['created_at', 'int'],
  expiresAt: ['expires_at', 'int'],
  revokedAt: ['revoked_at', 'int'],
});

export const connectors = new Table<ConnectorRecord>('connectors', 'connectorId', {
  connectorId: ['connector_id', 'text'],
  kind: ['kind', 'text'],
  version: ['version', 'text'],
  capabilities: ['capabilities', 'json'],
  vmManagerId: ['vm_manager_id', 'text'],
  vmManagerName: ['vm_manager_name', 'text'],
  vmManagerType: ['vm_manager_type', 'text'],
  ipAddress: ['ip_address', 'text'],
  macAddress: ['mac_address', 'text'],
  associatedOn: ['associated_on', 'int'],
  lastHeartbeatAt: ['last_heartbeat_at', 'int'],
  disassociatedAt: ['disassociated_at', 'int'],
  certSerial: ['cert_serial', 'text'],
});

export const servers = new Table<ServerRecord>('servers', 'serverId', {
  serverId: ['server_id', 'text'],
  connectorId: ['connector_id', 'text'],
  vmManagerId: ['vm_manager_id', 'text'],
  vmId: ['vm_id', 'text'],
  sortKey: ['sort_key', 'text'],
  vmName: ['vm_name', 'text'],
  vmManagerName: ['vm_manager_name', 'text'],
  vmManagerType: ['vm_manager_type', 'text'],
  vmPath: ['vm_path', 'text'],
  facts: ['facts', 'json'],
  replicationJobId: ['replication_job_id', 'text'],
  replicationJobTerminated: ['replication_job_terminated', 'bool'],
  importedAt: ['imported_at', 'int'],
});

export const jobs = new Table<JobRecord>('replication_jobs', 'replicationJobId', {
  replicationJobId: ['replication_job_id', 'text'],
  serverId: ['server_id', 'text'],
  server: ['server', 'json'],
  seedReplicationTime: ['seed_replication_time', 'int'],
  frequency: ['frequency', 'int'],
  runOnce: ['run_once', 'bool'],
  nextRunAt: ['next_run_at', 'int'],
  licenseType: ['license_type', 'text'],
  roleName: ['role_name', 'text'],
  description: ['description', 'text'],
  numberOfRecentAmisToKeep: ['number_of_recent_amis_to_keep', 'int'],
  encrypted: ['encrypted', 'bool'],
  kmsKeyId: ['kms_key_id', 'text'],
  latestAmiId: ['latest_ami_id', 'text'],
  state: ['state', 'text'],
  statusMessage: ['status_message', 'text'],
  consecutiveFailures: ['consecutive_failures', 'int'],
  appId: ['app_id', 'text'],
  createdAt: ['created_at', 'int'],
  updatedAt: ['updated_at', 'int'],
});

export const runs = new Table<RunRecord>('replication_runs', 'replicationRunId', {
  replicationRunId: ['replication_run_id', 'text'],
  replicationJobId: ['replication_job_id', 'text'],
  type: ['type', 'text'],
  state: ['state', 'text'],
  statusMessage: ['status_message', 'text'],
  stage: ['stage', 'text'],
  stageProgress: ['stage_progress', 'text'],
  amiId: ['ami_id', 'text'],
  scheduledStartTime: ['scheduled_start_time', 'int'],
  startedAt: ['started_at', 'int'],
  completedTime: ['completed_time', 'int'],
  description: ['description', 'text'],
  encrypted: ['encrypted', 'bool'],
  kmsKeyId: ['kms_key_id', 'text'],
  step: ['step', 'text'],
  checkpoint: ['checkpoint', 'json'],
  progress: ['progress', 'json'],
  leaseOwner: ['lease_owner', 'text'],
  leaseUntil: ['lease_until', 'int'],
  attempts: ['attempts', 'int'],
  createdAt: ['created_at', 'int'],
});

export const apps = new Table<AppRecord>('apps', 'appId', {
  appId: ['app_id', 'text'],
  clientToken: ['client_token', 'text'],
  body: ['body', 'json'],
  replicationConfig: ['replication_config', 'json'],
  launchConfig: ['launch_config', 'json'],
  validationConfig: ['validation_config', 'json'],
  validationOutputs: ['validation_outputs', 'json'],
  createdAt: ['created_at', 'int'],
  updatedAt: ['updated_at', 'int'],
});

export const instances = new Table<InstanceRecord>('instances', 'instanceId', {
  instanceId: ['instance_id', 'text'],
  appId: ['app_id', 'text'],
  serverId: ['server_id', 'text'],
  imageId: ['image_id', 'text'],
  instanceType: ['instance_type', 'text'],
  state: ['state', 'text'],
  statusMessage: ['status_message', 'text'],
  dir: ['dir', 'text'],
  pid: ['pid', 'int'],
  launchOrder: ['launch_order', 'int'],
  hostId: ['host_id', 'text'],
  createdAt: ['created_at', 'int'],
  updatedAt: ['updated_at', 'int'],
});

export const templates = new Table<TemplateRecord>('templates', 'templateId', {
  templateId: ['template_id', 'text'],
  appId: ['app_id', 'text'],
  kind: ['kind', 'text'],
  format: ['format', 'text'],
  body: ['body', 'text'],
  createdAt: ['created_at', 'int'],
});

export const events = new Table<EventRecord>('events', 'eventId', {
  eventId: ['event_id', 'text'],
  source: ['source', 'text'],
  detailType: ['detail_type', 'text'],
  occurredAt: ['occurred_at', 'int'],
  resources: ['resources', 'json'],
  detail: ['detail', 'json'],
});

export const webhooks = new Table<WebhookRecord>('webhooks', 'webhookId', {
  webhookId: ['webhook_id', 'text'],
  name: ['name', 'text'],
  url: ['url', 'text'],
  description: ['description', 'text'],
  eventPatterns: ['event_patterns', 'json'],
  secretCiphertext: ['secret_ciphertext', 'text'],
  caBundle: ['ca_bundle', 'text'],
  enabled: ['enabled', 'bool'],
  maxAttempts: ['max_attempts', 'int'],
  createdAt: ['created_at', 'int'],
  updatedAt: ['updated_at', 'int'],
});

export const deliveries = new Table<DeliveryRecord>('webhook_deliveries', 'deliveryId', {
  deliveryId: ['delivery_id', 'text'],
  webhookId: ['webhook_id', 'text'],
  eventId: ['event_id', 'text'],
  state: ['state', 'text'],
  attempts: ['attempts', 'int'],
  nextAttemptAt: ['next_attempt_at', 'int'],
  leaseOwner: ['lease_owner', 'text'],
  leaseUntil: ['lease_until', 'int'],
  lastStatus: ['last_status', 'int'],
  lastError: ['last_error', 'text'],
  createdAt: ['created_at', 'int'],
  updatedAt: ['updated_at', 'int'],
  deliveredAt: ['delivered_at', 'int'],
});

export const enrolmentTokens = new Table<EnrolmentTokenRecord>('enrolment_tokens', 'tokenHash', {
  tokenHash: ['token_hash', 'text'],
  description: ['description', 'text'],
  createdAt: ['created_at', 'int'],
  expiresAt: ['expires_at', 'int'],
  usedAt: ['used_at', 'int'],
  usedBy: ['used_by', 'text'],
  role: ['role', 'text'],
});

export const launchHosts = new Table<LaunchHostRecord>('launch_hosts', 'hostId', {
  hostId: ['host_id', 'text'],
  name: ['name', 'text'],
  version: ['version', 'text'],
  facts: ['facts', 'json'],
  ipAddress: ['ip_address', 'text'],
  certSerial: ['cert_serial', 'text'],
  enrolledAt: ['enrolled_at', 'int'],
  lastHeartbeatAt: ['last_heartbeat_at', 'int'],
  disassociatedAt: ['disassociated_at', 'int'],
});
