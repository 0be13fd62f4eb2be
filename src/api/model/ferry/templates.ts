/**
 * Templates GenerateTemplate / GenerateChangeSet stored: SMS wrote them to S3 and returned
 * the location; Ferry keeps them in its database and returns a location in the bucket
 * `ferry-local`, which this operation (and `ferry apps template`) fetches.
 */
import type { FerryArea } from './index.js';

export const shapes: FerryArea['shapes'] = {
  GetTemplateRequest: {
    type: 'structure',
    members: { bucket: 'string', key: 'FerryTemplateKey' },
    required: ['key'],
  },
  FerryTemplateKey: { type: 'string', min: 1, max: 256 },
  GetTemplateResponse: {
    type: 'structure',
    members: { key: 'string', format: 'string', appId: 'string', body: 'string' },
  },
};

export const operations: FerryArea['operations'] = {
  GetTemplate: [
    'GetTemplateRequest',
    'GetTemplateResponse',
    ['UnauthorizedOperationException', 'InvalidParameterException', 'InternalError'],
  ],
};
