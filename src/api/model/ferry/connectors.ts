/** Remote connectors' enrolment (src/control/enrolment.ts, docs/connector-protocol.md). */
import type { FerryArea } from './index.js';

const ERRORS = ['UnauthorizedOperationException', 'InvalidParameterException', 'InternalError'];

export const shapes: FerryArea['shapes'] = {
  CreateEnrolmentTokenRequest: {
    type: 'structure',
    members: { ttlSeconds: 'FerryTokenTtl', description: 'FerryDescription' },
  },
  FerryTokenTtl: { type: 'integer', min: 60, max: 604800 },
  CreateEnrolmentTokenResponse: {
    type: 'structure',
    members: { enrolmentToken: 'string', expiresAt: 'timestamp' },
  },
};

export const operations: FerryArea['operations'] = {
  CreateEnrolmentToken: ['CreateEnrolmentTokenRequest', 'CreateEnrolmentTokenResponse', ERRORS],
};
