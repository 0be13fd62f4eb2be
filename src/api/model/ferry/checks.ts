/** Ferry's launch checks per server (src/control/validation/checks.ts, docs/launch.md "Validation"). */
import type { FerryArea } from './index.js';

const ERRORS = [
  'UnauthorizedOperationException',
  'InvalidParameterException',
  'MissingRequiredParameterException',
  'InternalError',
];

export const shapes: FerryArea['shapes'] = {
  FerryCheckKind: { type: 'string', enum: ['console', 'tcp', 'http', 'script'] },
  FerryCheck: {
    type: 'structure',
    members: {
      kind: 'FerryCheckKind',
      pattern: 'string',
      port: 'integer',
      path: 'string',
      status: 'integer',
      bodyPattern: 'string',
      command: 'string',
      timeoutSeconds: 'integer',
    },
    required: ['kind'],
  },
  FerryCheckList: { type: 'list', member: 'FerryCheck', max: 16 },
  PutServerChecksRequest: {
    type: 'structure',
    members: { appId: 'string', serverId: 'string', name: 'string', checks: 'FerryCheckList' },
    required: ['appId', 'serverId'],
  },
  PutServerChecksResponse: { type: 'structure', members: {} },
  GetServerChecksRequest: { type: 'structure', members: { appId: 'string' }, required: ['appId'] },
  FerryServerChecks: {
    type: 'structure',
    members: { serverId: 'string', validationId: 'string', name: 'string', checks: 'FerryCheckList' },
  },
  FerryServerChecksList: { type: 'list', member: 'FerryServerChecks' },
  GetServerChecksResponse: { type: 'structure', members: { servers: 'FerryServerChecksList' } },
};

export const operations: FerryArea['operations'] = {
  PutServerChecks: ['PutServerChecksRequest', 'PutServerChecksResponse', ERRORS],
  GetServerChecks: ['GetServerChecksRequest', 'GetServerChecksResponse', ERRORS],
};
