/**
 * The local bucket `ferry-local` (docs/launch.md, "User data and configure scripts"): the
 * files launch configurations name by S3 location. Bodies travel base64-encoded, as
 * binary members do in AWS JSON APIs.
 */
import type { FerryArea } from './index.js';

const ERRORS = ['UnauthorizedOperationException', 'InvalidParameterException', 'InternalError'];
const LOCATION = { bucket: 'string', key: 'FerryObjectKey' };

export const shapes: FerryArea['shapes'] = {
  FerryObjectKey: { type: 'string', min: 1, max: 512 },
  // 1 MiB of content is 1.4 MiB of base64; the request body cap (4 MiB) bounds it too.
  FerryObjectBody: { type: 'string', min: 0, max: 1_400_000 },
  PutObjectRequest: {
    type: 'structure',
    members: { ...LOCATION, bodyBase64: 'FerryObjectBody' },
    required: ['key', 'bodyBase64'],
  },
  PutObjectResponse: { type: 'structure', members: { key: 'string', size: 'integer' } },
  GetObjectRequest: { type: 'structure', members: LOCATION, required: ['key'] },
  GetObjectResponse: { type: 'structure', members: { key: 'string', size: 'integer', bodyBase64: 'string' } },
  DeleteObjectRequest: { type: 'structure', members: LOCATION, required: ['key'] },
  DeleteObjectResponse: { type: 'structure', members: {} },
  ListObjectsRequest: { type: 'structure', members: { prefix: 'string' } },
  FerryObject: { type: 'structure', members: { key: 'string', size: 'integer' } },
  FerryObjectList: { type: 'list', member: 'FerryObject' },
  ListObjectsResponse: { type: 'structure', members: { objects: 'FerryObjectList' } },
};

export const operations: FerryArea['operations'] = {
  PutObject: ['PutObjectRequest', 'PutObjectResponse', ERRORS],
  GetObject: ['GetObjectRequest', 'GetObjectResponse', ERRORS],
  DeleteObject: ['DeleteObjectRequest', 'DeleteObjectResponse', ERRORS],
  ListObjects: ['ListObjectsRequest', 'ListObjectsResponse', ERRORS],
};
