/** Error codes of launching and the app lifecycle (src/launch, src/control); part of the one registry (codes.ts). */
import { defineError } from './ferry-error.js';

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
export const LaunchHostUnavailableError = defineError(
  'FERRY_LAUNCH_HOST_UNAVAILABLE',
  'io',
  true,
  'The launch host the launch was placed on is not connected to the server now (its `ferry host` process is down or cannot reach the server); retry when it is back, or place the server elsewhere.',
);
export const InstanceTypeInvalidError = defineError(
  'FERRY_LAUNCH_INSTANCE_TYPE_INVALID',
  'invalid-argument',
  false,
  'The instance type is neither a known name (t3.micro, m5.large, …) nor custom:<vCPUs>x<MiB> within the documented bounds.',
);
export const LifecycleTransitionError = defineError(
  'FERRY_LIFECYCLE_TRANSITION',
  'refused',
  false,
  "The application's migration lifecycle state does not allow this action (docs/launch.md, Lifecycle).",
);
export const LifecycleFailedError = defineError(
  'FERRY_LIFECYCLE_FAILED',
  'io',
  true,
  'A test or cutover did not complete (its final replication run or its launch failed or timed out); the app went back to the state before it.',
);
export const InstanceStateError = defineError(
  'FERRY_INSTANCE_STATE',
  'refused',
  false,
  'The instance is not in a state that allows this (start needs a stopped instance; a terminated one is gone).',
);
