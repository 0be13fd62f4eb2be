/**
 * Enrolment of remote connectors and launch hosts, and the launch hosts a server knows
 * (src/control/enrolment.ts, src/control/hosts/, docs/connector-protocol.md, docs/launch.md).
 */
import type { FerryArea } from './index.js';

const ERRORS = ['UnauthorizedOperationException', 'InvalidParameterException', 'InternalError'];

export const shapes: FerryArea['shapes'] = {
  CreateEnrolmentTokenRequest: {
    type: 'structure',
    members: { ttlSeconds: 'FerryTokenTtl', description: 'FerryDescription', role: 'FerryEnrolRole' },
  },
  FerryTokenTtl: { type: 'integer', min: 60, max: 604800 },
  FerryEnrolRole: { type: 'string', enum: ['connector', 'host'] },
  CreateEnrolmentTokenResponse: {
    type: 'structure',
    members: { enrolmentToken: 'string', expiresAt: 'timestamp', role: 'string' },
  },
  FerryLaunchHostFacts: {
    type: 'structure',
    members: {
      cpus: 'integer',
      memoryMiB: 'integer',
      accelerator: 'string',
      cpuModel: 'string',
      qemu: 'boolean',
    },
  },
  FerryLaunchHost: {
    type: 'structure',
    members: {
      hostId: 'string',
      name: 'string',
      version: 'string',
      facts: 'FerryLaunchHostFacts',
      ipAddress: 'string',
      connected: 'boolean',
      instances: 'integer',
      enrolledAt: 'timestamp',
      lastHeartbeatAt: 'timestamp',
    },
  },
  FerryLaunchHostList: { type: 'list', member: 'FerryLaunchHost' },
  ListLaunchHostsRequest: { type: 'structure', members: {} },
  ListLaunchHostsResponse: { type: 'structure', members: { hosts: 'FerryLaunchHostList' } },
  DisassociateLaunchHostRequest: { type: 'structure', members: { hostId: 'string' }, required: ['hostId'] },
  DisassociateLaunchHostResponse: { type: 'structure', members: {} },
};

export const operations: FerryArea['operations'] = {
  CreateEnrolmentToken: ['CreateEnrolmentTokenRequest', 'CreateEnrolmentTokenResponse', ERRORS],
  ListLaunchHosts: ['ListLaunchHostsRequest', 'ListLaunchHostsResponse', ERRORS],
  DisassociateLaunchHost: ['DisassociateLaunchHostRequest', 'DisassociateLaunchHostResponse', ERRORS],
};
