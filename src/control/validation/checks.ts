/**
 * Ferry's launch checks per server (what SMS's validation shapes cannot say: a console
 * pattern, a port, an HTTP answer), stored in the app record, run by run.ts after each
 * launch-order group, and reported through GetAppValidationOutput like SMS validations.
 */
import { repositories, type Database } from '../../db/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import type { Clock } from '../clock.js';
import { requireApp, type AppBody } from '../apps.js';
import { newId } from '../ids.js';

export const CHECK_KINDS = ['console', 'tcp', 'http', 'script'] as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

export interface ServerCheck {
  readonly kind: CheckKind;
  /** console: a regular expression the serial console must show. */
  readonly pattern?: string;
  /** tcp / http: the guest port (forwarded to the host's loopback for the probe). */
  readonly port?: number;
  /** http: path (default `/`), expected status (default any 2xx/3xx), body pattern. */
  readonly path?: string;
  readonly status?: number;
  readonly bodyPattern?: string;
  /** script: a shell command run on the launch host against the instance. */
  readonly command?: string;
  /** Default 300 s; at most 3600 s. */
  readonly timeoutSeconds?: number;
}

export interface ServerChecks {
  readonly validationId: string;
  readonly name?: string;
  readonly checks: readonly ServerCheck[];
}

export type ChecksBody = AppBody & { readonly checks?: Readonly<Record<string, ServerChecks>> };

/** Bounds: a check list is a handful; patterns are compiled and run on every console poll. */
const MAX_CHECKS = 16;
const MAX_PATTERN = 512;
const MAX_COMMAND = 8192;
export const DEFAULT_CHECK_TIMEOUT_S = 300;
const MAX_CHECK_TIMEOUT_S = 3600;

export class ChecksService {
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Sets (or with no checks, clears) the server's checks. */
  async putServerChecks(input: { appId: string; serverId: string; name?: string; checks?: ServerCheck[] }) {
    const checks = (input.checks ?? []).map((c, i) => validateCheck(c, `checks[${i}]`));
    if (checks.length > MAX_CHECKS) throw new InvalidArgumentError(`at most ${MAX_CHECKS} checks per server`);
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const app = await requireApp(r, input.appId);
      const body = app.body as ChecksBody;
      if (!body.serverGroups.some((g) => g.serverIds.includes(input.serverId))) {
        throw new InvalidArgumentError(`server ${input.serverId} is not in application ${input.appId}`, {
          member: 'serverId',
        });
      }
      const all = { ...(body.checks ?? {}) };
      if (checks.length === 0) delete all[input.serverId];
      else {
        all[input.serverId] = {
          validationId: body.checks?.[input.serverId]?.validationId ?? newId.validation(),
          ...(input.name !== undefined ? { name: input.name } : {}),
          checks,
        };
      }
      await r.apps.update(input.appId, { body: { ...body, checks: all }, updatedAt: this.#clock.now() });
    });
    return {};
  }

  async getServerChecks(input: { appId: string }) {
    const body = (await requireApp(repositories(this.#db), input.appId)).body as ChecksBody;
    return {
      servers: Object.entries(body.checks ?? {}).map(([serverId, c]) => ({ serverId, ...c })),
    };
  }
}

export function validateCheck(c: ServerCheck, member: string): ServerCheck {
  const bad = (why: string) => new InvalidArgumentError(`${member}: ${why}`, { member });
  if (!CHECK_KINDS.includes(c.kind)) throw bad(`kind must be one of ${CHECK_KINDS.join(', ')}`);
  const timeout = c.timeoutSeconds ?? DEFAULT_CHECK_TIMEOUT_S;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_CHECK_TIMEOUT_S)
    throw bad(`timeoutSeconds must be 1–${MAX_CHECK_TIMEOUT_S}`);
  const regex = (p: string | undefined, what: string) => {
    if (p === undefined) return;
    if (p.length === 0 || p.length > MAX_PATTERN) throw bad(`${what} must be 1–${MAX_PATTERN} characters`);
    try {
      new RegExp(p);
    } catch (err) {
      throw bad(`${what} is not a regular expression: ${(err as Error).message}`);
    }
  };
  switch (c.kind) {
    case 'console':
      if (c.pattern === undefined) throw bad('a console check needs a pattern');
      regex(c.pattern, 'pattern');
      break;
    case 'tcp':
    case 'http':
      if (!Number.isInteger(c.port) || c.port! < 1 || c.port! > 65535) throw bad('port must be 1–65535');
      if (c.path !== undefined && !/^\/[\x21-\x7e]{0,1023}$/.test(c.path))
        throw bad('path must start with / (printable ASCII)');
      if (c.status !== undefined && (!Number.isInteger(c.status) || c.status < 100 || c.status > 599))
        throw bad('status must be 100–599');
      regex(c.bodyPattern, 'bodyPattern');
      break;
    case 'script':
      if (!c.command || c.command.length > MAX_COMMAND)
        throw bad(`a script check needs a command (≤ ${MAX_COMMAND} characters)`);
      break;
  }
  return {
    kind: c.kind,
    ...(c.pattern !== undefined ? { pattern: c.pattern } : {}),
    ...(c.port !== undefined ? { port: c.port } : {}),
    ...(c.path !== undefined ? { path: c.path } : {}),
    ...(c.status !== undefined ? { status: c.status } : {}),
    ...(c.bodyPattern !== undefined ? { bodyPattern: c.bodyPattern } : {}),
    ...(c.command !== undefined ? { command: c.command } : {}),
    timeoutSeconds: timeout,
  };
}
