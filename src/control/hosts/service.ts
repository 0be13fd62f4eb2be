/**
 * Remote launch hosts, server side (docs/launch.md, "Launch hosts"): machines with QEMU
 * that enrolled like connectors and keep a link to the server. The server places launches
 * on them, serves each host the images of the instances placed on it — and nothing else —
 * over that link, and reconciles what each host says it runs (its hello) with the
 * `instances` table after every reconnect, whichever side restarted.
 */
import { repositories, type Database, type LaunchHostRecord } from '../../db/index.js';
import { LaunchHostUnavailableError, NotFoundError } from '../../errors/index.js';
import type { InstanceExit } from '../../launch/index.js';
import { isRecord, LinkSlot, serveDisks, str, type LinkPeer } from '../../link/index.js';
import { openImageDisk, type Repository } from '../../store/index.js';
import type { Clock } from '../clock.js';
import type { InstanceHost } from '../instance-host.js';
import type { LaunchHostLinks } from '../link-server.js';
import { RemoteInstance } from './remote-instance.js';

/** A host that has not been heard from for this long is shown as unreachable. */
export const HOST_HEARTBEAT_TIMEOUT_MS = 60_000;

export interface HostView extends LaunchHostRecord {
  readonly connected: boolean;
  readonly instances: number;
}

export class HostService implements LaunchHostLinks {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #store: Repository | undefined;
  readonly #slots = new Map<string, LinkSlot>();
  #instances: InstanceHost | undefined;

  constructor(db: Database, clock: Clock, store: Repository | undefined) {
    this.#db = db;
    this.#clock = clock;
    this.#store = store;
  }

  /** The server's instance registry remote instances join (set once, by LaunchService). */
  bind(instances: InstanceHost): void {
    this.#instances = instances;
  }

  async list(): Promise<{ hosts: HostView[] }> {
    const r = repositories(this.#db);
    const all = await r.launchHosts.all();
    const out: HostView[] = [];
    for (const h of all.filter((x) => x.disassociatedAt === null)) {
      const live = (await r.instances.onHost(h.hostId)).filter((i) => i.state !== 'terminated');
      out.push({ ...h, connected: this.#slots.get(h.hostId)?.connected ?? false, instances: live.length });
    }
    return { hosts: out };
  }

  /** Refuses the host's certificate from now on and drops its link; its instances are left alone. */
  async disassociate(hostId: string): Promise<Record<string, never>> {
    const r = repositories(this.#db);
    const h = await r.launchHosts.get(hostId);
    if (!h || h.disassociatedAt !== null)
      throw new NotFoundError(`no launch host ${hostId}`, { resource: 'launchHost', hostId });
    await r.launchHosts.update(hostId, { disassociatedAt: this.#clock.now() });
    this.#slots.get(hostId)?.detach();
    this.#slots.delete(hostId);
    return {};
  }

  /**
   * Where a launch goes: `local` (or nothing) is this server's machine; `auto` the connected
   * host with QEMU and the most memory (this machine when none is connected); a host id
   * that host, which must be connected now.
   */
  async place(choice: string | undefined): Promise<{ hostId: string; slot: LinkSlot } | undefined> {
    if (!choice || choice === 'local') return undefined;
    const r = repositories(this.#db);
    if (choice === 'auto') {
      let best: { hostId: string; slot: LinkSlot; memory: number } | undefined;
      for (const [hostId, slot] of this.#slots) {
        const facts = ((await r.launchHosts.get(hostId))?.facts ?? {}) as {
          qemu?: boolean;
          memoryMiB?: number;
        };
        if (!slot.connected || !facts.qemu) continue;
        if (!best || (facts.memoryMiB ?? 0) > best.memory)
          best = { hostId, slot, memory: facts.memoryMiB ?? 0 };
      }
      return best && { hostId: best.hostId, slot: best.slot };
    }
    const h = await r.launchHosts.get(choice);
    if (!h || h.disassociatedAt !== null)
      throw new NotFoundError(`no launch host ${choice}`, { resource: 'launchHost', hostId: choice });
    const slot = this.#slots.get(choice);
    if (!slot?.connected)
      throw new LaunchHostUnavailableError(`launch host ${choice} is not connected`, { hostId: choice });
    return { hostId: choice, slot };
  }

  // --- the link (LaunchHostLinks) ---

  /**
   * A host reads only the images of its own live instances: the instance must be placed on
   * it, not terminated, and launched from that image.
   */
  serve(hostId: string) {
    return serveDisks('image', async (p) => {
      const instanceId = str(p, 'instanceId');
      const imageId = str(p, 'imageId');
      const index = typeof p.index === 'number' && Number.isInteger(p.index) ? p.index : -1;
      const rec = await repositories(this.#db).instances.get(instanceId);
      if (!rec || rec.hostId !== hostId || rec.imageId !== imageId || rec.state === 'terminated' || index < 0)
        throw new NotFoundError(
          `launch host ${hostId} has no live instance ${instanceId} of image ${imageId}`,
          {
            resource: 'image',
            instanceId,
          },
        );
      if (!this.#store) throw new NotFoundError('this server has no image store', { resource: 'image' });
      const { disk } = await openImageDisk(this.#store, imageId, index);
      return { disk };
    });
  }

  notes(hostId: string): Record<string, (p: Record<string, unknown>) => void> {
    const find = (p: Record<string, unknown>) => {
      const live = typeof p.instanceId === 'string' ? this.#instances?.live(p.instanceId) : undefined;
      return live instanceof RemoteInstance && live.hostId === hostId ? live : undefined;
    };
    return {
      'instance.exited': (p) =>
        find(p)?.ended({
          code: typeof p.code === 'number' ? p.code : null,
          signal: typeof p.signal === 'string' ? (p.signal as InstanceExit['signal']) : null,
        }),
      'instance.progress': (p) => {
        if (typeof p.done === 'number' && typeof p.total === 'number')
          find(p)?.progress({ done: p.done, total: p.total });
      },
    };
  }

  async attach(
    hostId: string,
    hello: Record<string, unknown>,
    peer: LinkPeer,
    ip: string | undefined,
  ): Promise<void> {
    const r = repositories(this.#db);
    const facts = isRecord(hello.facts) ? hello.facts : {};
    await r.launchHosts.update(hostId, {
      facts: {
        cpus: num(facts.cpus),
        memoryMiB: num(facts.memoryMiB),
        accelerator: String(facts.accelerator ?? 'none').slice(0, 16),
        cpuModel: String(facts.cpuModel ?? 'none').slice(0, 32),
        qemu: facts.qemu === true,
      },
      ...(typeof hello.name === 'string' ? { name: hello.name.slice(0, 256) } : {}),
      ...(typeof hello.version === 'string' ? { version: hello.version.slice(0, 64) } : {}),
      ipAddress: ip ?? null,
      lastHeartbeatAt: this.#clock.now(),
    });
    let slot = this.#slots.get(hostId);
    if (!slot) {
      slot = new LinkSlot(() => `launch host ${hostId}`, { details: { hostId } });
      this.#slots.set(hostId, slot);
    }
    slot.attach(peer);
    await this.#reconcile(hostId, slot, Array.isArray(hello.instances) ? hello.instances : []);
  }

  async heartbeat(hostId: string): Promise<void> {
    await repositories(this.#db).launchHosts.update(hostId, { lastHeartbeatAt: this.#clock.now() });
  }

  /** The host's account of its instances wins: what it no longer runs is gone. */
  async #reconcile(hostId: string, slot: LinkSlot, reported: unknown[]): Promise<void> {
    const r = repositories(this.#db);
    const running = new Map<string, string>();
    for (const x of reported.slice(0, 10_000))
      if (isRecord(x) && typeof x.instanceId === 'string') running.set(x.instanceId, String(x.state));
    const records = await r.instances.onHost(hostId);
    // What it runs that the server has terminated (while it was away) or never placed there.
    for (const id of running.keys()) {
      const rec = records.find((x) => x.instanceId === id);
      if (rec && rec.state !== 'terminated' && rec.state !== 'failed') continue;
      void slot.peer
        ?.call('instance.terminate', { instanceId: id, timeoutMs: 10_000 })
        .catch(() => undefined);
    }
    for (const rec of records) {
      if (rec.state === 'terminated' || rec.state === 'failed' || rec.state === 'pending') continue;
      const state = running.get(rec.instanceId);
      const known = this.#instances?.live(rec.instanceId);
      if (state === undefined) {
        this.#instances?.forget(rec.instanceId);
        await r.instances.update(rec.instanceId, {
          state: 'terminated',
          statusMessage: `Terminated: launch host ${hostId} no longer runs it (it restarted).`,
          updatedAt: this.#clock.now(),
        });
        continue;
      }
      if (!known && this.#instances) {
        // This server restarted while the instance ran on: take it back.
        const inst = new RemoteInstance(rec.instanceId, hostId, slot, {
          state: state === 'running' ? 'running' : 'stopped',
        });
        this.#instances.add(rec.instanceId, inst);
      }
      const now = state === 'running' ? 'running' : 'stopped';
      if (rec.state !== now)
        await r.instances.update(rec.instanceId, {
          state: now,
          statusMessage: now === 'running' ? 'Running.' : 'Stopped.',
          updatedAt: this.#clock.now(),
        });
    }
  }

  /** Server shutdown: links drop; the hosts' instances run on and are reconciled on return. */
  close(): void {
    for (const s of this.#slots.values()) s.detach();
    this.#slots.clear();
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}
