/**
 * The current link to one remote peer (a connector, a launch host, or — from a launch
 * host — the server), as a place calls wait at: a dropped link does not fail a call at
 * once; it waits (bounded) for the peer to come back and is sent again on the new link.
 * Only calls that are safe to repeat go through here (reads, idempotent operations).
 */
import { LinkDownError, toFerryError } from '../errors/index.js';
import type { LinkPeer } from './peer.js';

/** How long a call waits for a dropped peer to reconnect before it fails. */
export const RECONNECT_WAIT_MS = 120_000;
/** Reconnections one call survives (a link that keeps dropping is not going to work). */
export const MAX_CALL_RETRIES = 8;

export interface LinkCaller {
  /** One call, retried across reconnections; says which link answered it. */
  call(
    method: string,
    params: object,
    body?: Buffer,
  ): Promise<{ result: unknown; body: Buffer; peer: LinkPeer }>;
}

export class LinkSlot implements LinkCaller {
  #peer: LinkPeer | undefined;
  #waiters: (() => void)[] = [];
  readonly #reconnectWaitMs: number;
  /** Names the peer in errors ("connector c-…", "launch host h-…", "the server"). */
  readonly #what: () => string;
  readonly #details: Record<string, string>;

  constructor(what: () => string, o: { reconnectWaitMs?: number; details?: Record<string, string> } = {}) {
    this.#what = what;
    this.#reconnectWaitMs = o.reconnectWaitMs ?? RECONNECT_WAIT_MS;
    this.#details = o.details ?? {};
  }

  get connected(): boolean {
    return this.#peer !== undefined && !this.#peer.closed;
  }

  /** The link now up, if any (for calls that must not wait or be repeated). */
  get peer(): LinkPeer | undefined {
    return this.connected ? this.#peer : undefined;
  }

  /** A (re)connected link: calls waiting for one go on. */
  attach(peer: LinkPeer): void {
    if (this.#peer !== peer) this.#peer?.close();
    this.#peer = peer;
    peer.onClose(() => {
      if (this.#peer === peer) this.#peer = undefined;
    });
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) w();
  }

  /** Drops the link (disassociation, shutdown). */
  detach(): void {
    this.#peer?.close();
    this.#peer = undefined;
  }

  /** The link, waiting up to the reconnect window for one. */
  async link(): Promise<LinkPeer> {
    for (;;) {
      if (this.#peer && !this.#peer.closed) return this.#peer;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== done);
          reject(
            new LinkDownError(
              `${this.#what()} is not connected (waited ${Math.round(this.#reconnectWaitMs / 1000)} s)`,
              this.#details,
            ),
          );
        }, this.#reconnectWaitMs);
        timer.unref();
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        this.#waiters.push(done);
      });
    }
  }

  async call(
    method: string,
    params: object,
    body?: Buffer,
  ): Promise<{ result: unknown; body: Buffer; peer: LinkPeer }> {
    for (let attempt = 0; ; attempt++) {
      const peer = await this.link();
      try {
        return { ...(await peer.call(method, params, body)), peer };
      } catch (err) {
        const fe = toFerryError(err);
        if (fe.code !== 'FERRY_LINK_DOWN' || attempt >= MAX_CALL_RETRIES) throw fe;
      }
    }
  }
}
