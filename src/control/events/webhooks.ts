/**
 * Webhooks (the role SNS topics played for SMS): where events are POSTed, which ones, and
 * with which signing secret. The secret is generated here, shown once at creation (or
 * rotation) and stored sealed under the master key. Deliveries that ran out of attempts
 * stay listed as DEAD (the dead-letter list) until redelivered.
 */
import { randomBytes } from 'node:crypto';
import { repositories, type Database, type DeliveryRecord, type WebhookRecord } from '../../db/index.js';
import { InvalidArgumentError, NotFoundError } from '../../errors/index.js';
import type { Clock } from '../clock.js';
import { decodeToken, encodeToken, pageSize } from '../paging.js';
import { openSecret, sealSecret } from '../secrets.js';
import { isKnownPattern } from './catalog.js';
import type { EventLog } from './log.js';

/** Attempts before a delivery is dead-lettered: with the default backoff, about 2.4 hours. */
export const DEFAULT_MAX_ATTEMPTS = 12;
const MAX_ATTEMPTS_LIMIT = 50;
/** A CA bundle of a few certificates; more is a mistake (a whole system store). */
const MAX_CA_BUNDLE = 64 * 1024;
const MAX_URL = 2048;
const DELIVERY_STATES = ['PENDING', 'DELIVERED', 'DEAD'];

export interface WebhookInput {
  name?: string;
  url?: string;
  description?: string;
  eventPatterns?: string[];
  caBundle?: string;
  enabled?: boolean;
  maxAttempts?: number;
}

const label = (id: string) => `ferry-webhook:${id}`;
const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

export class WebhookService {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #masterKey: Buffer;
  readonly #log: EventLog;

  constructor(db: Database, clock: Clock, masterKey: Buffer, log: EventLog) {
    this.#db = db;
    this.#clock = clock;
    this.#masterKey = masterKey;
    this.#log = log;
  }

  async createWebhook(input: WebhookInput & { name: string; url: string }) {
    const now = this.#clock.now();
    const webhookId = `wh-${randomBytes(9).toString('hex').slice(0, 17)}`;
    const secret = newSecret();
    const rec: WebhookRecord = {
      webhookId,
      name: checkName(input.name),
      url: checkUrl(input.url),
      description: input.description ?? null,
      eventPatterns: checkPatterns(input.eventPatterns ?? []),
      secretCiphertext: sealSecret(this.#masterKey, label(webhookId), secret),
      caBundle: checkCa(input.caBundle),
      enabled: input.enabled ?? true,
      maxAttempts: checkAttempts(input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS),
      createdAt: now,
      updatedAt: now,
    };
    await repositories(this.#db).webhooks.insert(rec);
    return { webhook: view(rec), signingSecret: secret };
  }

  async updateWebhook(input: WebhookInput & { webhookId: string; rotateSecret?: boolean }) {
    const r = repositories(this.#db);
    const old = await this.#require(input.webhookId);
    const secret = input.rotateSecret ? newSecret() : undefined;
    const patch: Partial<WebhookRecord> = {
      ...(input.name !== undefined ? { name: checkName(input.name) } : {}),
      ...(input.url !== undefined ? { url: checkUrl(input.url) } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.eventPatterns !== undefined ? { eventPatterns: checkPatterns(input.eventPatterns) } : {}),
      ...(input.caBundle !== undefined ? { caBundle: checkCa(input.caBundle) } : {}),
      ...(input.enabled !== undefined ? { enabled: input.enabled } : {}),
      ...(input.maxAttempts !== undefined ? { maxAttempts: checkAttempts(input.maxAttempts) } : {}),
      ...(secret ? { secretCiphertext: sealSecret(this.#masterKey, label(old.webhookId), secret) } : {}),
      updatedAt: this.#clock.now(),
    };
    await r.webhooks.update(old.webhookId, patch);
    return { webhook: view({ ...old, ...patch }), ...(secret ? { signingSecret: secret } : {}) };
  }

  async getWebhook(input: { webhookId: string }) {
    const w = await this.#require(input.webhookId);
    const counts = await this.#counts(w.webhookId);
    return { webhook: { ...view(w), ...counts } };
  }

  async listWebhooks() {
    const all = await repositories(this.#db).webhooks.all();
    return { webhooks: all.map(view) };
  }

  async deleteWebhook(input: { webhookId: string }) {
    await this.#require(input.webhookId);
    await this.#db.transaction((tx) => repositories(tx).webhooks.delete(input.webhookId));
    return {};
  }

  /** Queues a `Webhook Test` event for this webhook only (even when disabled). */
  async testWebhook(input: { webhookId: string }) {
    const w = await this.#require(input.webhookId);
    const event = await this.#db.transaction((tx) =>
      this.#log.record(
        tx,
        {
          detailType: 'Webhook Test',
          resources: [w.webhookId],
          detail: { webhookId: w.webhookId, name: w.name },
        },
        w.webhookId,
      ),
    );
    return { eventId: event.id };
  }

  async listWebhookDeliveries(input: {
    webhookId?: string;
    state?: string;
    maxResults?: number;
    nextToken?: string;
  }) {
    if (input.state !== undefined && !DELIVERY_STATES.includes(input.state)) {
      throw new InvalidArgumentError(`state must be one of ${DELIVERY_STATES.join(', ')}`, {
        member: 'state',
      });
    }
    const page = await repositories(this.#db).deliveries.page(
      { after: decodeToken('ListWebhookDeliveries', input.nextToken), limit: pageSize(input.maxResults) },
      {
        ...(input.webhookId !== undefined ? { webhookId: input.webhookId } : {}),
        ...(input.state !== undefined ? { state: input.state } : {}),
      },
    );
    const nextToken = encodeToken('ListWebhookDeliveries', page.next);
    return { deliveries: page.items.map(deliveryView), ...(nextToken ? { nextToken } : {}) };
  }

  /**
   * Sends deliveries again from their first attempt: the ones named, or every DEAD one of
   * a webhook. A DELIVERED one may be named too (a receiver that lost what it got).
   */
  async redeliverWebhookDeliveries(input: { deliveryIds?: string[]; webhookId?: string }) {
    if ((input.deliveryIds === undefined) === (input.webhookId === undefined)) {
      throw new InvalidArgumentError('give deliveryIds or webhookId (exactly one)', {
        member: 'deliveryIds',
      });
    }
    const now = this.#clock.now();
    return this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const ids =
        input.deliveryIds ??
        (await r.deliveries.forWebhook(input.webhookId!, 'DEAD')).map((d) => d.deliveryId);
      let redelivered = 0;
      for (const id of ids) {
        if (!(await r.deliveries.get(id)))
          throw new NotFoundError(`no webhook delivery ${id}`, { deliveryId: id });
        redelivered += await r.deliveries.update(
          id,
          {
            state: 'PENDING',
            attempts: 0,
            nextAttemptAt: now,
            leaseOwner: null,
            leaseUntil: null,
            updatedAt: now,
          },
          { field: 'state', in: ['DEAD', 'DELIVERED'] },
        );
      }
      return { redelivered };
    });
  }

  /** The signing secret of a webhook (for the dispatcher only). */
  secretOf(w: WebhookRecord): string {
    return openSecret(this.#masterKey, label(w.webhookId), w.secretCiphertext, `webhook ${w.webhookId}`);
  }

  async #require(webhookId: string): Promise<WebhookRecord> {
    const w = await repositories(this.#db).webhooks.get(webhookId);
    if (!w) throw new NotFoundError(`no webhook ${webhookId}`, { resource: 'webhook', webhookId });
    return w;
  }

  async #counts(webhookId: string) {
    const counts = await repositories(this.#db).deliveries.countByState(webhookId);
    const n = (s: string) => counts[s] ?? 0;
    return {
      pendingDeliveries: n('PENDING'),
      deliveredDeliveries: n('DELIVERED'),
      deadDeliveries: n('DEAD'),
    };
  }
}

function view(w: WebhookRecord) {
  return {
    webhookId: w.webhookId,
    name: w.name,
    url: w.url,
    ...(w.description !== null ? { description: w.description } : {}),
    eventPatterns: w.eventPatterns,
    enabled: w.enabled,
    maxAttempts: w.maxAttempts,
    hasCaBundle: w.caBundle !== null,
    createdAt: w.createdAt,
    updatedAt: w.updatedAt,
  };
}

export function deliveryView(d: DeliveryRecord) {
  return {
    deliveryId: d.deliveryId,
    webhookId: d.webhookId,
    eventId: d.eventId,
    state: d.state,
    attempts: d.attempts,
    ...(d.nextAttemptAt !== null && d.state === 'PENDING' ? { nextAttemptAt: d.nextAttemptAt } : {}),
    ...(d.lastStatus !== null ? { lastStatus: d.lastStatus } : {}),
    ...(d.lastError !== null ? { lastError: d.lastError } : {}),
    createdAt: d.createdAt,
    ...(d.deliveredAt !== null ? { deliveredAt: d.deliveredAt } : {}),
  };
}

function checkName(name: string): string {
  if (name.trim().length === 0 || name.length > 128)
    throw new InvalidArgumentError('name must be 1–128 characters', { member: 'name' });
  return name;
}

function checkUrl(url: string): string {
  let u: URL;
  try {
    if (url.length > MAX_URL) throw new Error('too long');
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError(`url is not a valid URL (at most ${MAX_URL} characters)`, {
      member: 'url',
    });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new InvalidArgumentError('url must be http:// or https://', { member: 'url' });
  // Credentials in the URL would be shown by every listing; receivers check the signature instead.
  if (u.username || u.password)
    throw new InvalidArgumentError('url must not contain credentials (verify the signature instead)', {
      member: 'url',
    });
  return u.toString();
}

function checkPatterns(patterns: readonly string[]): string[] {
  const bad = patterns.filter((p) => !isKnownPattern(p));
  if (bad.length > 0)
    throw new InvalidArgumentError(
      `unknown event pattern ${JSON.stringify(bad[0])}: name a source or a detail type (docs/events.md)`,
      { member: 'eventPatterns' },
    );
  return [...new Set(patterns)];
}

function checkCa(pem: string | undefined): string | null {
  if (pem === undefined || pem === '') return null;
  if (pem.length > MAX_CA_BUNDLE || !pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new InvalidArgumentError('caBundle must be PEM certificates (at most 64 KiB)', {
      member: 'caBundle',
    });
  return pem;
}

function checkAttempts(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_ATTEMPTS_LIMIT)
    throw new InvalidArgumentError(`maxAttempts must be 1–${MAX_ATTEMPTS_LIMIT}`, { member: 'maxAttempts' });
  return n;
}
