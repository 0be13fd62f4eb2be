/**
 * Launching on a remote launch host: one `instance.launch` call over the host's link; the
 * host reads the image back through the same link (hosts/service.ts serve()).
 */
import type { LinkSlot } from '../../link/index.js';
import type { BootFiles } from '../launch-plan.js';
import { RemoteInstance } from './remote-instance.js';

/** A launch on a host: reading the first blocks over the link and starting QEMU (minutes at most). */
const LAUNCH_CALL_MS = 300_000;

export interface RemoteLaunch {
  readonly instanceId: string;
  readonly name: string;
  readonly imageId: string;
  readonly disks: number;
  readonly type: string;
  readonly options: Record<string, unknown>;
  readonly guestPorts: readonly number[];
  readonly seed?: Record<string, unknown>;
}

export async function launchRemote(
  placed: { hostId: string; slot: LinkSlot },
  req: RemoteLaunch,
): Promise<RemoteInstance> {
  const peer = await placed.slot.link();
  const { result } = await peer
    .call('instance.launch', req, undefined, { timeoutMs: LAUNCH_CALL_MS })
    .catch(async (err: unknown) => {
      // The host may have started it before the answer was lost: nothing may be left there.
      await placed.slot.peer
        ?.call('instance.terminate', { instanceId: req.instanceId, timeoutMs: 0 })
        .catch(() => undefined);
      throw err;
    });
  const forwards = new Map<number, number>();
  for (const f of (result as { forwards?: { guestPort: number; hostPort: number }[] }).forwards ?? [])
    if (Number.isInteger(f.guestPort) && Number.isInteger(f.hostPort)) forwards.set(f.guestPort, f.hostPort);
  return new RemoteInstance(req.instanceId, placed.hostId, placed.slot, { state: 'running', forwards });
}

/** User data and a configure script as the host's seed builder takes them (base64 in JSON). */
export function seedParams(instanceId: string, hostname: string, boot: BootFiles): Record<string, unknown> {
  return {
    instanceId,
    hostname,
    ...(boot.userData ? { userData: boot.userData.toString('base64') } : {}),
    ...(boot.configureScript
      ? {
          configureScript: {
            type: boot.configureScript.type,
            body: boot.configureScript.body.toString('base64'),
          },
        }
      : {}),
  };
}
