/**
 * What one LaunchApp launches: the app's launch configuration as groups of servers, each
 * server's image and boot files (user data, configure script), resolved when LaunchApp is
 * called so a missing file refuses the launch at once.
 */
import type { Disk } from '../disk/index.js';
import { InvalidArgumentError, OperationNotPermittedError } from '../errors/index.js';
import type { ScriptType } from '../launch/index.js';
import { openImageDisk, type Repository } from '../store/index.js';
import type { LocalObjects, S3LocationInput } from './objects.js';

export interface LaunchServer {
  readonly serverId: string;
  readonly logicalId?: string;
  readonly instanceType?: string;
  readonly userData?: { readonly s3Location?: S3LocationInput };
  readonly configureScript?: S3LocationInput;
  readonly configureScriptType?: string;
}

/** What an instance reads at first boot (a NoCloud seed), resolved when LaunchApp is called. */
export interface BootFiles {
  readonly userData?: Buffer;
  readonly configureScript?: { readonly type: ScriptType; readonly body: Buffer };
}
export interface LaunchGroup {
  readonly serverGroupId: string;
  readonly launchOrder?: number;
  readonly servers: readonly LaunchServer[];
}

export interface LaunchStep {
  readonly group: LaunchGroup;
  readonly server: LaunchServer;
  readonly imageId: string;
  readonly boot: BootFiles;
}

/** The server's user data and configure script from the local bucket (refused if missing). */
export async function bootFiles(objects: LocalObjects | undefined, server: LaunchServer): Promise<BootFiles> {
  const want = server.userData?.s3Location ?? server.configureScript;
  if (!want) return {};
  if (!objects) throw new OperationNotPermittedError('this launch host has no local bucket for user data');
  const type = server.configureScriptType ?? 'SHELL_SCRIPT';
  if (type !== 'SHELL_SCRIPT' && type !== 'POWERSHELL_SCRIPT') {
    throw new InvalidArgumentError(`configureScriptType ${type} is not SHELL_SCRIPT or POWERSHELL_SCRIPT`);
  }
  return {
    ...(server.userData?.s3Location ? { userData: await objects.get(server.userData.s3Location) } : {}),
    ...(server.configureScript
      ? { configureScript: { type, body: await objects.get(server.configureScript) } }
      : {}),
  };
}

/** Every disk of an image, opened for reading (the instance owns and closes them). */
export async function imageDisks(store: Repository, imageId: string): Promise<Disk[]> {
  const first = await openImageDisk(store, imageId, 0);
  const disks: Disk[] = [first.disk];
  try {
    for (let i = 1; i < first.image.disks.length; i++)
      disks.push((await openImageDisk(store, imageId, i)).disk);
  } catch (err) {
    await Promise.allSettled(disks.map((d) => d.close()));
    throw err;
  }
  return disks;
}
