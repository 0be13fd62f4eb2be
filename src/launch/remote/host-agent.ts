/**
 * The launch host end of a link (docs/launch.md, "Launch hosts"): `ferry host` runs next
 * to QEMU on another machine and the server launches instances there. The image is not
 * copied: each disk is read from the server over the link (LinkDiskLayer, `image.*`) and
 * served to QEMU by the same local NBD server a local launch uses, under the same
 * copy-on-write overlay. A dropped link only delays the guest's reads (they wait for the
 * reconnect, src/link/slot.ts); instances outlive links, and the server learns their state
 * again from the next hello.
 *
 * Calls (server → host): instance.launch / stop / start / terminate / console /
 * materialize / probe. Notes (host → server): instance.exited, instance.progress.
 * Every value the server sends is checked before use (src/link/params.ts, validateLaunch).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { LayeredDisk, type Disk } from '../../disk/index.js';
import { InvalidArgumentError, NotFoundError } from '../../errors/index.js';
import {
  int,
  isRecord,
  LinkDiskLayer,
  optStr,
  str,
  type Handler,
  type LinkCaller,
  type Params,
} from '../../link/index.js';
import { adoptInstance, type AdoptedInstance } from '../instance/adopt.js';
import { cpuModel, findProgram, hostMemoryMiB } from '../instance/host.js';
import type { Instance } from '../instance/instance.js';
import { launchInstance } from '../instance/launch.js';
import { MAX_DISKS, MAX_FORWARDS, type LaunchOptions, type PortForward } from '../instance/options.js';
import { MAX_SEED_PART_BYTES, type SeedContent } from '../instance/seed.js';
import { freeLoopbackPort, httpProbe, tcpProbe } from '../probes.js';

type Live = Instance | AdoptedInstance;

/** Longest console text one call returns (the tail is what validation and people read). */
const MAX_CONSOLE_BYTES = 1 << 20;
/** A probe's deadline, at most (the server's check timeouts are bounded the same way). */
const MAX_PROBE_MS = 3_600_000;
/** Instance ids are EC2-shaped; anything else is refused before it names a directory. */
const INSTANCE_ID = /^i-[0-9a-f]{17}$/;

export interface HostAgentOptions {
  /** Where instance directories go (created 0700 per instance). */
  readonly instancesDir: string;
  /** Calls to the server (image reads), waiting across reconnects. */
  readonly server: LinkCaller;
  /** One-way notes to the server on the current link (dropped while it is down). */
  note(method: string, params: object): void;
  readonly log?: { info(msg: string): void; warn(msg: string): void };
}

export interface HostFacts {
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly accelerator: string;
  readonly cpuModel: string;
  readonly qemu: boolean;
}

export class HostAgent {
  readonly #o: HostAgentOptions;
  readonly #live = new Map<string, { instance: Live; forwards: readonly PortForward[] }>();

  constructor(o: HostAgentOptions) {
    this.#o = o;
  }

  /**
   * Takes back what a previous `ferry host` process left in the instances directory:
   * standalone (materialised) instances keep running and are adopted; the others read
   * their image through the process that died, so they are stopped and removed.
   */
  async recover(): Promise<void> {
    const names = await readdir(this.#o.instancesDir).catch(() => [] as string[]);
    for (const id of names.filter((n) => INSTANCE_ID.test(n))) {
      const dir = join(this.#o.instancesDir, id);
      const adopted = await adoptInstance(id, dir);
      if (adopted) {
        this.#track(id, adopted, []);
        continue;
      }
      await killRecorded(dir);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      this.#o.log?.warn(`removed instance ${id} left by a previous process (its image reader went with it)`);
    }
  }

  /** What this host offers and runs (sent in each hello). */
  async hello(): Promise<{ facts: HostFacts; instances: { instanceId: string; state: string }[] }> {
    let accel = 'none';
    let model = 'none';
    let qemu = false;
    try {
      const c = await cpuModel(await findProgram('qemu-system-x86_64'));
      accel = c.accel;
      model = c.cpu;
      qemu = true;
    } catch {
      // No QEMU: the host is listed, and launches on it fail with FERRY_LAUNCH_TOOL_MISSING.
    }
    return {
      facts: { cpus: cpus().length, memoryMiB: hostMemoryMiB(), accelerator: accel, cpuModel: model, qemu },
      instances: [...this.#live].map(([instanceId, l]) => ({ instanceId, state: l.instance.state })),
    };
  }

  handlers(): Record<string, Handler> {
    return {
      'instance.launch': async (p) => ({ result: await this.#launch(p) }),
      'instance.stop': async (p) => {
        const l = this.#get(p);
        await l.instance.stop({ timeoutMs: int(p, 'timeoutMs', 0, 600_000) });
        return { result: { state: l.instance.state } };
      },
      'instance.start': async (p) => {
        const l = this.#get(p);
        await l.instance.start();
        this.#watch(str(p, 'instanceId'), l.instance);
        return { result: { state: l.instance.state } };
      },
      'instance.terminate': async (p) => {
        const id = str(p, 'instanceId');
        const l = this.#live.get(id);
        // Idempotent: a repeated terminate (after a link drop) finds nothing left to do.
        if (!l) return { result: { state: 'terminated' } };
        this.#live.delete(id);
        await l.instance.terminate({ timeoutMs: int(p, 'timeoutMs', 0, 600_000) });
        return { result: { state: 'terminated' } };
      },
      'instance.console': async (p) => {
        const text = await this.#get(p).instance.consoleText({
          maxBytes: int(p, 'maxBytes', 1, MAX_CONSOLE_BYTES),
        });
        return { body: Buffer.from(text, 'utf8') };
      },
      'instance.materialize': async (p) => {
        const id = str(p, 'instanceId');
        const l = this.#get(p);
        if (!('materialize' in l.instance) || l.instance.materialized)
          return { result: { materialized: true } };
        await l.instance.materialize({
          onProgress: (x) =>
            this.#o.note('instance.progress', { instanceId: id, done: x.done, total: x.total }),
        });
        return { result: { materialized: true } };
      },
      'instance.probe': async (p) => {
        const l = this.#get(p);
        const guestPort = int(p, 'guestPort', 1, 65535);
        const timeoutMs = int(p, 'timeoutMs', 1, MAX_PROBE_MS);
        const hostPort = l.forwards.find((f) => f.guestPort === guestPort)?.hostPort;
        if (hostPort === undefined)
          return {
            result: { ok: false, message: `guest port ${guestPort} is not forwarded (tap network?)` },
          };
        if (p.kind === 'tcp') return { result: await tcpProbe('127.0.0.1', hostPort, timeoutMs) };
        if (p.kind !== 'http')
          throw new InvalidArgumentError('link call: kind is tcp or http', { member: 'kind' });
        const status = p.status === undefined ? undefined : int(p, 'status', 100, 599);
        const bodyPattern = optStr(p, 'bodyPattern');
        return {
          result: await httpProbe(
            '127.0.0.1',
            hostPort,
            {
              path: optStr(p, 'path') ?? '/',
              ...(status !== undefined ? { status } : {}),
              ...(bodyPattern !== undefined ? { bodyPattern: new RegExp(bodyPattern) } : {}),
            },
            timeoutMs,
          ),
        };
      },
    };
  }

  /** `ferry host` stopping: standalone instances run on (adopted next time); the rest end. */
  async stop(): Promise<void> {
    await Promise.allSettled(
      [...this.#live].map(async ([id, l]) => {
        this.#live.delete(id);
        if (l.instance.materialized && l.instance.state === 'running') await l.instance.detach();
        else await l.instance.terminate({ timeoutMs: 0 });
      }),
    );
  }

  #get(p: Params): { instance: Live; forwards: readonly PortForward[] } {
    const id = str(p, 'instanceId');
    const l = this.#live.get(id);
    if (!l)
      throw new NotFoundError(`no instance ${id} on this launch host`, {
        resource: 'instance',
        instanceId: id,
      });
    return l;
  }

  async #launch(p: Params) {
    const instanceId = str(p, 'instanceId');
    if (!INSTANCE_ID.test(instanceId))
      throw new InvalidArgumentError('link call: instanceId is not i-<17 hex>');
    if (this.#live.has(instanceId)) {
      // A repeated launch (the answer was lost with the link): the instance is already up.
      return this.#launched(instanceId);
    }
    const imageId = str(p, 'imageId');
    const count = int(p, 'disks', 1, Math.max(...Object.values(MAX_DISKS)));
    const ports: unknown[] = Array.isArray(p.guestPorts) ? p.guestPorts : [];
    if (ports.length > MAX_FORWARDS)
      throw new InvalidArgumentError(`at most ${MAX_FORWARDS} forwarded ports`);
    const forwards: PortForward[] = [];
    for (const guestPort of ports) {
      if (typeof guestPort !== 'number' || !Number.isInteger(guestPort) || guestPort < 1 || guestPort > 65535)
        throw new InvalidArgumentError('link call: guestPorts are TCP ports', { member: 'guestPorts' });
      forwards.push({ guestPort, hostPort: await freeLoopbackPort() });
    }
    const disks: Disk[] = [];
    for (let index = 0; index < count; index++) {
      const layer = new LinkDiskLayer(this.#o.server, 'image', { instanceId, imageId, index }, 'image');
      try {
        await layer.open();
      } catch (err) {
        await Promise.allSettled(disks.map((d) => d.close()));
        throw err;
      }
      disks.push(new LayeredDisk([layer], [`server:${imageId}/${index}`]));
    }
    const options = isRecord(p.options) ? p.options : {};
    const instance = await launchInstance({
      id: instanceId,
      dir: join(this.#o.instancesDir, instanceId),
      name: str(p, 'name', 64),
      disk: disks,
      type: str(p, 'type', 64),
      ...pick(options),
      ...(forwards.length > 0 ? { forwards } : {}),
      ...(isRecord(p.seed) ? { seed: seedOf(p.seed, instanceId) } : {}),
    });
    this.#track(instanceId, instance, forwards);
    this.#o.log?.info(`launched ${instanceId} (${imageId})`);
    return this.#launched(instanceId);
  }

  #launched(instanceId: string) {
    const l = this.#live.get(instanceId)!;
    return { state: l.instance.state, forwards: l.forwards };
  }

  #track(id: string, instance: Live, forwards: readonly PortForward[]): void {
    this.#live.set(id, { instance, forwards });
    this.#watch(id, instance);
  }

  /** Tells the server when a guest powers off or QEMU dies (not when terminate() ends it). */
  #watch(id: string, instance: Live): void {
    const boot = instance.exited;
    void boot.then((exit) => {
      if (instance.exited !== boot || this.#live.get(id)?.instance !== instance) return;
      this.#o.note('instance.exited', { instanceId: id, code: exit.code, signal: exit.signal });
    });
  }
}

/**
 * Launch options the server may set (anything else in the call is ignored); their values
 * are checked by launchInstance (validateLaunch) like a local launch's.
 */
function pick(o: Params): Partial<Pick<LaunchOptions, 'bus' | 'nic' | 'mac' | 'network' | 'firmware'>> {
  const out: Record<string, string> = {};
  for (const k of ['bus', 'nic', 'mac', 'network', 'firmware']) {
    const v = o[k];
    if (typeof v === 'string') out[k] = v.slice(0, 256);
  }
  return out as Partial<Pick<LaunchOptions, 'bus' | 'nic' | 'mac' | 'network' | 'firmware'>>;
}

function seedOf(p: Params, instanceId: string): SeedContent {
  const b64 = (v: unknown, what: string) => {
    if (typeof v !== 'string') return undefined;
    if (v.length > Math.ceil(MAX_SEED_PART_BYTES / 3) * 4 + 4)
      throw new InvalidArgumentError(`link call: ${what} exceeds ${MAX_SEED_PART_BYTES} bytes`);
    return Buffer.from(v, 'base64');
  };
  const userData = b64(p.userData, 'user data');
  const script = isRecord(p.configureScript) ? p.configureScript : undefined;
  const body = script ? b64(script.body, 'configure script') : undefined;
  const type = script?.type === 'POWERSHELL_SCRIPT' ? 'POWERSHELL_SCRIPT' : 'SHELL_SCRIPT';
  return {
    instanceId,
    hostname: str(p, 'hostname', 64),
    ...(userData ? { userData } : {}),
    ...(body ? { configureScript: { type, body } } : {}),
  };
}

/** Kills the QEMU an instance directory records, if it is still that instance's. */
async function killRecorded(dir: string): Promise<void> {
  const pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes(join(dir, 'qmp.sock'))) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
