/**
 * Delivers queued webhook deliveries: at least once, each POST signed, retried with
 * exponential backoff and jitter, dead-lettered after the webhook's maxAttempts.
 *
 * Several server processes may share one database: a delivery is leased (claimed with a
 * compare-and-set) before it is sent, and a lease that runs out (a process killed mid-POST)
 * lets another process send it again — the receiver dedupes on the event id. Order is not
 * guaranteed (a retried delivery arrives after later events); `time` and `id` order events.
 */
import { randomUUID } from 'node:crypto';
import { repositories, type Database, type DeliveryRecord } from '../../db/index.js';
import { toFerryError } from '../../errors/index.js';
import type { Clock } from '../clock.js';
import { envelope } from './catalog.js';
import { DEFAULT_EVENT_RETENTION_MS, toEvent, type EventLog } from './log.js';
import { postJson } from './post.js';
import { SIGNATURE_HEADER, signatureHeader } from './signature.js';
import type { WebhookService } from './webhooks.js';

export interface DispatcherOptions {
  /** First retry delay; doubles per attempt (default 5 s). */
  readonly retryBaseMs?: number;
  /** Longest retry delay (default 1 h). */
  readonly retryMaxMs?: number;
  /** How long a receiver has to answer (default 10 s, as GitHub and Stripe allow about). */
  readonly timeoutMs?: number;
  /** How often the queue is looked at without a nudge (default 1 s). */
  readonly pollMs?: number;
  /** Deliveries in flight at once per process (default 4). */
  readonly concurrency?: number;
  readonly retentionMs?: number;
}

const BATCH = 32;
const PRUNE_EVERY_MS = 3600_000;
const USER_AGENT = 'Ferry-Webhooks/1';

export class WebhookDispatcher {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #hooks: WebhookService;
  readonly #log: EventLog;
  readonly #o: Required<DispatcherOptions>;
  readonly #owner = `dispatcher-${randomUUID()}`;
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  #lastPrune = 0;
  #unsubscribe: (() => void) | undefined;

  constructor(db: Database, clock: Clock, hooks: WebhookService, log: EventLog, o: DispatcherOptions = {}) {
    this.#db = db;
    this.#clock = clock;
    this.#hooks = hooks;
    this.#log = log;
    this.#o = {
      retryBaseMs: o.retryBaseMs ?? 5000,
      retryMaxMs: o.retryMaxMs ?? 3600_000,
      timeoutMs: o.timeoutMs ?? 10_000,
      pollMs: o.pollMs ?? 1000,
      concurrency: o.concurrency ?? 4,
      retentionMs: o.retentionMs ?? DEFAULT_EVENT_RETENTION_MS,
    };
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    // Deliveries are queued inside a transaction: look shortly after it has committed.
    this.#unsubscribe = this.#log.onQueued(() => setTimeout(() => this.wake(), 20).unref());
    this.#timer = setInterval(() => this.wake(), this.#o.pollMs);
    this.#timer.unref();
    this.wake();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
    await this.#ticking?.catch(() => undefined);
    await Promise.allSettled([...this.#inFlight]);
  }

  wake(): void {
    if (this.#stopped) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = this.#tick()
      .catch(() => undefined)
      .finally(() => {
        this.#ticking = undefined;
        if (this.#again) {
          this.#again = false;
          this.wake();
        }
      });
  }

  /** Resolves when nothing is being sent (tests). */
  async idle(): Promise<void> {
    while (this.#ticking || this.#inFlight.size > 0) {
      await this.#ticking?.catch(() => undefined);
      await Promise.allSettled([...this.#inFlight]);
    }
  }

  async #tick(): Promise<void> {
    const now = this.#clock.now();
    if (now - this.#lastPrune >= PRUNE_EVERY_MS) {
      this.#lastPrune = now;
      await this.#log.prune(this.#db, this.#o.retentionMs);
    }
    const free = this.#o.concurrency - this.#inFlight.size;
    if (free <= 0) return;
    const r = repositories(this.#db);
    for (const d of await r.deliveries.due(now, Math.min(BATCH, free))) {
      if (this.#stopped) return;
      const until = now + this.#o.timeoutMs * 2 + 5000;
      if (!(await r.deliveries.claim(d.deliveryId, this.#owner, until, now))) continue;
      const p: Promise<void> = this.#send(d)
        .catch(() => undefined)
        .finally(() => {
          this.#inFlight.delete(p);
          this.wake();
        });
      this.#inFlight.add(p);
    }
  }

  async #send(d: DeliveryRecord): Promise<void> {
    const r = repositories(this.#db);
    const [hook, stored] = await Promise.all([r.webhooks.get(d.webhookId), r.events.get(d.eventId)]);
    const now = () => this.#clock.now();
    if (!hook || !stored) {
      await this.#finish(d, 'DEAD', {
        lastError: hook ? 'the event left the log (retention)' : 'webhook deleted',
      });
      return;
    }
    const body = JSON.stringify(envelope(toEvent(stored)));
    const attempt = d.attempts + 1;
    let status: number | undefined;
    let text: string;
    try {
      const res = await postJson(
        new URL(hook.url),
        body,
        {
          'user-agent': USER_AGENT,
          'ferry-event-id': stored.eventId,
          'ferry-event-type': stored.detailType,
          'ferry-delivery-id': d.deliveryId,
          'ferry-delivery-attempt': String(attempt),
          [SIGNATURE_HEADER]: signatureHeader(this.#hooks.secretOf(hook), Math.floor(now() / 1000), body),
        },
        { timeoutMs: this.#o.timeoutMs, ca: hook.caBundle ?? undefined },
      );
      status = res.status;
      text = res.text;
    } catch (err) {
      text = toFerryError(err).message;
    }
    if (status !== undefined && status >= 200 && status < 300) {
      await this.#finish(d, 'DELIVERED', {
        attempts: attempt,
        lastStatus: status,
        lastError: null,
        deliveredAt: now(),
      });
      return;
    }
    const lastError = (status !== undefined ? `HTTP ${status}: ${text}` : text).slice(0, 1000);
    if (attempt >= hook.maxAttempts) {
      await this.#finish(d, 'DEAD', { attempts: attempt, lastStatus: status ?? null, lastError });
      return;
    }
    await this.#finish(d, 'PENDING', {
      attempts: attempt,
      lastStatus: status ?? null,
      lastError,
      nextAttemptAt: now() + this.#delay(attempt),
    });
  }

  /** Exponential backoff with ±20 % jitter, so receivers that failed together do not retry together. */
  #delay(attempt: number): number {
    const base = Math.min(this.#o.retryMaxMs, this.#o.retryBaseMs * 2 ** (attempt - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  async #finish(d: DeliveryRecord, state: string, p: Partial<DeliveryRecord>): Promise<void> {
    // Only while this process still holds the lease: a redelivery or a takeover wins.
    await repositories(this.#db).deliveries.update(
      d.deliveryId,
      { ...p, state, leaseOwner: null, leaseUntil: null, updatedAt: this.#clock.now() },
      { field: 'leaseOwner', in: [this.#owner] },
    );
  }
}
