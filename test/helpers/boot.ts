/**
 * Where the shared boot tools are (make-bootable.sh, set-marker.sh, boot-check.sh):
 * FERRY_BOOT_TOOLS, else ../shared/tools/boot next to the repository (the layout the
 * development and CI machines have), else the workplace's /work/shared. A missing directory
 * is a clear failure, never a skip.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;

function locate(): string {
  const candidates = [
    process.env.FERRY_BOOT_TOOLS,
    resolve(ROOT, '..', 'shared', 'tools', 'boot'),
    // The workplace's checkout of the shared tools, for a clone made elsewhere (CI clones).
    '/work/shared/tools/boot',
  ];
  for (const c of candidates) if (c && existsSync(resolve(c, 'make-bootable.sh'))) return c;
  throw new Error(
    `the shared boot tools are missing (looked in ${candidates.filter(Boolean).join(', ')}); set FERRY_BOOT_TOOLS`,
  );
}

/** The boot tools' directory (resolved on first use). */
export function bootTools(): string {
  return locate();
}
