/**
 * A bandwidth limit for a remote connector, with a weekly schedule (so replication can be
 * slow in business hours and free at night), as a decorator on the link's handlers: only
 * `disk.read` — the disk data — is paced, with a token bucket of one second's worth.
 * The rate is measured in disk bytes before compression.
 *
 *   --bandwidth 50M                                   always 50 MiB/s
 *   --bandwidth-schedule "Mon-Fri 08:00-18:00=10M; Sat,Sun 00:00-24:00=unlimited"
 *
 * The first schedule entry covering the connector host's local time wins; outside every
 * entry `--bandwidth` applies (or no limit). Rates are bytes per second with K/M/G
 * (binary) suffixes, at least 64K: a 4 MiB read must fit in the server's call timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from '../errors/index.js';
import type { Handler } from './peer.js';

export const MIN_RATE = 64 * 1024;
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface Entry {
  readonly days: ReadonlySet<number>;
  /** Minutes since midnight, [from, to). */
  readonly from: number;
  readonly to: number;
  /** Bytes per second; undefined: unlimited. */
  readonly rate: number | undefined;
}

function rateOf(text: string): number | undefined {
  if (text.trim().toLowerCase() === 'unlimited') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?(?:\/s)?$/i.exec(text.trim());
  if (!m)
    throw new InvalidArgumentError(`invalid rate ${JSON.stringify(text)} (e.g. 800K, 50M, 1G, unlimited)`);
  const n = Math.floor(
    Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] ?? '').toUpperCase() as 'K'],
  );
  if (n < MIN_RATE)
    throw new InvalidArgumentError(`rate ${text} is below the minimum 64K (bytes per second)`);
  return n;
}

function daysOf(text: string): Set<number> {
  if (text === '*') return new Set([0, 1, 2, 3, 4, 5, 6]);
  const out = new Set<number>();
  for (const part of text.toLowerCase().split(',')) {
    const [a, b] = part.split('-').map((d) => DAYS.indexOf(d.trim().slice(0, 3)));
    if (a === undefined || a < 0 || (b !== undefined && b < 0))
      throw new InvalidArgumentError(`invalid days ${JSON.stringify(text)} (e.g. Mon-Fri, Sat,Sun, *)`);
    for (let d = a; ; d = (d + 1) % 7) {
      out.add(d);
      if (b === undefined || d === b) break;
    }
  }
  return out;
}

function minutesOf(hhmm: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm.trim());
  const v = m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  if (!(v >= 0 && v <= 24 * 60))
    throw new InvalidArgumentError(`invalid time ${JSON.stringify(hhmm)} (HH:MM)`);
  return v;
}

export class BandwidthSchedule {
  readonly #entries: readonly Entry[];
  readonly #default: number | undefined;

  constructor(defaultRate?: string, schedule?: string) {
    this.#default = defaultRate === undefined ? undefined : rateOf(defaultRate);
    this.#entries = (schedule ?? '')
      .split(';')
      .map((e) => e.trim())
      .filter((e) => e.length > 0)
      .map((e) => {
        const m = /^(\S+)\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2})\s*=\s*(\S+)$/.exec(e);
        if (!m)
          throw new InvalidArgumentError(
            `invalid schedule entry ${JSON.stringify(e)} (DAYS HH:MM-HH:MM=RATE)`,
          );
        return { days: daysOf(m[1]!), from: minutesOf(m[2]!), to: minutesOf(m[3]!), rate: rateOf(m[4]!) };
      });
  }

  /** Bytes per second allowed at `at` (local time); undefined: no limit. */
  rateAt(at: Date): number | undefined {
    const minute = at.getHours() * 60 + at.getMinutes();
    const hit = this.#entries.find((e) => e.days.has(at.getDay()) && minute >= e.from && minute < e.to);
    return hit ? hit.rate : this.#default;
  }

  get limited(): boolean {
    return this.#default !== undefined || this.#entries.length > 0;
  }
}

/** A token bucket whose rate follows the schedule. */
export class Throttle {
  readonly #schedule: BandwidthSchedule;
  readonly #now: () => number;
  #tokens = 0;
  #last: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(schedule: BandwidthSchedule, now: () => number = Date.now) {
    this.#schedule = schedule;
    this.#now = now;
    this.#last = now();
  }

  /** Resolves when `bytes` may go; callers queue in order. */
  take(bytes: number): Promise<void> {
    const turn = this.#queue.then(async () => {
      const now = this.#now();
      const rate = this.#schedule.rateAt(new Date(now));
      if (rate === undefined) {
        this.#tokens = 0;
        this.#last = now;
        return;
      }
      this.#tokens = Math.min(rate, this.#tokens + ((now - this.#last) * rate) / 1000);
      this.#last = now;
      this.#tokens -= bytes;
      if (this.#tokens < 0) await sleep(Math.ceil((-this.#tokens / rate) * 1000));
    });
    this.#queue = turn.catch(() => undefined);
    return turn;
  }
}

/** The handlers with disk reads paced by `throttle`. */
export function throttled(handlers: Record<string, Handler>, throttle: Throttle): Record<string, Handler> {
  const read = handlers['disk.read'];
  if (!read) return handlers;
  return {
    ...handlers,
    'disk.read': async (p, body) => {
      const out = await read(p, body);
      if (out?.body) await throttle.take(out.body.length);
      return out;
    },
  };
}
