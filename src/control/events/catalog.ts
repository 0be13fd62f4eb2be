/**
 * Every event Ferry emits, as data (docs/events.md lists the same names; a test keeps
 * them in sync). Names follow EventBridge's conventions: a lower-case dotted `source`
 * naming the producing area, and a `detail-type` in words ("… State Change").
 */

export const EVENT_TYPES = {
  'Replication Job State Change': 'ferry.replication',
  'Replication Run State Change': 'ferry.replication',
  'Instance State Change': 'ferry.launch',
  'App Launch Status Change': 'ferry.launch',
  'App Lifecycle State Change': 'ferry.lifecycle',
  'App Validation Result': 'ferry.validation',
  'Webhook Test': 'ferry.webhooks',
} as const;

export type DetailType = keyof typeof EVENT_TYPES;
export type EventSource = (typeof EVENT_TYPES)[DetailType];

export const EVENT_SOURCES: readonly EventSource[] = [...new Set(Object.values(EVENT_TYPES))];

/** An event before it is stored: the log gives it an id and a time. */
export interface NewEvent {
  readonly detailType: DetailType;
  readonly resources: readonly string[];
  readonly detail: Readonly<Record<string, unknown>>;
}

/** An event as stored and listed. */
export interface FerryEvent extends NewEvent {
  readonly id: string;
  readonly source: EventSource;
  /** Epoch milliseconds. */
  readonly time: number;
}

/**
 * What a webhook receives: EventBridge's envelope (`version`, `id`, `detail-type`,
 * `source`, `time` as ISO 8601, `resources`, `detail`). `account` and `region` have no
 * meaning for a self-hosted service and are left out.
 */
export function envelope(e: FerryEvent): Record<string, unknown> {
  return {
    version: '0',
    id: e.id,
    'detail-type': e.detailType,
    source: e.source,
    time: new Date(e.time).toISOString(),
    resources: e.resources,
    detail: e.detail,
  };
}

/**
 * Whether a webhook's patterns select an event: no patterns selects every event;
 * otherwise a pattern equal to the event's source or detail type does.
 */
export function matches(patterns: readonly string[], e: { source: string; detailType: string }): boolean {
  return patterns.length === 0 || patterns.some((p) => p === e.source || p === e.detailType);
}

/** Patterns a webhook may name: a source or a detail type of the catalog. */
export function isKnownPattern(p: string): boolean {
  return p in EVENT_TYPES || (EVENT_SOURCES as readonly string[]).includes(p);
}
