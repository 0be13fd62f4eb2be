/**
 * How each server of an app boots on the launch host, beyond what SMS's launch
 * configuration says (instance type, user data): disk bus, NIC model, firmware, network and
 * MAC address. Defaults come from the source's facts (its firmware: a UEFI source boots
 * with UEFI); the operator overrides per server (PutServerLaunchOptions, `ferry apps
 * options`), e.g. `ide` + `e1000` for a Windows guest without virtio drivers, or the
 * source's MAC address on a bridged network for a cutover.
 */
import { repositories, type Database, type Repositories } from '../db/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import {
  BUSES,
  NIC_MODELS,
  parseNetwork,
  type DiskBus,
  type Firmware,
  type NicModel,
} from '../launch/index.js';
import type { Clock } from './clock.js';
import { requireApp, type AppBody } from './apps.js';
import { LIVE_JOB_STATES } from './states.js';

export interface ServerLaunchOptions {
  readonly bus?: DiskBus;
  readonly nicModel?: NicModel;
  readonly firmware?: Firmware;
  /** `user` or `tap:IFNAME`. */
  readonly network?: string;
  /** Use the source NIC's MAC address (from its facts). */
  readonly preserveMac?: boolean;
  /** An explicit MAC address (wins over preserveMac). */
  readonly macAddress?: string;
  /**
   * Launch this image of the server (an `ami-` of one of its runs) instead of its latest:
   * LaunchApp and test launches use it, a cutover always takes its final run's image.
   * Retention keeps a pinned image.
   */
  readonly imageId?: string;
  /**
   * Where it launches: `local` (default, this server's machine), `auto` (the connected
   * remote launch host with the most memory, else this machine) or a launch host id.
   */
  readonly host?: string;
}

type OptionsBody = AppBody & { readonly launchOptions?: Readonly<Record<string, ServerLaunchOptions>> };

/** What launchInstance gets for a server: its facts' defaults under the operator's overrides. */
export interface ResolvedLaunchOptions {
  readonly bus?: DiskBus;
  readonly nic?: NicModel;
  readonly firmware: Firmware;
  readonly network?: string;
  readonly mac?: string;
  /** Placement: `local`, `auto` or a launch host id. */
  readonly host?: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export class LaunchOptionsService {
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  async putServerLaunchOptions(input: { appId: string; serverId: string } & ServerLaunchOptions) {
    const { appId, serverId, ...options } = input;
    check(options);
    await this.#db.transaction(async (tx) => {
      const r = repositories(tx);
      const app = await requireApp(r, appId);
      const body = app.body as OptionsBody;
      if (!body.serverGroups.some((g) => g.serverIds.includes(serverId))) {
        throw new InvalidArgumentError(`server ${serverId} is not in application ${appId}`, {
          member: 'serverId',
        });
      }
      if (options.imageId !== undefined) await checkImageOfServer(r, serverId, options.imageId);
      const launchOptions = { ...(body.launchOptions ?? {}), [serverId]: options };
      await r.apps.update(appId, { body: { ...body, launchOptions }, updatedAt: this.#clock.now() });
    });
    return {};
  }

  async getServerLaunchOptions(input: { appId: string }) {
    const r = repositories(this.#db);
    const body = (await requireApp(r, input.appId)).body as OptionsBody;
    const out = [];
    for (const serverId of body.serverGroups.flatMap((g) => g.serverIds)) {
      const resolved = await resolveLaunchOptions(r, body, serverId);
      out.push({ serverId, ...(body.launchOptions?.[serverId] ?? {}), resolved });
    }
    return { servers: out };
  }
}

function check(o: ServerLaunchOptions): void {
  if (o.bus !== undefined && !BUSES.includes(o.bus)) {
    throw new InvalidArgumentError(`bus ${String(o.bus)} is not one of ${BUSES.join(', ')}`, {
      member: 'bus',
    });
  }
  if (o.nicModel !== undefined && !NIC_MODELS.includes(o.nicModel)) {
    throw new InvalidArgumentError(`nicModel ${String(o.nicModel)} is not one of ${NIC_MODELS.join(', ')}`, {
      member: 'nicModel',
    });
  }
  if (o.firmware !== undefined && o.firmware !== 'bios' && o.firmware !== 'uefi') {
    throw new InvalidArgumentError(`firmware ${String(o.firmware)} is not bios or uefi`, {
      member: 'firmware',
    });
  }
  if (o.network !== undefined) parseNetwork(o.network);
  if (o.host !== undefined && !/^(local|auto|h-[0-9a-f]{17})$/.test(o.host)) {
    throw new InvalidArgumentError(
      `host ${o.host.slice(0, 40)} is not local, auto or a launch host id (h-…)`,
      {
        member: 'host',
      },
    );
  }
  if (o.macAddress !== undefined && (!MAC.test(o.macAddress) || parseInt(o.macAddress.slice(0, 2), 16) & 1)) {
    throw new InvalidArgumentError(
      `macAddress ${o.macAddress.slice(0, 40)} is not a unicast aa:bb:cc:dd:ee:ff`,
      {
        member: 'macAddress',
      },
    );
  }
}

/** A pinned image must be one a run of this server made (and still lists). */
async function checkImageOfServer(r: Repositories, serverId: string, imageId: string): Promise<void> {
  const jobs = await r.jobs.forServer(serverId, LIVE_JOB_STATES);
  for (const job of jobs) {
    if ((await r.runs.withImages(job.replicationJobId)).some((run) => run.amiId === imageId)) return;
  }
  throw new InvalidArgumentError(`image ${imageId} was not made by a replication run of server ${serverId}`, {
    member: 'imageId',
  });
}

/** The image the app pins for a server, if any (launch-options `imageId`). */
export function pinnedImage(body: AppBody, serverId: string): string | undefined {
  return (body as OptionsBody).launchOptions?.[serverId]?.imageId;
}

/** The server's facts (catalog, else those its replication job kept) under the app's overrides. */
export async function resolveLaunchOptions(
  r: Repositories,
  body: AppBody,
  serverId: string,
): Promise<ResolvedLaunchOptions> {
  const over = (body as OptionsBody).launchOptions?.[serverId] ?? {};
  const facts = ((await r.servers.get(serverId))?.facts ?? {}) as {
    firmware?: string;
    nics?: readonly { macAddress?: string }[];
  };
  const sourceFirmware: Firmware = /^(efi|uefi)$/i.test(facts.firmware ?? '') ? 'uefi' : 'bios';
  const sourceMac = facts.nics?.find((n) => n.macAddress && MAC.test(n.macAddress.toLowerCase()))?.macAddress;
  const mac = over.macAddress ?? (over.preserveMac && sourceMac ? sourceMac.toLowerCase() : undefined);
  return {
    firmware: over.firmware ?? sourceFirmware,
    ...(over.bus ? { bus: over.bus } : {}),
    ...(over.nicModel ? { nic: over.nicModel } : {}),
    ...(over.network ? { network: over.network } : {}),
    ...(mac ? { mac } : {}),
    ...(over.host ? { host: over.host } : {}),
  };
}
