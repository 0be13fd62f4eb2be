/** Error codes of the image store (src/store); part of the one registry (codes.ts). */
import { defineError } from './ferry-error.js';

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
