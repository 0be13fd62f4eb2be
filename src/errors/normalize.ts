/**
 * Turns anything thrown into a FerryError, so the CLI and API edges never print a stack
 * trace. Node system errors become FERRY_IO_ERROR (or FERRY_FILE_NOT_FOUND for ENOENT);
 * everything else is FERRY_INTERNAL with the original kept as `cause` for logs.
 */
import { FerryError } from './ferry-error.js';
import { FileNotFoundError, InternalError, IoError } from './codes.js';

export function toFerryError(err: unknown): FerryError {
  if (FerryError.is(err)) return err;
  if (err instanceof RangeError && /allocation|Array buffer|Invalid typed array length/i.test(err.message)) {
    return new InternalError(`out of memory: ${err.message}`, {}, { cause: err });
  }
  const sys = err as NodeJS.ErrnoException | undefined;
  if (sys && typeof sys === 'object' && typeof sys.code === 'string') {
    const path = typeof sys.path === 'string' ? sys.path : undefined;
    if (sys.code === 'ENOENT' || sys.code === 'ENOTDIR') {
      return new FileNotFoundError(
        `no such file: ${path ?? '(unknown)'}`,
        { path, errno: sys.code },
        { cause: err },
      );
    }
    return new IoError(`${sys.code}: ${sys.message}`, { path, errno: sys.code }, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, {}, { cause: err });
}
