/**
 * An instance on a remote launch host, as the server's InstanceHost sees it: the same
 * stop / start / terminate / materialize / console surface as a local instance, each a
 * call over the host's link (docs/launch.md, "Launch hosts"). Its QEMU is not this
 * process's: a server that stops leaves it running, and the host's next hello says what
 * became of it.
 */
import { LinkDownError } from '../../errors/index.js';
import type { InstanceExit } from '../../launch/index.js';
import type { LinkSlot } from '../../link/index.js';

/** How long one materialize call may run (a large image streamed over the link). */
const MATERIALIZE_MS = 24 * 3600_000;

export class RemoteInstance {
  readonly id: string;
  readonly hostId: string;
  readonly remote = true;
  readonly pid = undefined;
  readonly consoleLog = '';
  /** Guest port → port on the launch host's loopback (probes run there). */
  readonly forwards: ReadonlyMap<number, number>;
  #state: 'running' | 'stopped' | 'terminated';
  #materialized = false;
  #exited!: Promise<InstanceExit>;
  #resolveExit!: (e: InstanceExit) => void;
  readonly #slot: LinkSlot;
  #onProgress: ((p: { done: number; total: number }) => void) | undefined;

  constructor(
    id: string,
    hostId: string,
    slot: LinkSlot,
    o: { state: 'running' | 'stopped'; forwards?: ReadonlyMap<number, number>; materialized?: boolean },
  ) {
    this.id = id;
    this.hostId = hostId;
    this.#slot = slot;
    this.#state = o.state;
    this.forwards = o.forwards ?? new Map();
    this.#materialized = o.materialized ?? false;
    this.#arm();
    if (o.state === 'stopped') this.#resolveExit({ code: null, signal: null });
  }

  #arm(): void {
    this.#exited = new Promise((r) => (this.#resolveExit = r));
  }

  get state(): 'running' | 'stopped' | 'terminated' {
    return this.#state;
  }

  get exited(): Promise<InstanceExit> {
    return this.#exited;
  }

  get materialized(): boolean {
    return this.#materialized;
  }

  /** The host said its QEMU ended (guest power-off, crash). */
  ended(exit: InstanceExit): void {
    if (this.#state !== 'running') return;
    this.#state = 'stopped';
    this.#resolveExit(exit);
  }

  /** Progress of a materialize in flight (the host's notes). */
  progress(p: { done: number; total: number }): void {
    this.#onProgress?.(p);
  }

  async stop(o: { timeoutMs?: number } = {}): Promise<InstanceExit> {
    await this.#call('instance.stop', { timeoutMs: o.timeoutMs ?? 10_000 });
    this.ended({ code: null, signal: null });
    return this.#exited;
  }

  async start(): Promise<void> {
    await this.#call('instance.start', {});
    this.#arm();
    this.#state = 'running';
  }

  async terminate(o: { timeoutMs?: number } = {}): Promise<void> {
    await this.#call('instance.terminate', { timeoutMs: o.timeoutMs ?? 10_000 });
    this.#state = 'terminated';
    this.#resolveExit({ code: null, signal: null });
  }

  async materialize(o: { onProgress?: (p: { done: number; total: number }) => void } = {}): Promise<void> {
    this.#onProgress = o.onProgress;
    try {
      const peer = await this.#slot.link();
      await peer.call('instance.materialize', { instanceId: this.id }, undefined, {
        timeoutMs: MATERIALIZE_MS,
      });
      this.#materialized = true;
    } finally {
      this.#onProgress = undefined;
    }
  }

  async consoleText(o: { maxBytes?: number } = {}): Promise<string> {
    if (!this.#slot.connected) return '';
    const r = await this.#call('instance.console', { maxBytes: o.maxBytes ?? 1 << 20 });
    return r.body.toString('utf8');
  }

  /** A TCP or HTTP check of a forwarded guest port, run on the launch host. */
  async probe(check: object, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
    try {
      const r = await this.#call('instance.probe', { ...check, timeoutMs }, timeoutMs + 30_000);
      return r.result as { ok: boolean; message: string };
    } catch (err) {
      return { ok: false, message: `launch host ${this.hostId}: ${(err as Error).message}` };
    }
  }

  /** Nothing to let go of: the QEMU belongs to the launch host. */
  detach(): void {}

  async #call(method: string, params: Record<string, unknown>, timeoutMs?: number) {
    const peer = this.#slot.peer;
    if (!peer)
      throw new LinkDownError(`launch host ${this.hostId} is not connected`, {
        hostId: this.hostId,
        instanceId: this.id,
      });
    return peer.call(method, { instanceId: this.id, ...params }, undefined, timeoutMs ? { timeoutMs } : {});
  }
}
