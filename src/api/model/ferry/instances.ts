/** Instances this server launched (LaunchApp), as `ferry instances` shows them. */
import type { FerryArea } from './index.js';

const ERRORS = [
  'UnauthorizedOperationException',
  'InvalidParameterException',
  'OperationNotPermittedException',
  'InternalError',
];

export const shapes: FerryArea['shapes'] = {
  FerryInstance: {
    type: 'structure',
    members: {
      instanceId: 'string',
      appId: 'string',
      serverId: 'string',
      imageId: 'string',
      instanceType: 'string',
      state: 'string',
      statusMessage: 'string',
      launchOrder: 'integer',
      hostId: 'string',
      createdAt: 'timestamp',
      updatedAt: 'timestamp',
    },
  },
  FerryInstanceList: { type: 'list', member: 'FerryInstance' },
  ListInstancesRequest: { type: 'structure', members: { appId: 'string' } },
  ListInstancesResponse: { type: 'structure', members: { instances: 'FerryInstanceList' } },
  GetInstanceConsoleRequest: {
    type: 'structure',
    members: { instanceId: 'string' },
    required: ['instanceId'],
  },
  GetInstanceConsoleResponse: { type: 'structure', members: { instanceId: 'string', output: 'string' } },
  FerryInstanceIds: { type: 'list', member: 'string', min: 1, max: 100 },
  FerryInstancesRequest: {
    type: 'structure',
    members: { instanceIds: 'FerryInstanceIds' },
    required: ['instanceIds'],
  },
  FerryInstancesResponse: { type: 'structure', members: { instances: 'FerryInstanceList' } },
};

export const operations: FerryArea['operations'] = {
  ListInstances: ['ListInstancesRequest', 'ListInstancesResponse', ERRORS],
  GetInstanceConsole: ['GetInstanceConsoleRequest', 'GetInstanceConsoleResponse', ERRORS],
  // EC2's names: each acts on every instance given, in order, and answers their new records.
  StopInstances: ['FerryInstancesRequest', 'FerryInstancesResponse', ERRORS],
  StartInstances: ['FerryInstancesRequest', 'FerryInstancesResponse', ERRORS],
  TerminateInstances: ['FerryInstancesRequest', 'FerryInstancesResponse', ERRORS],
};
