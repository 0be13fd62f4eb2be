/**
 * The reference policy: how a name stored inside an image (qcow2 backing file, VMDK
 * extent or parentFileNameHint, VHD/VHDX parent locator) becomes a file to open.
 *
 * By default a reference resolves only inside the directory of the image the user named
 * (the "root"): absolute paths, ".." segments and symlinks that lead outside are refused,
 * and so are protocol references (`json:`, `nbd:`, `http://`, …) always, because opening
 * them would let an image make Ferry read or connect anywhere. `allowExternal` lifts the
 * directory rule (not the protocol rule) for users who trust the image.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { ImageCorruptError, ReferenceNotFoundError, ReferenceRefusedError } from '../../errors/index.js';

export interface ReferencePolicy {
  /** Allow absolute paths and ".." (still never protocols). Default false. */
  readonly allowExternal?: boolean;
}

const MAX_REFERENCE_LENGTH = 4096; // PATH_MAX on Linux; longer names cannot be opened anyway
const PROTOCOL = /^[a-z][a-z0-9+.-]*:/i;
const WINDOWS_DRIVE = /^[a-z]:[\\/]/i;

/**
 * Pure part of the policy: validates a stored name and returns it as a relative POSIX
 * path (or an absolute one when allowed). Exported for unit tests.
 */
export function normalizeReference(name: string, policy: ReferencePolicy = {}): string {
  if (name.length === 0) throw new ImageCorruptError('empty file reference in image', { reference: name });
  if (name.length > MAX_REFERENCE_LENGTH || name.includes('\0')) {
    throw new ImageCorruptError('file reference too long or contains NUL', { length: name.length });
  }
  // Windows-style separators come from VHD/VHDX locators and Windows-made VMDKs.
  const unified = name.replace(/\\/g, '/');
  if (WINDOWS_DRIVE.test(unified) || unified.startsWith('//')) {
    if (!policy.allowExternal) refuse(name, 'absolute Windows path');
    // A Windows absolute path cannot name a file on this machine even when allowed.
    throw new ReferenceNotFoundError(`referenced file ${JSON.stringify(name)} is a Windows path`, {
      reference: name,
    });
  }
  if (PROTOCOL.test(unified)) refuse(name, 'protocol or json: reference');
  if (isAbsolute(unified) && !policy.allowExternal) refuse(name, 'absolute path');
  const segments = unified.split('/');
  if (segments.includes('..') && !policy.allowExternal) refuse(name, '".." segment');
  return unified;
}

function refuse(name: string, why: string): never {
  throw new ReferenceRefusedError(
    `refusing reference ${JSON.stringify(name)} (${why}): it points outside the image's directory; ` +
      'pass --allow-external-references to allow it',
    { reference: name, reason: why },
  );
}

export class FileResolver {
  readonly #root: string;
  readonly #policy: ReferencePolicy;

  /** `root` is the directory of the image the user named (already realpath'ed). */
  private constructor(root: string, policy: ReferencePolicy) {
    this.#root = root;
    this.#policy = policy;
  }

  static async forImage(imagePath: string, policy: ReferencePolicy = {}): Promise<FileResolver> {
    return new FileResolver(await realpath(dirname(imagePath)), policy);
  }

  /**
   * Resolves `name` stored in the file at `fromPath` to an absolute real path, enforcing
   * the policy. Relative names resolve against the referring file's directory.
   */
  async resolve(name: string, fromPath: string): Promise<string> {
    const rel = normalizeReference(name, this.#policy);
    const candidate = isAbsolute(rel) ? rel : join(dirname(fromPath), rel);
    let real: string;
    try {
      real = await realpath(candidate);
      if (!(await stat(real)).isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
    } catch {
      throw new ReferenceNotFoundError(`referenced file ${JSON.stringify(name)} not found`, {
        reference: name,
      });
    }
    if (!this.#policy.allowExternal && !isInside(this.#root, real)) {
      refuse(name, 'resolves (through a symlink) outside the image directory');
    }
    return real;
  }
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel);
}
