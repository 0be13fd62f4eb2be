/**
 * launchInstance: an image becomes a running instance without being copied.
 *
 *   1. validate the request, find qemu-system-x86_64, qemu-img, OVMF; check host memory;
 *   2. claim the instance directory (0700; refused if it holds an instance);
 *   3. serve the image disks over NBD on DIR/nbd.sock (exports disk0, disk1, …);
 *   4. create one qcow2 overlay per disk, backed by export diskN of DIR/nbd.sock (overlay.ts);
 *   5. spawn QEMU on the overlays; wait until it answers on QMP (its greeting comes from
 *      the main loop, i.e. after every drive was opened and the machine was built).
 *
 * Steps 1–4 cost milliseconds whatever the image size (nothing is read or copied; a test
 * launches a 2 TiB image). Any failure undoes what was done — QEMU killed, NBD server
 * stopped, files and (if created here) the directory removed, disks closed — and rejects
 * with a coded error (FERRY_LAUNCH_FAILED carries QEMU's stderr).
 */
import type { ChildProcess } from 'node:child_process';
import { chmod, copyFile, lstat, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  FerryError,
  FileNotFoundError,
  LaunchCapacityError,
  LaunchDirInUseError,
  toFerryError,
} from '../../errors/index.js';
import { NbdServer, type NbdServerEvent } from '../nbd-server/server.js';
import { ConsoleLog } from './console-log.js';
import { cpuModel, findOvmf, findProgram, hostMemoryMiB } from './host.js';
import { Instance, releaseResources, type InstanceResources } from './instance.js';
import { validateLaunch, type LaunchOptions } from './options.js';
import { createOverlay, nbdBacking } from './overlay.js';
import { qemuArgs } from './qemu-args.js';
import { startQemu } from './qemu-process.js';
import { buildSeed } from './seed.js';
import { MATERIALIZED_MARKER } from './materialize.js';

export interface LaunchInstanceOptions extends LaunchOptions {
  /** NBD server events (a client rejected, a disk read failed: the guest saw EIO). */
  readonly onNbdEvent?: (event: NbdServerEvent) => void;
}

/** Names of everything an instance keeps in its directory (presence = directory in use). */
export function instanceFiles(dir: string, disks: number) {
  return {
    overlays: Array.from({ length: disks }, (_, i) => join(dir, `overlay-${i}.qcow2`)),
    nbdSocket: join(dir, 'nbd.sock'),
    qmpSocket: join(dir, 'qmp.sock'),
    pidFile: join(dir, 'qemu.pid'),
    consoleLog: join(dir, 'console.log'),
    efiVars: join(dir, 'efivars.fd'),
    seed: join(dir, 'seed.iso'),
    materialized: join(dir, MATERIALIZED_MARKER),
    qemuLog: join(dir, 'qemu.log'),
    qemuArgs: join(dir, 'qemu.json'),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

export async function launchInstance(options: LaunchInstanceOptions): Promise<Instance> {
  const started = performance.now();
  let req;
  try {
    req = validateLaunch(options);
  } catch (err) {
    await closeAll(Array.isArray(options.disk) ? options.disk : [options.disk]);
    throw err;
  }
  const f = instanceFiles(req.dir, req.disks.length);
  const res: InstanceResources = { dir: req.dir, createdDir: false, files: [], disks: req.disks };
  let child: ChildProcess | undefined;
  try {
    const [qemu, qemuImg, ovmf] = await Promise.all([
      findProgram('qemu-system-x86_64', options.qemuBinary),
      findProgram('qemu-img', options.qemuImgBinary),
      req.firmware === 'uefi' ? findOvmf(options.ovmf) : Promise.resolve(undefined),
    ]);
    const { accel, cpu } = await cpuModel(qemu);
    if (req.type.memoryMiB > hostMemoryMiB()) {
      throw new LaunchCapacityError(
        `instance type ${req.type.name} needs ${req.type.memoryMiB} MiB; this host has ${hostMemoryMiB()} MiB`,
        { type: req.type.name, memoryMiB: req.type.memoryMiB, hostMiB: hostMemoryMiB() },
      );
    }
    if (req.seedIso && !(await stat(req.seedIso).catch(() => undefined))?.isFile()) {
      throw new FileNotFoundError(`seed ISO ${req.seedIso} is not a file`, { path: req.seedIso });
    }

    res.createdDir = (await mkdir(req.dir, { recursive: true, mode: 0o700 })) !== undefined;
    // QMP is full control of the VM and its socket takes the umask: keep the directory private.
    await chmod(req.dir, 0o700);
    const all = [
      ...f.overlays,
      f.nbdSocket,
      f.qmpSocket,
      f.pidFile,
      f.consoleLog,
      f.efiVars,
      f.seed,
      f.materialized,
      f.qemuLog,
      f.qemuArgs,
    ];
    for (const p of all) {
      if (await exists(p))
        throw new LaunchDirInUseError(`${req.dir} already holds an instance (${p})`, { path: p });
    }
    // From here on, every name above is ours to remove.
    res.files.push(
      ...f.overlays,
      f.nbdSocket,
      f.qmpSocket,
      f.pidFile,
      f.efiVars,
      f.materialized,
      f.qemuLog,
      f.qemuArgs,
    );
    res.console = new ConsoleLog(f.consoleLog);

    res.nbd = await NbdServer.listen({
      path: f.nbdSocket,
      exports: req.disks.map((disk, i) => ({ name: `disk${i}`, disk, description: `${req.id} disk ${i}` })),
      ...(options.onNbdEvent ? { onEvent: options.onNbdEvent } : {}),
    });
    await Promise.all(
      req.disks.map((d, i) =>
        createOverlay(qemuImg, f.overlays[i] as string, nbdBacking(f.nbdSocket, `disk${i}`), d.virtualSize),
      ),
    );
    if (ovmf) await copyFile(ovmf.vars, f.efiVars);
    let seedIso = req.seedIso;
    if (options.seed) {
      res.files.push(f.seed);
      seedIso = await buildSeed(req.dir, options.seed);
    }

    const args = qemuArgs({
      name: req.name,
      accel,
      cpu,
      vcpus: req.type.vcpus,
      memoryMiB: req.type.memoryMiB,
      overlays: f.overlays,
      bus: req.bus,
      nic: req.nic,
      mac: req.mac,
      network: req.network,
      forwards: req.forwards,
      seedIso,
      uefi: ovmf ? { code: ovmf.code, vars: f.efiVars } : undefined,
      consoleLog: f.consoleLog,
      qmpSocket: f.qmpSocket,
      pidFile: f.pidFile,
      noReboot: req.noReboot,
    });
    const prepareMs = performance.now() - started;
    res.console.start();
    // What a restarted launch host needs to boot an adopted instance again (adopt.ts).
    await writeFile(f.qemuArgs, JSON.stringify({ qemu, args, startTimeoutMs: req.startTimeoutMs }), {
      mode: 0o600,
    });
    const relaunch = () =>
      startQemu(
        qemu,
        args,
        f.qmpSocket,
        req.startTimeoutMs,
        (c) => {
          child = c;
        },
        f.qemuLog,
      );
    const { child: proc, exited } = await relaunch();
    const startMs = performance.now() - started - prepareMs;
    return new Instance(
      {
        id: req.id,
        name: req.name,
        dir: req.dir,
        type: req.type,
        accel,
        bus: req.bus,
        nic: req.nic,
        mac: req.mac,
        firmware: req.firmware,
        overlays: f.overlays,
        nbdSocket: f.nbdSocket,
        qmpSocket: f.qmpSocket,
        pidFile: f.pidFile,
        consoleLog: f.consoleLog,
      },
      proc,
      exited,
      res as InstanceResources & { console: ConsoleLog },
      { prepareMs, startMs },
      relaunch,
    );
  } catch (err) {
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child?.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    await releaseResources(res, false).catch(() => {});
    throw FerryError.is(err) ? err : toFerryError(err);
  }
}

async function closeAll(disks: readonly unknown[]): Promise<void> {
  await Promise.allSettled(
    disks.map((d) =>
      d && typeof (d as { close?: unknown }).close === 'function'
        ? (d as { close(): Promise<void> }).close()
        : undefined,
    ),
  );
}
