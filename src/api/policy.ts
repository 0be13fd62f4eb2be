/**
 * Where the SMS model leaves a gap (sms-api.md §5), Ferry's policy fills it. Every rule
 * here is checked at the API edge like the model's own constraints, with the model's
 * exception names, and is listed in docs/api-compatibility.md.
 */

/** Operations whose `appId` the model leaves optional; omitting it is refused (§5.3). */
export const APP_ID_REQUIRED = new Set([
  'GetApp',
  'UpdateApp',
  'DeleteApp',
  'PutAppReplicationConfiguration',
  'GetAppReplicationConfiguration',
  'DeleteAppReplicationConfiguration',
  'StartAppReplication',
  'StopAppReplication',
  'PutAppLaunchConfiguration',
  'GetAppLaunchConfiguration',
  'DeleteAppLaunchConfiguration',
  'LaunchApp',
  'TerminateApp',
  'GenerateTemplate',
  'GenerateChangeSet',
]);

/** Integer members without model bounds: [min, max] by member name. */
export const INTEGER_BOUNDS: Readonly<Record<string, readonly [number, number]>> = {
  // Page size: at least 1; larger requests are served in pages of MAX_PAGE_SIZE.
  maxResults: [1, 2 ** 31 - 1],
  // Hours (or minutes, with `ferry server --frequency-unit minutes`); the upper bound
  // depends on the unit and is checked by the control plane.
  frequency: [1, 2 ** 31 - 1],
  numberOfRecentAmisToKeep: [0, 1000],
  launchOrder: [0, 10_000],
};

/** Largest page any list operation returns, whatever maxResults asks for. */
export const MAX_PAGE_SIZE = 1000;

/** Strings the model leaves unbounded are capped (storage and log safety). */
export const MAX_STRING_LENGTH = 10_000;
/** Lists the model leaves unbounded are capped. */
export const MAX_LIST_LENGTH = 1000;
/** Request bodies larger than this are refused before parsing. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Members whose unbounded strings get a tighter cap than MAX_STRING_LENGTH. */
export const STRING_CAPS: Readonly<Record<string, number>> = {
  nextToken: 2048,
  name: 255,
  description: 2000,
  key: 128,
  value: 256,
  roleName: 64,
  clientToken: 64,
  kmsKeyId: 2048,
  serverId: 128,
  replicationJobId: 128,
  replicationRunId: 128,
  connectorId: 128,
  serverGroupId: 128,
  vmId: 1024,
  vmManagerId: 1024,
};
