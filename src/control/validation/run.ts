/**
 * Running validations during a launch (launches.ts): after each launch-order group starts,
 * its servers' checks (checks.ts) run against their instances and must all pass — and no
 * SMS validation of those servers may have been reported FAILED (NotifyAppValidationOutput)
 * — before the next group launches. After the last group, the app-level SSM validations
 * run their commands on the launch host. Every outcome is recorded as the validation's
 * output (GetAppValidationOutput).
 */
import { repositories, type Database } from '../../db/index.js';
import type { Clock } from '../clock.js';
import { requireApp } from '../apps.js';
import type { LocalObjects } from '../objects.js';
import type { ChecksBody, ServerCheck } from './checks.js';
import { DEFAULT_CHECK_TIMEOUT_S } from './checks.js';
import { consoleProbe, httpProbe, scriptProbe, tcpProbe, type ProbeResult } from '../../launch/index.js';
export { freeLoopbackPort } from '../../launch/index.js';

export interface GroupMember {
  readonly serverId: string;
  readonly instanceId: string;
  readonly consoleLog: string;
  /** Guest port → host loopback port. */
  readonly forwards: ReadonlyMap<number, number>;
  consoleText(): Promise<string>;
  stopped(): boolean;
  /** TCP/HTTP checks where the forwards are (a remote launch host's loopback); default: here. */
  probe?(check: NetworkCheck, timeoutMs: number): Promise<ProbeResult>;
}

/** A TCP or HTTP check of a guest port, as sent to a remote launch host. */
export interface NetworkCheck {
  readonly kind: 'tcp' | 'http';
  readonly guestPort: number;
  readonly path?: string;
  readonly status?: number;
  readonly bodyPattern?: string;
}

interface StoredOutput {
  readonly validationId: string;
  readonly status: string;
  readonly statusMessage?: string;
  readonly latestValidationTime: number;
}

/** How often a group's wait looks for a FAILED notification. */
const NOTIFY_POLL_MS = 1000;

export class LaunchValidator {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #objects: LocalObjects | undefined;

  constructor(db: Database, clock: Clock, objects?: LocalObjects) {
    this.#db = db;
    this.#clock = clock;
    this.#objects = objects;
  }

  /** Guest ports each server's checks probe (to forward when launching it). */
  async probedPorts(appId: string, serverId: string): Promise<number[]> {
    const body = (await requireApp(repositories(this.#db), appId)).body as ChecksBody;
    const ports = (body.checks?.[serverId]?.checks ?? []).flatMap((c) =>
      c.port !== undefined ? [c.port] : [],
    );
    return [...new Set(ports)];
  }

  /** Runs the group's checks; resolves ok, or the first failure with its reason. */
  async validateGroup(appId: string, members: readonly GroupMember[]): Promise<ProbeResult> {
    const body = (await requireApp(repositories(this.#db), appId)).body as ChecksBody;
    let done = false;
    const notified = this.#watchNotifications(appId, members, () => done);
    const runs = members.map(async (m) => {
      const set = body.checks?.[m.serverId];
      if (!set) return { ok: true, message: '' };
      await this.#record(appId, set.validationId, 'IN_PROGRESS', `Checking ${m.instanceId}.`);
      let result: ProbeResult = { ok: true, message: '' };
      const passed: string[] = [];
      // Once the group is decided (a FAILED notification won the race), checks still
      // waiting give up instead of polling on to their own timeouts.
      const live: GroupMember = { ...m, stopped: () => done || m.stopped() };
      for (const check of set.checks) {
        result = await runCheck(check, live);
        if (!result.ok || done) break;
        passed.push(result.message);
      }
      const message = done
        ? `${set.name ?? set.validationId} of server ${m.serverId} (${m.instanceId}): not finished, the group had already failed`
        : result.ok
          ? `${m.instanceId}: ${passed.join('; ')}`
          : `${set.name ?? set.validationId} of server ${m.serverId} (${m.instanceId}): ${result.message}`;
      await this.#record(appId, set.validationId, result.ok && !done ? 'SUCCEEDED' : 'FAILED', message);
      return { ok: result.ok, message };
    });
    // The first failing server decides the group: the others are not waited for.
    const firstFailure = new Promise<ProbeResult[]>((resolve) => {
      for (const r of runs)
        void r.then(
          (x) => (x.ok ? undefined : resolve([x])),
          () => undefined,
        );
    });
    const results = await Promise.race([Promise.all(runs), notified.then((r) => [r]), firstFailure]);
    done = true;
    const failed = results.find((r) => !r.ok);
    if (failed) return failed;
    // A notification that arrived while the checks ran still counts.
    const late = await this.#failedNotification(appId, members);
    return late ?? { ok: true, message: 'passed' };
  }

  /** App-level SSM validations: their commands run on the launch host against the instances. */
  async validateApp(appId: string, members: readonly GroupMember[]): Promise<ProbeResult> {
    const app = await requireApp(repositories(this.#db), appId);
    const config = app.validationConfig as {
      app?: readonly {
        validationId: string;
        name?: string;
        ssmValidationParameters?: {
          command?: string;
          executionTimeoutSeconds?: number;
          source?: { s3Location?: { bucket?: string; key?: string } };
        };
      }[];
    } | null;
    const env = {
      FERRY_APP_ID: appId,
      FERRY_INSTANCES: JSON.stringify(
        members.map((m) => ({
          instanceId: m.instanceId,
          serverId: m.serverId,
          consoleLog: m.consoleLog,
          forwards: Object.fromEntries(m.forwards),
        })),
      ),
    };
    for (const v of config?.app ?? []) {
      const p = v.ssmValidationParameters;
      const location = p?.source?.s3Location;
      let command = p?.command;
      if (!command && location?.key && this.#objects) {
        command = (await this.#objects.get(location)).toString('utf8');
      }
      if (!command) continue;
      await this.#record(appId, v.validationId, 'IN_PROGRESS', 'Running.');
      const r = await scriptProbe(command, env, Math.min(p?.executionTimeoutSeconds ?? 3600, 3600) * 1000);
      await this.#record(appId, v.validationId, r.ok ? 'SUCCEEDED' : 'FAILED', r.message);
      if (!r.ok) return { ok: false, message: `app validation ${v.name ?? v.validationId}: ${r.message}` };
    }
    return { ok: true, message: 'passed' };
  }

  async #watchNotifications(
    appId: string,
    members: readonly GroupMember[],
    done: () => boolean,
  ): Promise<ProbeResult> {
    for (;;) {
      if (done()) return new Promise<ProbeResult>(() => undefined); // never wins the race
      const failed = await this.#failedNotification(appId, members).catch(() => undefined);
      if (failed) return failed;
      await new Promise((r) => setTimeout(r, NOTIFY_POLL_MS));
    }
  }

  /** An SMS server validation of one of the members reported FAILED, if any. */
  async #failedNotification(
    appId: string,
    members: readonly GroupMember[],
  ): Promise<ProbeResult | undefined> {
    const app = await requireApp(repositories(this.#db), appId);
    const servers = new Set(members.map((m) => m.serverId));
    const config = app.validationConfig as {
      groups?: readonly { servers: readonly { serverId: string; validationId: string; name?: string }[] }[];
    } | null;
    const ids = new Map(
      (config?.groups ?? []).flatMap((g) =>
        g.servers.filter((s) => servers.has(s.serverId)).map((s) => [s.validationId, s]),
      ),
    );
    const failed = ((app.validationOutputs ?? []) as StoredOutput[]).find(
      (o) => ids.has(o.validationId) && o.status === 'FAILED',
    );
    if (!failed) return undefined;
    const v = ids.get(failed.validationId)!;
    return {
      ok: false,
      message: `validation ${v.name ?? v.validationId} of server ${v.serverId} was reported FAILED${failed.statusMessage ? `: ${failed.statusMessage}` : ''}`,
    };
  }

  async #record(appId: string, validationId: string, status: string, statusMessage: string): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const app = await requireApp(r, appId);
      const outputs = ((app.validationOutputs ?? []) as StoredOutput[]).filter(
        (o) => o.validationId !== validationId,
      );
      outputs.push({
        validationId,
        status,
        statusMessage: statusMessage.slice(0, 2000),
        latestValidationTime: this.#clock.now(),
      });
      await r.apps.update(appId, { validationOutputs: outputs });
    });
  }
}

function runCheck(c: ServerCheck, m: GroupMember): Promise<ProbeResult> {
  const timeoutMs = (c.timeoutSeconds ?? DEFAULT_CHECK_TIMEOUT_S) * 1000;
  switch (c.kind) {
    case 'console':
      return consoleProbe(
        () => m.consoleText(),
        new RegExp(c.pattern!),
        timeoutMs,
        () => m.stopped(),
      );
    case 'tcp':
    case 'http': {
      const check: NetworkCheck = {
        kind: c.kind,
        guestPort: c.port!,
        ...(c.path !== undefined ? { path: c.path } : {}),
        ...(c.status !== undefined ? { status: c.status } : {}),
        ...(c.bodyPattern !== undefined ? { bodyPattern: c.bodyPattern } : {}),
      };
      return m.probe
        ? m.probe(check, timeoutMs)
        : probeHere(check, m.forwards.get(check.guestPort), timeoutMs);
    }
    case 'script':
      return scriptProbe(
        c.command!,
        {
          FERRY_INSTANCE_ID: m.instanceId,
          FERRY_SERVER_ID: m.serverId,
          FERRY_CONSOLE_LOG: m.consoleLog,
          FERRY_FORWARDS: JSON.stringify(Object.fromEntries(m.forwards)),
        },
        timeoutMs,
      );
  }
}

/** A TCP or HTTP check through this machine's loopback forward of the guest port. */
function probeHere(c: NetworkCheck, hostPort: number | undefined, timeoutMs: number): Promise<ProbeResult> {
  if (hostPort === undefined)
    return Promise.resolve({
      ok: false,
      message: `guest port ${c.guestPort} is not forwarded (tap network?)`,
    });
  if (c.kind === 'tcp') return tcpProbe('127.0.0.1', hostPort, timeoutMs);
  return httpProbe(
    '127.0.0.1',
    hostPort,
    {
      path: c.path ?? '/',
      ...(c.status !== undefined ? { status: c.status } : {}),
      ...(c.bodyPattern !== undefined ? { bodyPattern: new RegExp(c.bodyPattern) } : {}),
    },
    timeoutMs,
  );
}
