/**
 * Instances as operators see them (`ferry instances`, the ListInstances and
 * GetInstanceConsole extension operations): read from the `instances` table and the
 * instance directories, so they answer whether or not this process is the launch host.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { repositories, type Database, type InstanceRecord } from '../db/index.js';
import { NotFoundError, OperationNotPermittedError } from '../errors/index.js';
import type { LaunchService } from './launches.js';

/** The console shows the end of a long log: a guest may print without end. */
export const CONSOLE_TAIL_BYTES = 1024 * 1024;

export class InstanceQueries {
  readonly #db: Database;
  readonly #host: LaunchService | undefined;

  constructor(db: Database, host?: LaunchService) {
    this.#db = db;
    this.#host = host;
  }

  async list(input: { appId?: string } = {}): Promise<{ instances: InstanceRecord[] }> {
    const r = repositories(this.#db).instances;
    return { instances: input.appId !== undefined ? await r.forApp(input.appId) : await r.all() };
  }

  /** Stop, start or terminate each instance in turn on this launch host. */
  async act(verb: 'stop' | 'start' | 'terminate', input: { instanceIds: readonly string[] }) {
    const host = this.#host;
    if (!host) {
      throw new OperationNotPermittedError(
        'this server is not a launch host (it has no image store or instance directory)',
      );
    }
    const instances: InstanceRecord[] = [];
    for (const id of input.instanceIds) {
      instances.push(
        verb === 'stop'
          ? await host.host.stopInstance(id)
          : verb === 'start'
            ? await host.host.startInstance(id)
            : await host.host.terminateInstance(id),
      );
    }
    return { instances };
  }

  /** The last CONSOLE_TAIL_BYTES of the instance's serial console log (empty before it printed). */
  async console(input: { instanceId: string }): Promise<{ instanceId: string; output: string }> {
    const rec = await repositories(this.#db).instances.get(input.instanceId);
    if (!rec) {
      throw new NotFoundError(`no instance ${input.instanceId}`, {
        resource: 'instance',
        instanceId: input.instanceId,
      });
    }
    if (rec.hostId !== null) {
      // On a remote launch host: its console comes over the host's link.
      const live = this.#host?.host.live(rec.instanceId);
      return {
        instanceId: rec.instanceId,
        output: live ? await live.consoleText({ maxBytes: CONSOLE_TAIL_BYTES }) : '',
      };
    }
    return { instanceId: rec.instanceId, output: await tail(join(rec.dir, 'console.log')) };
  }
}

async function tail(path: string): Promise<string> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return '';
  try {
    const { size } = await fh.stat();
    const n = Math.min(size, CONSOLE_TAIL_BYTES);
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, size - n);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}
