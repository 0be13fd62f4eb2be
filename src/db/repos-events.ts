/**
 * Statements of the event log, webhooks and their deliveries (src/control/events). Part
 * of `repositories()`; kept apart because the outbox has its own claiming and pruning.
 */
import { keysetPage, type Page, type PageQuery } from './page.js';
import type { DeliveryRecord, EventRecord, WebhookRecord } from './records.js';
import * as t from './tables.js';
import type { SqlExecutor, SqlValue } from './types.js';

export interface EventFilter {
  readonly source?: string | undefined;
  readonly detailType?: string | undefined;
  /** Events naming this id among their resources. */
  readonly resource?: string | undefined;
  readonly since?: number | undefined;
  readonly until?: number | undefined;
}

/** LIKE pattern matching `"id"` inside a JSON array, with LIKE's wildcards escaped. */
function jsonMember(id: string): string {
  return `%${JSON.stringify(id).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A WHERE clause built from optional filters. */
function conditions() {
  const where: string[] = [];
  const params: SqlValue[] = [];
  return {
    where,
    params,
    add(clause: string, value: SqlValue) {
      where.push(clause);
      params.push(value);
    },
  };
}

export function eventRepositories(x: SqlExecutor) {
  return {
    events: {
      insert: (r: EventRecord) => t.events.insert(x, r),
      get: (id: string) => t.events.get(x, id),
      page(q: PageQuery, f: EventFilter = {}): Promise<Page<EventRecord>> {
        const { where, params, add } = conditions();
        if (f.source !== undefined) add('source = ?', f.source);
        if (f.detailType !== undefined) add('detail_type = ?', f.detailType);
        if (f.resource !== undefined) add(`resources LIKE ? ESCAPE '\\'`, jsonMember(f.resource));
        if (f.since !== undefined) add('occurred_at >= ?', f.since);
        if (f.until !== undefined) add('occurred_at < ?', f.until);
        return keysetPage(x, t.events, 'eventId', where.join(' AND '), params, q);
      },
      /** Deletes up to `limit` events older than `before`, with their deliveries. */
      async prune(before: number, limit: number): Promise<number> {
        const old = await x.all<{ event_id: string }>(
          'SELECT event_id FROM events WHERE occurred_at < ? ORDER BY event_id LIMIT ?',
          [before, limit],
        );
        if (old.length === 0) return 0;
        const ids = old.map((r) => r.event_id);
        const marks = ids.map(() => '?').join(', ');
        await x.run(`DELETE FROM webhook_deliveries WHERE event_id IN (${marks})`, ids);
        return (await x.run(`DELETE FROM events WHERE event_id IN (${marks})`, ids)).changes;
      },
    },

    webhooks: {
      insert: (r: WebhookRecord) => t.webhooks.insert(x, r),
      get: (id: string) => t.webhooks.get(x, id),
      update: (id: string, p: Partial<WebhookRecord>) => t.webhooks.update(x, id, p),
      all: () => t.webhooks.select(x, '', [], 'ORDER BY created_at, webhook_id'),
      enabled: () => t.webhooks.select(x, 'enabled = 1', [], 'ORDER BY webhook_id'),
      async delete(id: string): Promise<number> {
        await x.run('DELETE FROM webhook_deliveries WHERE webhook_id = ?', [id]);
        return (await x.run('DELETE FROM webhooks WHERE webhook_id = ?', [id])).changes;
      },
    },

    deliveries: {
      insert: (r: DeliveryRecord) => t.deliveries.insert(x, r),
      get: (id: string) => t.deliveries.get(x, id),
      update: (
        id: string,
        p: Partial<DeliveryRecord>,
        onlyIf?: { field: keyof DeliveryRecord & string; in: readonly SqlValue[] },
      ) => t.deliveries.update(x, id, p, onlyIf),
      /** Pending deliveries due at `now` whose lease (if any) has run out, oldest first. */
      due: (now: number, limit: number) =>
        t.deliveries.select(
          x,
          "state = 'PENDING' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)",
          [now, now, limit],
          'ORDER BY next_attempt_at, delivery_id LIMIT ?',
        ),
      /** Takes the lease of a due delivery; false when another worker holds it. */
      async claim(id: string, owner: string, until: number, now: number): Promise<boolean> {
        const r = await x.run(
          `UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?
           WHERE delivery_id = ? AND state = 'PENDING' AND (lease_until IS NULL OR lease_until < ?)`,
          [owner, until, id, now],
        );
        return r.changes === 1;
      },
      page(q: PageQuery, f: { webhookId?: string; state?: string } = {}): Promise<Page<DeliveryRecord>> {
        const { where, params, add } = conditions();
        if (f.webhookId !== undefined) add('webhook_id = ?', f.webhookId);
        if (f.state !== undefined) add('state = ?', f.state);
        return keysetPage(x, t.deliveries, 'deliveryId', where.join(' AND '), params, q);
      },
      forWebhook: (webhookId: string, state: string) =>
        t.deliveries.select(x, 'webhook_id = ? AND state = ?', [webhookId, state], 'ORDER BY delivery_id'),
      /** Deliveries per state, of one webhook or of all. */
      async countByState(webhookId?: string): Promise<Record<string, number>> {
        const rows = await x.all<{ state: string; n: number }>(
          `SELECT state, COUNT(*) AS n FROM webhook_deliveries${webhookId ? ' WHERE webhook_id = ?' : ''} GROUP BY state`,
          webhookId ? [webhookId] : [],
        );
        return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
      },
    },
  };
}
