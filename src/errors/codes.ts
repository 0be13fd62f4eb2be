/**
 * The error registry: every code Ferry can return, in one place. docs/errors.md documents
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

// ── Image store ─────────────────────────────────────────────────────────────────────
export const StoreNotFoundError = defineError(
  'FERRY_STORE_NOT_FOUND',
  'not-found',
  false,
  'There is no image-store repository at the location given (no config object).',
);
export const StoreExistsError = defineError(
  'FERRY_STORE_EXISTS',
  'invalid-argument',
  false,
  'A repository (or other data) already exists where `store init` was asked to create one.',
);
export const StoreKeyRequiredError = defineError(
  'FERRY_STORE_KEY_REQUIRED',
  'invalid-argument',
  false,
  'No master key was given (key file, FERRY_STORE_KEY, or a passphrase).',
);
export const StoreWrongKeyError = defineError(
  'FERRY_STORE_WRONG_KEY',
  'refused',
  false,
  'The master key given opens none of the repository key slots.',
);
export const StoreUnsupportedError = defineError(
  'FERRY_STORE_UNSUPPORTED',
  'unsupported',
  false,
  'The repository uses a version, codec or key kind this Ferry does not handle.',
);
export const StoreCorruptError = defineError(
  'FERRY_STORE_CORRUPT',
  'corrupt',
  false,
  'A repository object fails authentication or violates the store format (flipped bits, bad header).',
);
export const StoreTruncatedError = defineError(
  'FERRY_STORE_TRUNCATED',
  'corrupt',
  false,
  'A repository object is shorter than its header or the index says (truncated pack).',
);
export const StoreMissingChunkError = defineError(
  'FERRY_STORE_MISSING_CHUNK',
  'corrupt',
  false,
  'An image refers to a chunk, pack or index entry that the repository does not have.',
);
export const StoreTooLargeError = defineError(
  'FERRY_STORE_TOO_LARGE',
  'too-large',
  false,
  'A size or count in a repository object exceeds a documented store limit.',
);
export const StoreImageNotFoundError = defineError(
  'FERRY_STORE_IMAGE_NOT_FOUND',
  'not-found',
  false,
  'No committed image with that id exists in the repository.',
);
export const StoreLockedError = defineError(
  'FERRY_STORE_LOCKED',
  'refused',
  true,
  'Another live process holds a conflicting repository lock (a GC, or a write of the same image).',
);
export const StoreLockLostError = defineError(
  'FERRY_STORE_LOCK_LOST',
  'io',
  true,
  'The lock of a long operation could not be refreshed in time; it stopped before committing.',
);
export const StoreChecksumMismatchError = defineError(
  'FERRY_STORE_CHECKSUM_MISMATCH',
  'corrupt',
  false,
  'The content read back from an image differs from the checksum recorded when it was written.',
);
export const StoreResumeMismatchError = defineError(
  'FERRY_STORE_RESUME_MISMATCH',
  'invalid-argument',
  false,
  'The disks given to resume an interrupted write differ from those it was started with.',
);
export const StoreCheckFailedError = defineError(
  'FERRY_STORE_CHECK_FAILED',
  'corrupt',
  false,
  '`ferry store check` found errors in the repository (listed in its report).',
);

// ── Hypervisor protocols: QMP (control) and NBD (data) for live KVM/QEMU sources ─────
export const QmpCommandFailedError = defineError(
  'FERRY_QMP_COMMAND_FAILED',
  'refused',
  false,
  'QEMU answered a QMP command with an error (its class and description are in the details).',
);
export const QmpProtocolError = defineError(
  'FERRY_QMP_PROTOCOL_ERROR',
  'corrupt',
  false,
  'The QMP peer sent something that is not QMP (no greeting, bad JSON, a reply to no command).',
);
export const QmpMessageTooLargeError = defineError(
  'FERRY_QMP_MESSAGE_TOO_LARGE',
  'too-large',
  false,
  'A QMP message exceeds the documented size cap; the connection is closed.',
);
export const QmpDisconnectedError = defineError(
  'FERRY_QMP_DISCONNECTED',
  'io',
  true,
  'The QMP socket could not be reached, or closed before the command was answered.',
);
export const QmpTimeoutError = defineError(
  'FERRY_QMP_TIMEOUT',
  'io',
  true,
  'QEMU did not answer a QMP command (or send an awaited event) in time.',
);
export const NbdProtocolError = defineError(
  'FERRY_NBD_PROTOCOL_ERROR',
  'corrupt',
  false,
  'The NBD server sent something the protocol forbids (bad magic, unknown cookie, a chunk outside the request).',
);
export const NbdTooLargeError = defineError(
  'FERRY_NBD_TOO_LARGE',
  'too-large',
  false,
  'A length or count sent by the NBD server exceeds a documented cap.',
);
export const NbdUnsupportedError = defineError(
  'FERRY_NBD_UNSUPPORTED',
  'unsupported',
  false,
  'The NBD server lacks a feature Ferry needs (fixed newstyle, NBD_OPT_GO, structured replies, a metadata context, or it requires TLS).',
);
export const NbdExportNotFoundError = defineError(
  'FERRY_NBD_EXPORT_NOT_FOUND',
  'not-found',
  false,
  'The NBD server has no export with the requested name.',
);
export const NbdOptionRefusedError = defineError(
  'FERRY_NBD_OPTION_REFUSED',
  'refused',
  false,
  'The NBD server refused a handshake option (policy, invalid, shutting down, …).',
);
export const NbdRequestFailedError = defineError(
  'FERRY_NBD_REQUEST_FAILED',
  'io',
  true,
  'The NBD server answered a read or block-status request with an error (its errno is in the details).',
);
export const NbdDisconnectedError = defineError(
  'FERRY_NBD_DISCONNECTED',
  'io',
  true,
  'The NBD server could not be reached, or closed the connection with requests in flight.',
);
export const NbdTimeoutError = defineError(
  'FERRY_NBD_TIMEOUT',
  'io',
  true,
  'The NBD server did not complete the handshake or answer a request in time.',
);

// ── Launch: images served over NBD, instances run by QEMU on a launch host ──────────
export const NbdClientRejectedError = defineError(
  'FERRY_NBD_CLIENT_REJECTED',
  'refused',
  false,
  "An NBD client broke the protocol or one of the server's limits (bad magic, oversized option or request, too many connections, handshake too slow); its connection was closed.",
);
export const LaunchFailedError = defineError(
  'FERRY_LAUNCH_FAILED',
  'io',
  false,
  'QEMU (or qemu-img) refused to start the instance or exited while it was starting; its messages are in the details. Nothing of the instance is left behind.',
);
export const LaunchToolMissingError = defineError(
  'FERRY_LAUNCH_TOOL_MISSING',
  'unsupported',
  false,
  'The launch host lacks a program an instance needs (qemu-system-x86_64, qemu-img).',
);
export const LaunchFirmwareMissingError = defineError(
  'FERRY_LAUNCH_FIRMWARE_MISSING',
  'unsupported',
  false,
  'UEFI firmware was asked for but no OVMF image was found on the launch host (install ovmf, or give its path).',
);
export const LaunchDirInUseError = defineError(
  'FERRY_LAUNCH_DIR_IN_USE',
  'refused',
  false,
  'The instance directory already holds an instance (its overlay or sockets exist).',
);
export const LaunchCapacityError = defineError(
  'FERRY_LAUNCH_CAPACITY',
  'refused',
  false,
  'The instance type asks for more memory than the launch host has.',
);
export const InstanceTypeInvalidError = defineError(
  'FERRY_LAUNCH_INSTANCE_TYPE_INVALID',
  'invalid-argument',
  false,
  'The instance type is neither a known name (t3.micro, m5.large, …) nor custom:<vCPUs>x<MiB> within the documented bounds.',
);
