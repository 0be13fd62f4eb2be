/** Error codes of live sources' protocols (src/connectors/kvm); part of the one registry (codes.ts). */
import { defineError } from './ferry-error.js';

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

// ── The remote connector link (src/connectors/link, docs/connector-protocol.md) ───────
export const LinkProtocolError = defineError(
  'FERRY_LINK_PROTOCOL_ERROR',
  'corrupt',
  false,
  'The other end of a connector link sent something that is not the link protocol (bad frame, bad JSON, an answer to no call); the link is closed.',
);
export const LinkMessageTooLargeError = defineError(
  'FERRY_LINK_MESSAGE_TOO_LARGE',
  'too-large',
  false,
  'A connector link frame exceeds the documented size caps; the link is closed.',
);
export const LinkDownError = defineError(
  'FERRY_LINK_DOWN',
  'io',
  true,
  'The connector is not connected, or its link dropped with calls in flight (they are retried when it reconnects).',
);
export const LinkTimeoutError = defineError(
  'FERRY_LINK_TIMEOUT',
  'io',
  true,
  'The other end of a connector link did not answer a call in time.',
);
export const EnrolmentRefusedError = defineError(
  'FERRY_ENROLMENT_REFUSED',
  'refused',
  false,
  'An enrolment token is unknown, already used or expired, or a certificate was not issued by this server or was revoked (DisassociateConnector).',
);
