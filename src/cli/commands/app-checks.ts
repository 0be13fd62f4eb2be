/**
 * `ferry apps checks APP_ID` shows each server's launch checks; with SERVER_ID and check
 * flags it sets them (docs/launch.md, "Validation"):
 *
 *   ferry apps checks APP_ID SERVER_ID [--console REGEX]... [--tcp PORT]... [--http PORT[/PATH]]...
 *        [--script COMMAND]... [--timeout SECONDS] [--name N] | --clear
 *
 * Checks run in that order (console first: a service cannot answer before the guest booted).
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { intOption, parse } from '../args.js';
import { writeJson } from '../output.js';
import { CLIENT_OPTIONS, CLIENT_USAGE } from '../remote/connection.js';
import { withRemote } from '../remote/session.js';
import { cell, renderTable } from '../table.js';

const USAGE =
  `ferry apps checks APP_ID [SERVER_ID [--console REGEX] [--tcp PORT] [--http PORT[/PATH]] [--script CMD] ` +
  `[--timeout S] [--name N] | --clear] ${CLIENT_USAGE}`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  console: { type: 'string', multiple: true },
  tcp: { type: 'string', multiple: true },
  http: { type: 'string', multiple: true },
  script: { type: 'string', multiple: true },
  timeout: { type: 'string' },
  name: { type: 'string' },
  clear: { type: 'boolean' },
} as const;

interface Check {
  kind: string;
  pattern?: string;
  port?: number;
  path?: string;
  command?: string;
  timeoutSeconds?: number;
}

export async function appChecksCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, USAGE);
  const [appId, serverId, ...extra] = positionals;
  if (!appId || extra.length > 0) throw new InvalidArgumentError(`give APP_ID [SERVER_ID]\nusage: ${USAGE}`);
  const timeout = intOption(values.timeout, '--timeout');
  const t = timeout !== undefined ? { timeoutSeconds: timeout } : {};
  const port = (text: string) => {
    const n = intOption(text, 'a port');
    if (n === undefined || n < 1 || n > 65535) throw new InvalidArgumentError(`port ${text} is not 1–65535`);
    return n;
  };
  const checks: Check[] = [
    ...(values.console ?? []).map((pattern) => ({ kind: 'console', pattern, ...t })),
    ...(values.tcp ?? []).map((p) => ({ kind: 'tcp', port: port(p), ...t })),
    ...(values.http ?? []).map((h) => {
      const m = /^(\d+)(\/.*)?$/.exec(h);
      if (!m) throw new InvalidArgumentError(`--http ${h}: give PORT or PORT/PATH`);
      return { kind: 'http', port: port(m[1]!), ...(m[2] ? { path: m[2] } : {}), ...t };
    }),
    ...(values.script ?? []).map((command) => ({ kind: 'script', command, ...t })),
  ];
  if (!serverId && (checks.length > 0 || values.clear))
    throw new InvalidArgumentError(`give SERVER_ID\nusage: ${USAGE}`);
  if (serverId && checks.length === 0 && !values.clear) {
    throw new InvalidArgumentError(
      `give checks (--console, --tcp, --http, --script) or --clear\nusage: ${USAGE}`,
    );
  }
  return withRemote(values, async (remote) => {
    if (serverId) {
      await remote.ferry('PutServerChecks', {
        appId,
        serverId,
        ...(values.name ? { name: values.name } : {}),
        checks: values.clear ? [] : checks,
      });
    }
    const { servers } = await remote.ferry<{
      servers: { serverId: string; validationId: string; checks: Check[] }[];
    }>('GetServerChecks', { appId });
    if (values.json) writeJson(servers);
    else
      process.stdout.write(
        renderTable(
          ['SERVER', 'VALIDATION', 'CHECKS'],
          servers.map((s) => [
            s.serverId,
            s.validationId,
            cell(
              s.checks
                .map(
                  (c) =>
                    `${c.kind}:${c.pattern ?? c.command ?? `${c.port}${c.path ?? ''}`} (${c.timeoutSeconds}s)`,
                )
                .join(', '),
              160,
            ),
          ]),
        ),
      );
    return 0;
  });
}
