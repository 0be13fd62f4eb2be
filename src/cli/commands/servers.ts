/**
 * `ferry servers [--json]`: the server catalog of a running `ferry server` (GetServers, every
 * page). `ferry servers import`: re-reads the sources (ImportServerCatalog; the server
 * imports in the background, so list again a moment later).
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { needPositionals, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS, CLIENT_USAGE } from '../remote/connection.js';
import { allPages, PAGE_SIZE } from '../remote/pages.js';
import { withRemote } from '../remote/session.js';
import { cell, renderTable } from '../table.js';

const USAGE = `ferry servers [import] ${CLIENT_USAGE}`;

export async function serversCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, CLIENT_OPTIONS, USAGE);
  const [action, ...rest] = positionals;
  if (action !== undefined && action !== 'import') {
    throw new InvalidArgumentError(`unknown servers command ${JSON.stringify(action)}\nusage: ${USAGE}`);
  }
  needPositionals(rest, 0, USAGE);
  return withRemote(values, async (remote) => {
    if (action === 'import') {
      await remote.call((s, o) => s.importServerCatalog({}, o));
      if (values.json) writeJson({ importing: true });
      else process.stdout.write('catalog import started; `ferry servers` lists the result\n');
      return 0;
    }
    const servers = await allPages(async (nextToken) => {
      const out = await remote.call((s, o) => s.getServers({ maxResults: PAGE_SIZE, nextToken }, o));
      return { items: out.serverList, nextToken: out.nextToken };
    });
    if (values.json) {
      writeJson(servers);
      return 0;
    }
    if (servers.length === 0) {
      process.stdout.write('(no servers in the catalog)\n');
      return 0;
    }
    process.stdout.write(
      renderTable(
        ['SERVER ID', 'NAME', 'VM ID', 'VM MANAGER', 'JOB'],
        servers.map((s) => [
          cell(s.serverId),
          cell(s.vmServer?.vmName),
          cell(s.vmServer?.vmServerAddress?.vmId),
          cell(s.vmServer?.vmManagerName ?? s.vmServer?.vmServerAddress?.vmManagerId),
          cell(s.replicationJobId && !s.replicationJobTerminated ? s.replicationJobId : undefined),
        ]),
      ),
    );
    return 0;
  });
}
