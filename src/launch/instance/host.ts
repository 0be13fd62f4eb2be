/**
 * What the launch host offers: the QEMU programs, KVM, OVMF (UEFI firmware) and memory.
 * Looked up at each launch (cheap: a few stat calls) so installing a package needs no
 * restart.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { delimiter, join } from 'node:path';
import { LaunchFirmwareMissingError, LaunchToolMissingError } from '../../errors/index.js';

export type Accelerator = 'kvm' | 'tcg';

export interface OvmfPaths {
  /** Read-only firmware code (pflash unit 0). */
  readonly code: string;
  /** Template of the UEFI variable store; each instance gets its own copy (pflash unit 1). */
  readonly vars: string;
}

/**
 * Where distributions install OVMF (code, vars template), most specific first: the 4 MiB
 * builds (Debian ≥ 11, Ubuntu ≥ 20.04, Arch) before the legacy 2 MiB ones.
 */
export const OVMF_CANDIDATES: readonly OvmfPaths[] = [
  { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd' },
  { code: '/usr/share/edk2/ovmf/OVMF_CODE.fd', vars: '/usr/share/edk2/ovmf/OVMF_VARS.fd' },
  { code: '/usr/share/edk2/x64/OVMF_CODE.4m.fd', vars: '/usr/share/edk2/x64/OVMF_VARS.4m.fd' },
  { code: '/usr/share/edk2-ovmf/x64/OVMF_CODE.fd', vars: '/usr/share/edk2-ovmf/x64/OVMF_VARS.fd' },
  { code: '/usr/share/qemu/ovmf-x86_64-code.bin', vars: '/usr/share/qemu/ovmf-x86_64-vars.bin' },
];

async function usable(path: string, mode: number): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** KVM when /dev/kvm can be opened read-write by this user; TCG (emulation) otherwise. */
export async function detectAccelerator(): Promise<Accelerator> {
  return (await usable('/dev/kvm', constants.R_OK | constants.W_OK)) ? 'kvm' : 'tcg';
}

/** The absolute path of a program: `explicit` if given (must be executable), else from PATH. */
export async function findProgram(name: string, explicit?: string): Promise<string> {
  const candidates = explicit
    ? [explicit]
    : (process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin')
        .split(delimiter)
        .filter((d) => d !== '')
        .map((d) => join(d, name));
  for (const c of candidates) if (await usable(c, constants.X_OK)) return c;
  throw new LaunchToolMissingError(`${explicit ?? name} is not installed (or not executable) on this host`, {
    program: explicit ?? name,
  });
}

/** OVMF code + vars: the given pair if both exist, else the first installed candidate. */
export async function findOvmf(explicit?: OvmfPaths): Promise<OvmfPaths> {
  for (const c of explicit ? [explicit] : OVMF_CANDIDATES) {
    if ((await usable(c.code, constants.R_OK)) && (await usable(c.vars, constants.R_OK))) return c;
  }
  throw new LaunchFirmwareMissingError(
    explicit
      ? `OVMF firmware not found at ${explicit.code} / ${explicit.vars}`
      : 'UEFI needs OVMF firmware; none is installed (apt-get install ovmf, dnf install edk2-ovmf)',
    explicit ? { code: explicit.code, vars: explicit.vars } : {},
  );
}

/** The host's physical memory in MiB. */
export function hostMemoryMiB(): number {
  return Math.floor(totalmem() / (1024 * 1024));
}
