/**
 * The `ferry` command: parse → call → render. Each command is a file in commands/.
 * Every failure ends as one coded line on stderr and an exit code by kind (output.ts).
 */
import { InvalidArgumentError } from '../errors/index.js';
import { reportError } from './output.js';

type Command = (argv: string[]) => Promise<number>;

/**
 * Commands load on first use: `ferry image checksum` must not pay for the server's
 * dependencies (fastify, database drivers, AWS SDK) at start-up.
 */
function lazy(load: () => Promise<Record<string, unknown>>, name: string): Command {
  return async (argv) => ((await load())[name] as Command)(argv);
}

const COMMANDS: Record<string, Record<string, Command> | Command> = {
  image: {
    info: lazy(() => import('./commands/image-info.js'), 'imageInfo'),
    map: lazy(() => import('./commands/image-map.js'), 'imageMap'),
    checksum: lazy(() => import('./commands/image-checksum.js'), 'imageChecksum'),
    convert: lazy(() => import('./commands/image-convert.js'), 'imageConvert'),
    compare: lazy(() => import('./commands/image-compare.js'), 'imageCompare'),
  },
  server: lazy(() => import('./commands/server.js'), 'serverCommand'),
  servers: lazy(() => import('./commands/servers.js'), 'serversCommand'),
  jobs: lazy(() => import('./commands/jobs.js'), 'jobsCommand'),
  runs: lazy(() => import('./commands/runs.js'), 'runsCommand'),
  instances: lazy(() => import('./commands/instances.js'), 'instancesCommand'),
  apps: lazy(() => import('./commands/apps.js'), 'appsCommand'),
  waves: lazy(() => import('./commands/apps.js'), 'wavesCommand'),
  objects: lazy(() => import('./commands/objects.js'), 'objectsCommand'),
  events: lazy(() => import('./commands/events.js'), 'eventsCommand'),
  connector: lazy(() => import('./commands/connector.js'), 'connectorCommand'),
  connectors: lazy(() => import('./commands/connector.js'), 'connectorsCommand'),
  host: lazy(() => import('./commands/host.js'), 'hostCommand'),
  hosts: lazy(() => import('./commands/host.js'), 'hostsCommand'),
  webhooks: lazy(() => import('./commands/events.js'), 'webhooksCommand'),
  keys: {
    create: lazy(() => import('./commands/keys-create.js'), 'keysCreate'),
    list: lazy(() => import('./commands/keys-list.js'), 'keysList'),
    revoke: lazy(() => import('./commands/keys-revoke.js'), 'keysRevoke'),
  },
  store: {
    init: lazy(() => import('./commands/store-init.js'), 'storeInit'),
    check: lazy(() => import('./commands/store-check.js'), 'storeCheck'),
    gc: lazy(() => import('./commands/store-gc.js'), 'storeGc'),
    key: lazy(() => import('./commands/store-key.js'), 'storeKey'),
  },
  images: {
    write: lazy(() => import('./commands/images-write.js'), 'imagesWrite'),
    list: lazy(() => import('./commands/images-list.js'), 'imagesList'),
    show: lazy(() => import('./commands/images-list.js'), 'imagesShow'),
    delete: lazy(() => import('./commands/images-delete.js'), 'imagesDelete'),
    export: lazy(() => import('./commands/images-export.js'), 'imagesExport'),
  },
};

const HELP = `ferry — self-hosted server migration

usage: ferry <group> <command> [options]

image commands (disk engine):
  ferry image info FILE [--json]            format, sizes, chain, warnings
  ferry image map FILE [--json]             tagged extents (data / zero / unallocated / compressed)
  ferry image checksum FILE                 SHA-256 of the raw virtual contents
  ferry image convert SRC DST -O FORMAT     formats: raw qcow2 vmdk vhd vhdx (see --help of each)
  ferry image compare A B                   exit 0 identical, 1 different

control plane (docs/control-plane.md):
  ferry server --data-dir DIR --listen HOST:PORT --insecure-http [--images-dir SRC]
  ferry keys create|list|revoke [--data-dir DIR] [--json]   SigV4 access keys
  ferry connectors [list] | enrol [--ttl 1h] | disassociate ID [--data-dir DIR]   remote connectors
  ferry connector --server HOST:PORT --ca-bundle CA --state-dir DIR [--enrol-token T] (--images-dir SRC | --qmp-dir DIR)
  ferry hosts [list] | enrol [--ttl 1h] | disassociate ID [--data-dir DIR]   remote launch hosts
  ferry host --server HOST:PORT --ca-bundle CA --state-dir DIR [--enrol-token T]   a remote launch host
  ferry instances list|console [ID] [--data-dir DIR] [--json] instances LaunchApp started here

clients of a running server (SMS API; --endpoint URL or FERRY_ENDPOINT, --access-key-file F or
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --ca-bundle DATA_DIR/tls/ca.pem for Ferry's CA; --json):
  ferry servers [import]                         the server catalog
  ferry jobs [create SERVER_ID --frequency N [--seed ISO] [--run-once] | delete JOB_ID]
  ferry runs JOB_ID [--watch]                    runs of a job; --watch follows one to its end
  ferry runs start JOB_ID [--watch]              an on-demand run
  ferry apps lifecycle APP_ID                    migration lifecycle: state, instances, history
  ferry apps template APP_ID [--yaml]            a CloudFormation template of the app, printed
  ferry apps plan APP_ID > plan.json             the app as a Ferry launch plan
  ferry apps checks APP_ID [SERVER_ID --console RE --tcp P --http P/PATH --script CMD]   launch checks
  ferry apps options APP_ID [SERVER_ID --bus B --nic M --firmware F --network tap:IF --preserve-mac]
  ferry apps launch --plan FILE [--test|--cutover] [--wait]   create/update the plan's app here, launch it
  ferry apps test|ready|revert|cutover|revert-cutover|finalize|archive|unarchive (APP_ID | --wave W) [--wait]
  ferry waves [list | assign NAME APP_ID...]     apps migrated together
  ferry instances stop|start|terminate ID...     instances of this server's launches
  ferry objects put|get|list|delete KEY [FILE]   the local bucket ferry-local (user data, scripts)
  ferry events [--type T] [--resource ID] [--since 1h] [--follow]   the event log (docs/events.md)
  ferry webhooks create URL --name N [--events P,…] | list | show | test | deliveries | redeliver …

image store (docs/store.md): --data-dir DIR (a server's data directory: DIR/store and DIR/store.key;
the default when nothing else is given, like ferry server), or --repo DIR or FERRY_STORE_REPO with
key --key-file F, --passphrase-file F, or FERRY_STORE_KEY / FERRY_STORE_KEY_FILE / FERRY_STORE_PASSPHRASE:
  ferry store init --repo DIR --new-key-file F   create a repository (and a new master key)
  ferry store check [--read-data]                verify metadata (and every chunk)
  ferry store gc [--dry-run] [--wait S]          delete chunks no image needs
  ferry store key list|add|remove|rotate         key slots (rotation re-wraps, no data rewritten)
  ferry images write DISK... --name N [--job J]  one server image (ami-…) from disks of any format
  ferry images list|show|delete|export           list, inspect, delete (--job J --keep N), export
  ferry images export ami-ID OUT -O raw --disk N --data-dir DIR   disk N of a server's image

common options: -f FORMAT (source format; default: detected from content),
  --allow-external-references, --no-backing, --json, --progress / --no-progress
environment: FERRY_DEBUG=1 prints stack traces of errors
`;

export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    const [group, cmd, ...rest] = argv;
    if (!group || group === '--help' || group === '-h' || group === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    if (group === '--version') {
      process.stdout.write('ferry 0.1.0\n');
      return 0;
    }
    const commands = COMMANDS[group];
    if (!commands)
      throw new InvalidArgumentError(`unknown command group ${JSON.stringify(group)}\n\n${HELP}`);
    if (typeof commands === 'function') return await commands(argv.slice(1));
    const fn = cmd ? commands[cmd] : undefined;
    if (!fn) {
      throw new InvalidArgumentError(
        `unknown ${group} command ${JSON.stringify(cmd ?? '')}; one of: ${Object.keys(commands).join(', ')}`,
      );
    }
    return await fn(rest);
  } catch (err) {
    return reportError(err, json);
  }
}

// Last-resort guards: no stack trace ever reaches the user, even from a stray rejection.
process.on('uncaughtException', (err) => {
  process.exitCode = reportError(err, false);
  process.exit();
});
process.on('unhandledRejection', (err) => {
  process.exitCode = reportError(err, false);
  process.exit();
});
// A closed stdout (e.g. `| head`) is not an error worth a message.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

process.exitCode = await main(process.argv.slice(2));
