/**
 * Test helpers that run real QEMU processes for the KVM connector's protocol clients:
 * qemu-nbd serving an image on a unix socket, and a paused qemu-system-x86_64 with a QMP
 * socket. Callers stop them in `finally` (stop() kills with SIGKILL if SIGTERM is ignored).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';

export interface Proc {
  readonly proc: ChildProcess;
  /** stderr collected so far (for failure messages). */
  stderr(): string;
  stop(): Promise<void>;
}

function start(cmd: string, args: string[]): Proc {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => {
    if (err.length < 64 * 1024) err += d.toString();
  });
  proc.on('error', (e) => (err += String(e)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Waits until `path` exists (a server's listening socket), or fails with the process's stderr. */
export async function waitForPath(path: string, p: Proc, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await access(path);
      return;
    } catch {
      if (p.proc.exitCode !== null) throw new Error(`process exited before ${path} appeared: ${p.stderr()}`);
      if (Date.now() > deadline) throw new Error(`${path} did not appear in ${timeoutMs} ms: ${p.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** qemu-nbd serving `image` on a unix socket in `dir`; `extra` adds options (e.g. -B bitmap, -A). */
export async function startQemuNbd(
  dir: string,
  image: string,
  format: string,
  extra: string[] = [],
): Promise<Proc & { socket: string }> {
  const socket = join(dir, `nbd-${Math.random().toString(16).slice(2)}.sock`);
  const p = start('qemu-nbd', [
    `--socket=${socket}`,
    `--format=${format}`,
    '--persistent',
    '--shared=8',
    ...extra,
    image,
  ]);
  try {
    await waitForPath(socket, p);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return { ...p, socket };
}

/**
 * A paused VM (-S) with no devices but one virtio-blk disk (`-drive … node-name=disk0`),
 * TCG (no /dev/kvm here), and a QMP unix socket.
 */
export async function startPausedVm(dir: string, image: string): Promise<Proc & { qmp: string }> {
  const qmp = join(dir, 'qmp.sock');
  const p = start('qemu-system-x86_64', [
    '-nodefaults',
    '-display',
    'none',
    '-accel',
    'tcg',
    '-m',
    '128',
    '-name',
    'ferry-test-vm',
    '-uuid',
    '6f1c2b6e-9d2a-4c1e-9d55-0c7a1f3e2b10',
    '-qmp',
    `unix:${qmp},server=on,wait=off`,
    '-drive',
    `file=${image},format=qcow2,if=none,id=drive0,node-name=disk0`,
    '-device',
    'virtio-blk-pci,drive=drive0',
    '-S',
  ]);
  try {
    await waitForPath(qmp, p);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return { ...p, qmp };
}

export interface VmDrive {
  readonly file: string;
  readonly format: 'qcow2' | 'raw';
  /** `-drive node-name=`; QEMU names the node "#blockNNN" when absent. */
  readonly nodeName?: string;
}

/**
 * A VM started the way the KVM connector's documentation tells users to: a QMP socket
 * `<qmpDir>/<name>.qmp`, drives `drive0`, `drive1`, … on virtio-blk, and optionally a
 * CD-ROM drive and a virtio NIC. Paused (-S): TCG on 2 shared cores must not run a guest
 * that has nothing to boot; QMP, block jobs and HMP qemu-io work the same.
 */
export async function startVm(
  qmpDir: string,
  name: string,
  drives: readonly VmDrive[],
  options: { readonly uuid?: string; readonly cdrom?: boolean; readonly mac?: string } = {},
): Promise<Proc & { qmp: string }> {
  const qmp = join(qmpDir, `${name}.qmp`);
  const args = ['-name', name, '-no-shutdown', '-qmp', `unix:${qmp},server=on,wait=off`];
  drives.forEach((d, i) => {
    const node = d.nodeName ? `,node-name=${d.nodeName}` : '';
    args.push('-drive', `file=${d.file},format=${d.format},if=none,id=drive${i}${node}`);
    args.push('-device', `virtio-blk-pci,drive=drive${i}`);
  });
  if (options.cdrom) args.push('-drive', 'if=none,id=cd0', '-device', 'ide-cd,drive=cd0,bus=ide.0');
  if (options.mac) {
    args.push('-netdev', 'user,id=n0', '-device', `virtio-net-pci,netdev=n0,mac=${options.mac}`);
  }
  if (options.uuid) args.push('-uuid', options.uuid);
  args.push('-nodefaults', '-display', 'none', '-accel', 'tcg', '-m', '64', '-S');
  const p = start('qemu-system-x86_64', args);
  try {
    await waitForPath(qmp, p);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return { ...p, qmp };
}
