/**
 * Waves: applications migrated together (MGN's waves). A wave is a name on each of its
 * apps, so an app is in at most one wave and deleting an app leaves no dangling member.
 * Lifecycle actions given a wave apply to each of its apps in turn; one app's refusal does
 * not stop the others, and each app's outcome is reported.
 */
import { repositories, type Database } from '../../db/index.js';
import { InvalidArgumentError, NotFoundError, toFerryError } from '../../errors/index.js';
import type { Clock } from '../clock.js';
import { requireApp } from '../apps.js';
import { effectiveState, type LifecycleBody } from './record.js';

/** Wave names: short and printable (they appear in tables and event details). */
const WAVE_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

export interface WaveOutcome {
  readonly appId: string;
  readonly state?: string;
  readonly errorCode?: string;
  readonly errorMessage?: string;
}

export class Waves {
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Puts the apps in the wave (moving them from any other); an empty name takes them out. */
  async assignWave(input: { waveName: string; appIds: readonly string[] }): Promise<Record<string, never>> {
    const name = input.waveName;
    if (name !== '' && !WAVE_NAME.test(name)) {
      throw new InvalidArgumentError(
        `waveName ${JSON.stringify(name.slice(0, 80))} must be 1-64 letters, digits, spaces, '.', '_' or '-'`,
        { member: 'waveName' },
      );
    }
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      for (const appId of input.appIds) {
        const app = await requireApp(r, appId);
        const { wave: _old, ...rest } = app.body as LifecycleBody;
        const body = name === '' ? rest : { ...rest, wave: name };
        await r.apps.update(appId, { body, updatedAt: this.#clock.now() });
      }
    });
    return {};
  }

  /** Every wave with its apps and their lifecycle states. */
  async listWaves(): Promise<{
    waves: { waveName: string; apps: { appId: string; name: string; state: string }[] }[];
  }> {
    const r = repositories(this.#db);
    const waves = new Map<string, { appId: string; name: string; state: string }[]>();
    let after;
    do {
      const page = await r.apps.page({ after, limit: 500 });
      for (const app of page.items) {
        const body = app.body as LifecycleBody;
        if (!body.wave) continue;
        const { state } = await effectiveState(r, body);
        const list = waves.get(body.wave) ?? [];
        list.push({ appId: app.appId, name: body.name, state });
        waves.set(body.wave, list);
      }
      after = page.next;
    } while (after);
    return {
      waves: [...waves]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([waveName, apps]) => ({ waveName, apps })),
    };
  }

  /** The apps of a wave, or a coded refusal when it has none. */
  async appsOf(waveName: string): Promise<string[]> {
    const wave = (await this.listWaves()).waves.find((w) => w.waveName === waveName);
    if (!wave) throw new NotFoundError(`no wave ${JSON.stringify(waveName)}`, { resource: 'wave', waveName });
    return wave.apps.map((a) => a.appId);
  }

  /** Runs one lifecycle action on every app of the wave; each app's outcome is reported. */
  async each(
    waveName: string,
    action: (appId: string) => Promise<{ state: string }>,
  ): Promise<{ apps: WaveOutcome[] }> {
    const apps: WaveOutcome[] = [];
    for (const appId of await this.appsOf(waveName)) {
      try {
        apps.push({ appId, state: (await action(appId)).state });
      } catch (err) {
        const fe = toFerryError(err);
        apps.push({ appId, errorCode: fe.code, errorMessage: fe.message });
      }
    }
    return { apps };
  }
}
