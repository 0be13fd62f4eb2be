/**
 * What the launch host offers: the QEMU programs, KVM, OVMF (UEFI firmware) and memory.
 * Looked up at each launch (cheap: a few stat calls) so installing a package needs no
 * restart.
 */
import { spawn } from 'node:child_process';
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

/**
 * KVM when /dev/kvm can be opened read-write by this user and is hardware KVM; TCG
 * (emulation) otherwise. A /dev/kvm from kvm_pvm alone (PVM, software virtualisation in
 * some cloud sandboxes) cannot run real-mode code, so BIOS guests never boot on it.
 */
export async function detectAccelerator(): Promise<Accelerator> {
  if (!(await usable('/dev/kvm', constants.R_OK | constants.W_OK))) return 'tcg';
  const loaded = async (m: string) => usable(`/sys/module/${m}`, constants.F_OK);
  if ((await loaded('kvm_pvm')) && !(await loaded('kvm_intel')) && !(await loaded('kvm_amd'))) return 'tcg';
  return 'kvm';
}

/** How long one CPU-model probe may take (QEMU starts paused in well under a second). */
const PROBE_MS = 10_000;
/** How long QEMU must stay up after its greeting for the CPU model to count as working. */
const SETTLE_MS = 1000;
const cpuModels = new Map<string, Promise<CpuChoice>>();

export interface CpuChoice {
  readonly accel: Accelerator;
  readonly cpu: string;
}

/** Whether QEMU starts (paused, no devices) with this accelerator and CPU model. */
function starts(qemu: string, accel: Accelerator, cpu: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(
      qemu,
      [
        '-machine',
        `pc,accel=${accel}`,
        '-cpu',
        cpu,
        '-nodefaults',
        '-display',
        'none',
        '-S',
        '-qmp',
        'stdio',
      ],
      { stdio: ['pipe', 'pipe', 'ignore'] },
    );
    let out = '';
    let settled = false;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), PROBE_MS);
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString('latin1');
      // The vCPUs are set up after the greeting: a refused CPU model aborts QEMU within
      // milliseconds of it, so one that is still up a moment later works.
      if (out.includes('"QMP"') && !settled) {
        settled = true;
        setTimeout(() => done(child.exitCode === null && child.signalCode === null), SETTLE_MS).unref();
      }
    });
    child.once('error', () => done(false));
    child.once('exit', () => {
      if (!settled) done(false);
    });
  });
}

/**
 * The accelerator and CPU model instances get, probed once per QEMU binary. `-cpu host`
 * under KVM is fastest, but nested hypervisors often refuse some host MSRs (QEMU aborts
 * with "failed to set MSR"); then KVM with QEMU's default model, then TCG with `max`.
 */
export function cpuModel(qemu: string): Promise<CpuChoice> {
  let p = cpuModels.get(qemu);
  if (!p) {
    p = (async (): Promise<CpuChoice> => {
      if ((await detectAccelerator()) === 'kvm') {
        if (await starts(qemu, 'kvm', 'host')) return { accel: 'kvm', cpu: 'host' };
        if (await starts(qemu, 'kvm', 'qemu64')) return { accel: 'kvm', cpu: 'qemu64' };
      }
      return { accel: 'tcg', cpu: 'max' };
    })();
    cpuModels.set(qemu, p);
  }
  return p;
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
