/**
 * The only place Ferry's error codes become SMS/AWS error names (`__type`) and HTTP
 * statuses. Statuses follow sms-api.md §4: every client error is a 4xx that neither client
 * retries; only InternalError (500) and TemporarilyUnavailableException (503) are 5xx,
 * because both clients retry 5xx three times.
 */
import { toFerryError, type FerryError } from '../errors/index.js';

export interface WireError {
  readonly type: string;
  readonly status: number;
  readonly message: string;
}

const BY_CODE: Readonly<Record<string, readonly [type: string, status: number]>> = {
  FERRY_INVALID_ARGUMENT: ['InvalidParameterException', 400],
  FERRY_PARAMETER_MISSING: ['MissingRequiredParameterException', 400],
  FERRY_OPERATION_NOT_PERMITTED: ['OperationNotPermittedException', 400],
  FERRY_NOT_FOUND: ['InvalidParameterException', 400],
  FERRY_JOB_NOT_FOUND: ['ReplicationJobNotFoundException', 400],
  FERRY_JOB_EXISTS: ['ReplicationJobAlreadyExistsException', 400],
  FERRY_SERVER_NOT_REPLICABLE: ['ServerCannotBeReplicatedException', 400],
  FERRY_NO_CONNECTORS: ['NoConnectorsAvailableException', 400],
  FERRY_RUN_LIMIT_EXCEEDED: ['ReplicationRunLimitExceededException', 400],
  FERRY_DATABASE_CONFLICT: ['OperationNotPermittedException', 400],
  FERRY_API_UNKNOWN_OPERATION: ['UnknownOperationException', 400],
  FERRY_API_SERIALIZATION: ['SerializationException', 400],
  FERRY_AUTH_MISSING: ['MissingAuthenticationTokenException', 403],
  FERRY_AUTH_INCOMPLETE: ['IncompleteSignatureException', 400],
  FERRY_AUTH_UNKNOWN_KEY: ['UnrecognizedClientException', 403],
  FERRY_AUTH_SIGNATURE_MISMATCH: ['InvalidSignatureException', 403],
  FERRY_AUTH_EXPIRED: ['RequestExpired', 400],
  FERRY_AUTH_REPLAYED: ['InvalidSignatureException', 403],
  FERRY_DATABASE_UNAVAILABLE: ['TemporarilyUnavailableException', 503],
  FERRY_IO_ERROR: ['TemporarilyUnavailableException', 503],
};

/** Codes whose message is safe to show callers; anything else gets a generic text. */
const INTERNAL = new Set(['FERRY_INTERNAL']);

export function toWireError(err: unknown): { wire: WireError; error: FerryError } {
  const fe = toFerryError(err);
  const mapped = BY_CODE[fe.code];
  if (mapped) return { wire: { type: mapped[0], status: mapped[1], message: fe.message }, error: fe };
  if (fe.kind === 'invalid-argument') {
    return { wire: { type: 'InvalidParameterException', status: 400, message: fe.message }, error: fe };
  }
  if (
    fe.kind === 'not-found' ||
    fe.kind === 'unsupported' ||
    fe.kind === 'corrupt' ||
    fe.kind === 'too-large'
  ) {
    return { wire: { type: 'InvalidParameterException', status: 400, message: fe.message }, error: fe };
  }
  if (fe.kind === 'refused') {
    return { wire: { type: 'OperationNotPermittedException', status: 400, message: fe.message }, error: fe };
  }
  // Internal errors never echo their message (it may name files or SQL); the log has it.
  const message = INTERNAL.has(fe.code)
    ? 'An internal error occurred; the server log has the details.'
    : fe.message;
  return { wire: { type: 'InternalError', status: 500, message }, error: fe };
}
