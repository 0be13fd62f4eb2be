/**
 * The event log. As the database's change observer it turns captured state changes into
 * events inside the writing transaction, and queues one delivery per webhook that selects
 * each event in the same transaction (the outbox the dispatcher drains). ListEvents reads
 * it; old events are pruned after the retention period.
 */
import { repositories, type ChangeObserver, type EventRecord, type SqlExecutor } from '../../db/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import type { Clock } from '../clock.js';
import { decodeToken, encodeToken, pageSize } from '../paging.js';
import { eventsOf, WATCHED } from './capture.js';
import { EVENT_TYPES, matches, type FerryEvent, type NewEvent } from './catalog.js';
import { newDeliveryId, newEventId } from './ids.js';

/** Events kept by default (EventBridge archives are configurable; a month covers a migration wave). */
export const DEFAULT_EVENT_RETENTION_MS = 30 * 24 * 3600_000;

export interface ListEventsInput {
  source?: string;
  detailType?: string;
  resourceId?: string;
  startTime?: number;
  endTime?: number;
  maxResults?: number;
  nextToken?: string;
}

export function toEvent(r: EventRecord): FerryEvent {
  return {
    id: r.eventId,
    source: r.source as FerryEvent['source'],
    detailType: r.detailType as FerryEvent['detailType'],
    time: r.occurredAt,
    resources: r.resources,
    detail: r.detail as FerryEvent['detail'],
  };
}

export class EventLog implements ChangeObserver {
  readonly #clock: Clock;
  readonly #queued = new Set<() => void>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Called (before commit, so listeners look again shortly) when deliveries were queued. */
  onQueued(listener: () => void): () => void {
    this.#queued.add(listener);
    return () => this.#queued.delete(listener);
  }

  watches(table: string, fields: readonly string[]): boolean {
    const w = WATCHED[table];
    return w !== undefined && fields.some((f) => w.includes(f));
  }

  async changed(tx: SqlExecutor, table: string, before: object | undefined, after: object): Promise<void> {
    const events = eventsOf(table, before, after);
    if (events.length === 0) return;
    // One read of the webhooks per change, however many events it makes.
    const enabled = await repositories(tx).webhooks.enabled();
    for (const e of events)
      await this.#store(
        tx,
        e,
        enabled.filter((w) => matches(w.eventPatterns, withSource(e))),
      );
  }

  /**
   * Stores an event and queues its deliveries: to every enabled webhook it matches, or
   * only to `onlyWebhookId` (test events).
   */
  async record(x: SqlExecutor, e: NewEvent, onlyWebhookId?: string): Promise<FerryEvent> {
    const r = repositories(x);
    const hooks = onlyWebhookId
      ? [await r.webhooks.get(onlyWebhookId)].filter((w) => w !== undefined)
      : (await r.webhooks.enabled()).filter((w) => matches(w.eventPatterns, withSource(e)));
    return this.#store(x, e, hooks);
  }

  async #store(x: SqlExecutor, e: NewEvent, hooks: readonly { webhookId: string }[]): Promise<FerryEvent> {
    const r = repositories(x);
    const now = this.#clock.now();
    const event: FerryEvent = { ...e, id: newEventId(now), source: EVENT_TYPES[e.detailType], time: now };
    await r.events.insert({
      eventId: event.id,
      source: event.source,
      detailType: event.detailType,
      occurredAt: now,
      resources: event.resources,
      detail: event.detail,
    });
    for (const w of hooks) {
      await r.deliveries.insert({
        deliveryId: newDeliveryId(now),
        webhookId: w.webhookId,
        eventId: event.id,
        state: 'PENDING',
        attempts: 0,
        nextAttemptAt: now,
        leaseOwner: null,
        leaseUntil: null,
        lastStatus: null,
        lastError: null,
        createdAt: now,
        updatedAt: now,
        deliveredAt: null,
      });
    }
    if (hooks.length > 0) for (const l of this.#queued) l();
    return event;
  }

  async listEvents(x: SqlExecutor, input: ListEventsInput) {
    if (input.detailType !== undefined && !(input.detailType in EVENT_TYPES)) {
      throw new InvalidArgumentError(`unknown detailType ${JSON.stringify(input.detailType)}`, {
        member: 'detailType',
      });
    }
    const page = await repositories(x).events.page(
      { after: decodeToken('ListEvents', input.nextToken), limit: pageSize(input.maxResults) },
      {
        source: input.source,
        detailType: input.detailType,
        resource: input.resourceId,
        since: input.startTime,
        until: input.endTime,
      },
    );
    const nextToken = encodeToken('ListEvents', page.next);
    return {
      events: page.items.map((r) => ({
        eventId: r.eventId,
        source: r.source,
        detailType: r.detailType,
        time: r.occurredAt,
        resources: r.resources,
        // As EventBridge's PutEvents carries Detail: a JSON document in a string.
        detail: JSON.stringify(r.detail),
      })),
      ...(nextToken ? { nextToken } : {}),
    };
  }

  /** Deletes events (and their deliveries) older than the retention, a batch at a time. */
  async prune(x: SqlExecutor, retentionMs: number): Promise<number> {
    const before = this.#clock.now() - retentionMs;
    let total = 0;
    for (;;) {
      const n = await repositories(x).events.prune(before, 500);
      total += n;
      if (n < 500) return total;
    }
  }
}

/** An event's source follows from its type (catalog.ts); patterns may name either. */
function withSource(e: NewEvent): { source: string; detailType: string } {
  return { source: EVENT_TYPES[e.detailType], detailType: e.detailType };
}
