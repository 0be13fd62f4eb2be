/**
 * The error registry: every code Ferry can return, in this file and its area files
 * (codes-store.ts, codes-sources.ts, codes-launch.ts), all exported by index.ts. docs/errors.md documents
 * each one (a test keeps the two in sync). Codes are stable: never rename or reuse one.
 *
 * Disk input failures use one code per *kind* (unsupported / corrupt / too large) and say
 * which format, field and value in `details`, so callers match on a handful of codes.
 */
import { defineError } from './ferry-error.js';

// ── Disk images: the three input kinds ──────────────────────────────────────────────
export const ImageUnsupportedError = defineError(
  'FERRY_IMAGE_UNSUPPORTED',
  'unsupported',
  false,
  'The image is valid but uses a feature Ferry does not handle (encryption, unknown feature bits, …).',
);
export const ImageCorruptError = defineError(
  'FERRY_IMAGE_CORRUPT',
  'corrupt',
  false,
  'The image violates its format specification.',
);
export const ImageTooLargeError = defineError(
  'FERRY_IMAGE_TOO_LARGE',
  'too-large',
  false,
  'A size, count or table in the image exceeds a documented limit.',
);
export const ImageTruncatedError = defineError(
  'FERRY_IMAGE_TRUNCATED',
  'corrupt',
  false,
  'The image refers to bytes beyond the end of its file.',
);
export const DecompressionError = defineError(
  'FERRY_IMAGE_DECOMPRESSION_FAILED',
  'corrupt',
  false,
  'A compressed block of the image does not decompress to the expected size.',
);
export const FormatMismatchError = defineError(
  'FERRY_IMAGE_FORMAT_MISMATCH',
  'invalid-argument',
  false,
  'The image content is not of the format the caller named.',
);

// ── References between files (backing files, extents, parents) ─────────────────────
export const ReferenceRefusedError = defineError(
  'FERRY_REFERENCE_REFUSED',
  'refused',
  false,
  'The image refers to a file outside its own directory (absolute path, "..", URL or json:) and no allow option was given.',
);
export const ReferenceNotFoundError = defineError(
  'FERRY_REFERENCE_NOT_FOUND',
  'not-found',
  false,
  'A file the image refers to (backing file, extent, parent) does not exist.',
);
export const ChainLoopError = defineError(
  'FERRY_CHAIN_LOOP',
  'corrupt',
  false,
  'The backing/parent chain refers back to an image already in the chain.',
);
export const ChainTooDeepError = defineError(
  'FERRY_CHAIN_TOO_DEEP',
  'too-large',
  false,
  'The backing/parent chain is deeper than the documented limit.',
);
export const ChainMismatchError = defineError(
  'FERRY_CHAIN_MISMATCH',
  'corrupt',
  false,
  'A parent image does not match the identity its child recorded (VMDK parentCID, VHD/VHDX parent id).',
);

// ── Files, output and arguments ─────────────────────────────────────────────────────
export const FileNotFoundError = defineError(
  'FERRY_FILE_NOT_FOUND',
  'not-found',
  false,
  'The file the user named does not exist or is not a regular file.',
);
export const IoError = defineError(
  'FERRY_IO_ERROR',
  'io',
  true,
  'The operating system reported an I/O error.',
);
export const OutputExistsError = defineError(
  'FERRY_OUTPUT_EXISTS',
  'invalid-argument',
  false,
  'The output file already exists (pass --force to overwrite).',
);
export const OutputTooLargeError = defineError(
  'FERRY_OUTPUT_TOO_LARGE',
  'too-large',
  false,
  'The disk is larger than the output format can hold.',
);
export const SinkNotSeekableError = defineError(
  'FERRY_OUTPUT_NOT_SEEKABLE',
  'unsupported',
  false,
  'The output format must be written to a seekable file, not a pipe.',
);
export const InvalidArgumentError = defineError(
  'FERRY_INVALID_ARGUMENT',
  'invalid-argument',
  false,
  'A command-line option or API argument is missing or invalid.',
);
export const AbortedError = defineError('FERRY_ABORTED', 'aborted', false, 'The operation was cancelled.');
export const InternalError = defineError(
  'FERRY_INTERNAL',
  'internal',
  false,
  'An unexpected internal error; please report it with the command that caused it.',
);

// ── Control plane: database, domain, API edge ───────────────────────────────────────
// src/api maps these to SMS `__type` names; nothing below the API knows those names.
export const DatabaseUnavailableError = defineError(
  'FERRY_DATABASE_UNAVAILABLE',
  'io',
  true,
  'The database cannot be reached (connection refused, timed out or closed).',
);
export const DatabaseConflictError = defineError(
  'FERRY_DATABASE_CONFLICT',
  'refused',
  false,
  'A write conflicts with a row that already exists (duplicate key).',
);
export const DatabaseSchemaTooNewError = defineError(
  'FERRY_DATABASE_SCHEMA_TOO_NEW',
  'unsupported',
  false,
  'The database was migrated by a newer Ferry than this one; upgrade Ferry.',
);
export const ParameterMissingError = defineError(
  'FERRY_PARAMETER_MISSING',
  'invalid-argument',
  false,
  'A required request parameter is absent.',
);
export const NotFoundError = defineError(
  'FERRY_NOT_FOUND',
  'not-found',
  false,
  'The named resource (server, connector, application, run, key) does not exist.',
);
export const JobNotFoundError = defineError(
  'FERRY_JOB_NOT_FOUND',
  'not-found',
  false,
  'No replication job has the given id (or it was deleted).',
);
export const JobExistsError = defineError(
  'FERRY_JOB_EXISTS',
  'refused',
  false,
  'The server already has a replication job; delete it before creating another.',
);
export const ServerNotReplicableError = defineError(
  'FERRY_SERVER_NOT_REPLICABLE',
  'refused',
  false,
  'The server cannot be replicated (unknown to the catalog, no disks, or its connector is gone).',
);
export const NoConnectorsError = defineError(
  'FERRY_NO_CONNECTORS',
  'refused',
  false,
  'No healthy connector can serve the request.',
);
export const RunLimitExceededError = defineError(
  'FERRY_RUN_LIMIT_EXCEEDED',
  'refused',
  false,
  'The job has used its on-demand replication runs for the last 24 hours.',
);
export const OperationNotPermittedError = defineError(
  'FERRY_OPERATION_NOT_PERMITTED',
  'refused',
  false,
  'The operation is not allowed in the current state of the resource.',
);
export const UnknownOperationError = defineError(
  'FERRY_API_UNKNOWN_OPERATION',
  'invalid-argument',
  false,
  'The request names no operation, or one the API does not have (X-Amz-Target).',
);
export const SerializationError = defineError(
  'FERRY_API_SERIALIZATION',
  'invalid-argument',
  false,
  'The request body is not valid JSON, or a member has the wrong JSON type.',
);
export const AuthMissingError = defineError(
  'FERRY_AUTH_MISSING',
  'refused',
  false,
  'The request is not signed (no Authorization header).',
);
export const AuthIncompleteError = defineError(
  'FERRY_AUTH_INCOMPLETE',
  'refused',
  false,
  'The Authorization header or the signed headers are malformed or incomplete.',
);
export const AuthUnknownKeyError = defineError(
  'FERRY_AUTH_UNKNOWN_KEY',
  'refused',
  false,
  'The access key id is unknown or revoked, or its session token does not match.',
);
export const AuthSignatureMismatchError = defineError(
  'FERRY_AUTH_SIGNATURE_MISMATCH',
  'refused',
  false,
  'The request signature does not match the one computed with the secret key.',
);
export const AuthExpiredError = defineError(
  'FERRY_AUTH_EXPIRED',
  'refused',
  false,
  'The request time is outside the allowed clock-skew window, or its temporary key expired.',
);
export const AuthReplayedError = defineError(
  'FERRY_AUTH_REPLAYED',
  'refused',
  false,
  'The same signed request was already accepted; a replayed signature is refused.',
);

// ── API clients (`ferry servers|jobs|runs`): what went wrong on the way to the server ──
export const ApiUnreachableError = defineError(
  'FERRY_API_UNREACHABLE',
  'io',
  true,
  'The server at the endpoint cannot be reached (connection refused or reset, timed out, host not found).',
);
export const ApiTlsUntrustedError = defineError(
  'FERRY_API_TLS_UNTRUSTED',
  'refused',
  false,
  "The server's TLS certificate is not trusted (pass --ca-bundle DATA_DIR/tls/ca.pem) or does not name the endpoint's host, or the endpoint's scheme is wrong.",
);
export const ApiServerError = defineError(
  'FERRY_API_SERVER_ERROR',
  'io',
  true,
  'The server answered with an internal error, was temporarily unavailable, or sent an answer the client cannot read; its log has details.',
);
export const RunFailedError = defineError(
  'FERRY_RUN_FAILED',
  'io',
  true,
  'The watched replication run ended FAILED, MISSED or DELETED; the message is its status message, whose own code (details.runCode) says why.',
);
export const WatchTimeoutError = defineError(
  'FERRY_WATCH_TIMEOUT',
  'aborted',
  true,
  '`ferry runs --watch --timeout` gave up before the run finished; the run goes on on the server.',
);
