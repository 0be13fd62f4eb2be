/**
 * `ferry events` (the event log, optionally followed) and `ferry webhooks …` (where events
 * are POSTed): clients of a running server's ListEvents and webhook operations
 * (docs/events.md).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import { AbortedError, InvalidArgumentError } from '../../errors/index.js';
import { intOption, needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS, CLIENT_USAGE } from '../remote/connection.js';
import { allPages, PAGE_SIZE } from '../remote/pages.js';
import { withRemote, type Remote } from '../remote/session.js';

interface WireEvent {
  eventId: string;
  source: string;
  detailType: string;
  /** Epoch seconds (AWS JSON timestamps). */
  time: number;
  resources?: string[];
  detail: string;
}

const EVENTS_USAGE = `ferry events [--source S] [--type DETAIL_TYPE] [--resource ID] [--since 1h|ISO] [--follow] ${CLIENT_USAGE}`;
const FOLLOW_POLL_MS = 1000;

/** `--since` as a duration back from now (90s, 15m, 12h, 7d) or an ISO 8601 time. */
function sinceOption(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d{1,9})(s|m|h|d)$/.exec(v.trim());
  if (m) return Date.now() - Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2] as 's'];
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw new InvalidArgumentError(`--since takes 90s, 15m, 12h, 7d or an ISO time, not ${v}`);
  return t;
}

function line(e: WireEvent): string {
  const d = JSON.parse(e.detail) as Record<string, unknown>;
  const state = d.state ?? d.launchStatus ?? d.status;
  const was = d.previousState ?? d.previousLaunchStatus;
  const change = state === undefined ? '' : was ? `${String(was)} → ${String(state)}` : String(state);
  const time = new Date(e.time * 1000).toISOString();
  return `${time}  ${e.detailType.padEnd(28)}  ${(e.resources ?? []).slice(0, 2).join(' ').padEnd(44)}  ${change}`;
}

export async function eventsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...CLIENT_OPTIONS,
      source: { type: 'string' },
      type: { type: 'string' },
      resource: { type: 'string' },
      since: { type: 'string' },
      follow: { type: 'boolean' },
    },
    EVENTS_USAGE,
  );
  needPositionals(positionals, 0, EVENTS_USAGE);
  const filter = {
    ...(values.source !== undefined ? { source: values.source } : {}),
    ...(values.type !== undefined ? { detailType: values.type } : {}),
    ...(values.resource !== undefined ? { resourceId: values.resource } : {}),
  };
  const since = sinceOption(values.since);
  const show = (e: WireEvent) =>
    process.stdout.write(
      values.json ? `${JSON.stringify({ ...e, detail: JSON.parse(e.detail) })}\n` : `${line(e)}\n`,
    );
  return withRemote(values, async (remote) => {
    const list = (startTime: number | undefined) =>
      allPages<WireEvent>(async (nextToken) => {
        const out = await remote.ferry<{ events?: WireEvent[]; nextToken?: string }>('ListEvents', {
          ...filter,
          ...(startTime !== undefined ? { startTime: startTime / 1000 } : {}),
          maxResults: PAGE_SIZE,
          ...(nextToken ? { nextToken } : {}),
        });
        return { items: out.events, nextToken: out.nextToken };
      });
    const first = await list(since);
    if (!values.follow && values.json) writeJson(first.map((e) => ({ ...e, detail: JSON.parse(e.detail) })));
    else first.forEach(show);
    if (!values.follow) return 0;
    return follow(list, first.at(-1), show);
  });
}

/** Polls for events after the last one shown (ids are time-ordered) until Ctrl-C. */
async function follow(
  list: (startTime: number | undefined) => Promise<WireEvent[]>,
  last: WireEvent | undefined,
  show: (e: WireEvent) => void,
): Promise<number> {
  const abort = new AbortController();
  const onSignal = () => abort.abort(new AbortedError('stopped following'));
  process.once('SIGINT', onSignal);
  let lastId = last?.eventId ?? '';
  let lastTime = last ? last.time * 1000 : Date.now();
  try {
    for (;;) {
      await sleep(FOLLOW_POLL_MS, undefined, { signal: abort.signal }).catch(() => undefined);
      if (abort.signal.aborted) return 0;
      for (const e of await list(lastTime)) {
        if (e.eventId <= lastId) continue;
        show(e);
        lastId = e.eventId;
        lastTime = e.time * 1000;
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
  }
}

const WEBHOOKS_USAGE = `ferry webhooks create URL --name N [--events P,P…] [--webhook-ca PEM_FILE] [--max-attempts N] [--disabled]
  | list | show ID | delete ID | enable ID | disable ID | rotate-secret ID | test ID
  | deliveries [ID] [--state PENDING|DELIVERED|DEAD] | redeliver (DELIVERY_ID… | --webhook ID)   ${CLIENT_USAGE}`;

interface WireWebhook {
  webhookId: string;
  name: string;
  url: string;
  enabled: boolean;
  eventPatterns?: string[];
}

export async function webhooksCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parse(
    rest,
    {
      ...CLIENT_OPTIONS,
      name: { type: 'string' },
      events: { type: 'string' },
      'webhook-ca': { type: 'string' },
      'max-attempts': { type: 'string' },
      disabled: { type: 'boolean' },
      state: { type: 'string' },
      webhook: { type: 'string' },
    },
    WEBHOOKS_USAGE,
  );
  const one = () => needPositionals(positionals, 1, WEBHOOKS_USAGE)[0] as string;
  const print = (value: unknown, text: string) =>
    values.json ? writeJson(value) : process.stdout.write(`${text}\n`);
  const hookLine = (w: WireWebhook) =>
    `${w.webhookId}  ${w.enabled ? 'enabled ' : 'disabled'}  ${w.name}  ${w.url}  ${(w.eventPatterns ?? []).join(',') || '(all events)'}`;
  return withRemote(values, async (remote) => {
    switch (verb) {
      case 'create': {
        const url = one();
        if (values.name === undefined)
          throw new InvalidArgumentError(`--name is required\nusage: ${WEBHOOKS_USAGE}`);
        const out = await remote.ferry<{ webhook: WireWebhook; signingSecret: string }>('CreateWebhook', {
          name: values.name,
          url,
          ...(values.events ? { eventPatterns: values.events.split(',').map((p) => p.trim()) } : {}),
          ...(values['webhook-ca'] ? { caBundle: await readFile(values['webhook-ca'], 'utf8') } : {}),
          ...(values['max-attempts']
            ? { maxAttempts: intOption(values['max-attempts'], '--max-attempts') }
            : {}),
          ...(values.disabled ? { enabled: false } : {}),
        });
        print(out, `${hookLine(out.webhook)}\nsigning secret (shown once): ${out.signingSecret}`);
        return 0;
      }
      case 'list': {
        const { webhooks } = await remote.ferry<{ webhooks?: WireWebhook[] }>('ListWebhooks', {});
        print(webhooks ?? [], (webhooks ?? []).map(hookLine).join('\n') || '(no webhooks)');
        return 0;
      }
      case 'show': {
        const { webhook } = await remote.ferry<{ webhook: WireWebhook & Record<string, number> }>(
          'GetWebhook',
          {
            webhookId: one(),
          },
        );
        print(
          webhook,
          `${hookLine(webhook)}\ndeliveries: ${webhook.pendingDeliveries} pending, ${webhook.deliveredDeliveries} delivered, ${webhook.deadDeliveries} dead`,
        );
        return 0;
      }
      case 'delete':
        await remote.ferry('DeleteWebhook', { webhookId: one() });
        return 0;
      case 'enable':
      case 'disable':
      case 'rotate-secret': {
        const input = verb === 'rotate-secret' ? { rotateSecret: true } : { enabled: verb === 'enable' };
        const out = await remote.ferry<{ webhook: WireWebhook; signingSecret?: string }>('UpdateWebhook', {
          webhookId: one(),
          ...input,
        });
        print(
          out,
          hookLine(out.webhook) +
            (out.signingSecret ? `\nsigning secret (shown once): ${out.signingSecret}` : ''),
        );
        return 0;
      }
      case 'test': {
        const out = await remote.ferry<{ eventId: string }>('TestWebhook', { webhookId: one() });
        print(out, `queued ${out.eventId}`);
        return 0;
      }
      case 'deliveries':
        return deliveries(remote, positionals[0], values.state, values.json === true);
      case 'redeliver': {
        const input =
          values.webhook !== undefined ? { webhookId: values.webhook } : { deliveryIds: positionals };
        const out = await remote.ferry<{ redelivered: number }>('RedeliverWebhookDeliveries', input);
        print(out, `${out.redelivered} delivery(ies) queued again`);
        return 0;
      }
      default:
        throw new InvalidArgumentError(
          `unknown webhooks command ${verb ?? '(none)'}\nusage: ${WEBHOOKS_USAGE}`,
        );
    }
  });
}

async function deliveries(
  remote: Remote,
  webhookId: string | undefined,
  state: string | undefined,
  json: boolean,
): Promise<number> {
  type Wire = { deliveryId: string; eventId: string; state: string; attempts: number; lastError?: string };
  const all = await allPages<Wire>(async (nextToken) => {
    const out = await remote.ferry<{ deliveries?: Wire[]; nextToken?: string }>('ListWebhookDeliveries', {
      ...(webhookId ? { webhookId } : {}),
      ...(state ? { state } : {}),
      maxResults: PAGE_SIZE,
      ...(nextToken ? { nextToken } : {}),
    });
    return { items: out.deliveries, nextToken: out.nextToken };
  });
  if (json) writeJson(all);
  else
    process.stdout.write(
      (all
        .map(
          (d) =>
            `${d.deliveryId}  ${d.state.padEnd(9)}  ${d.eventId}  attempts ${d.attempts}  ${d.lastError ?? ''}`,
        )
        .join('\n') || '(no deliveries)') + '\n',
    );
  return 0;
}
