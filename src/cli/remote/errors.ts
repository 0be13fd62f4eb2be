/**
 * What the SDK throws → Ferry's coded errors, so a client command fails like every other
 * command (one coded line, an exit code by kind). The server turned its codes into SMS
 * `__type` names (src/api/errors.ts); this is the inverse where it is one-to-one, and the
 * closest code where several codes share one name.
 */
import {
  ApiServerError,
  ApiTlsUntrustedError,
  ApiUnreachableError,
  AuthExpiredError,
  AuthIncompleteError,
  AuthMissingError,
  AuthSignatureMismatchError,
  AuthUnknownKeyError,
  FerryError,
  InvalidArgumentError,
  JobExistsError,
  JobNotFoundError,
  NoConnectorsError,
  OperationNotPermittedError,
  ParameterMissingError,
  RunLimitExceededError,
  SerializationError,
  ServerNotReplicableError,
  UnknownOperationError,
  type FerryErrorClass,
} from '../../errors/index.js';

const BY_TYPE: Readonly<Record<string, FerryErrorClass>> = {
  InvalidParameterException: InvalidArgumentError,
  MissingRequiredParameterException: ParameterMissingError,
  OperationNotPermittedException: OperationNotPermittedError,
  ReplicationJobNotFoundException: JobNotFoundError,
  ReplicationJobAlreadyExistsException: JobExistsError,
  ServerCannotBeReplicatedException: ServerNotReplicableError,
  NoConnectorsAvailableException: NoConnectorsError,
  ReplicationRunLimitExceededException: RunLimitExceededError,
  UnknownOperationException: UnknownOperationError,
  SerializationException: SerializationError,
  MissingAuthenticationTokenException: AuthMissingError,
  IncompleteSignatureException: AuthIncompleteError,
  UnrecognizedClientException: AuthUnknownKeyError,
  InvalidSignatureException: AuthSignatureMismatchError,
  RequestExpired: AuthExpiredError,
};

/** Node / OpenSSL codes of a TLS handshake the client refused. */
const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** Codes of a server that could not be reached, or went away mid-request. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

interface SdkError {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: number };
}

export function fromSdkError(err: unknown, endpoint: string): FerryError {
  if (FerryError.is(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkError;
  const name = typeof e.name === 'string' ? e.name : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  const code = typeof e.code === 'string' ? e.code : '';
  const status = e.$metadata?.httpStatusCode;
  const details = { endpoint, ...(status !== undefined ? { httpStatus: status } : {}) };
  const mapped = BY_TYPE[name];
  if (mapped && status !== undefined) return new mapped(message, details, { cause: err });
  if (TLS_CODES.has(code) || /certificate|self[- ]signed|wrong version number/i.test(message)) {
    return new ApiTlsUntrustedError(
      `TLS with ${endpoint} failed: ${message} (a Ferry server with its own CA needs --ca-bundle DATA_DIR/tls/ca.pem; ` +
        'a server started with --insecure-http needs an http:// endpoint)',
      { ...details, errno: code || undefined },
      { cause: err },
    );
  }
  if (NETWORK_CODES.has(code) || name === 'TimeoutError' || /socket hang up/i.test(message)) {
    return new ApiUnreachableError(
      `cannot reach ${endpoint}: ${code || name}${message && message !== code ? ` (${message})` : ''}`,
      { ...details, errno: code || name },
      { cause: err },
    );
  }
  if (status !== undefined && status >= 400 && status < 500 && e.$fault === 'client') {
    return new InvalidArgumentError(`${name || `HTTP ${status}`}: ${message}`, details, { cause: err });
  }
  return new ApiServerError(
    `${endpoint} answered ${name || (status !== undefined ? `HTTP ${status}` : 'something unexpected')}: ${message}`,
    details,
    { cause: err },
  );
}
