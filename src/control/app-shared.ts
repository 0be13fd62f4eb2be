/** Helpers the app configuration services share: checking that groups and servers belong to an app. */
import { InvalidArgumentError, ParameterMissingError } from '../errors/index.js';
import type { Repositories } from '../db/index.js';
import type { AppBody, StoredGroup } from './apps.js';
import { serverView, type ServerView } from './views.js';

/** The app's group with this id, or FERRY_INVALID_ARGUMENT naming the member. */
export function groupOf(body: AppBody, serverGroupId: string | undefined, member: string): StoredGroup {
  if (!serverGroupId) throw new ParameterMissingError(`${member}.serverGroupId is required`, { member });
  const g = body.serverGroups.find((x) => x.serverGroupId === serverGroupId);
  if (!g) {
    throw new InvalidArgumentError(`${member}: the application has no server group ${serverGroupId}`, {
      member,
    });
  }
  return g;
}

/** The server id of `server`, checked to be a member of `group`. */
export function serverIn(
  group: StoredGroup,
  server: { serverId?: string } | undefined,
  member: string,
): string {
  const id = server?.serverId;
  if (!id) throw new ParameterMissingError(`${member}.server.serverId is required`, { member });
  if (!group.serverIds.includes(id)) {
    throw new InvalidArgumentError(`${member}: server ${id} is not in server group ${group.serverGroupId}`, {
      member,
    });
  }
  return id;
}

/** Rejects a server configured twice in one request. */
export function once(seen: Set<string>, id: string, member: string): void {
  if (seen.has(id)) throw new InvalidArgumentError(`${member}: server ${id} is configured twice`, { member });
  seen.add(id);
}

/** The catalog view of a server, or a minimal one when it left the catalog. */
export async function serverFor(r: Repositories, serverId: string): Promise<ServerView> {
  const s = await r.servers.get(serverId);
  return s ? serverView(s) : ({ serverId, serverType: 'VIRTUAL_MACHINE' } as unknown as ServerView);
}
