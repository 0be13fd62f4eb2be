/**
 * `ferry connectors enrol` and `ferry hosts enrol`: a one-time enrolment token for a remote
 * connector or launch host, made on the data directory or through the running server.
 */
import { writeJson } from '../output.js';
import { withRemote } from '../remote/session.js';
import { iso, withControl } from './keys-common.js';
import { durationMs } from './keys-create.js';

export async function printEnrolmentToken(
  values: Parameters<typeof withControl>[0] &
    Parameters<typeof withRemote>[0] & { ttl?: string; description?: string; json?: boolean },
  role: 'connector' | 'host',
): Promise<void> {
  const input = {
    ...(role === 'host' ? { role } : {}),
    ...(values.ttl !== undefined ? { ttlSeconds: durationMs(values.ttl) / 1000 } : {}),
    ...(values.description !== undefined ? { description: values.description } : {}),
  };
  const out =
    values['data-dir'] !== undefined
      ? await withControl(values, ({ control }) => control.enrolment.createEnrolmentToken(input))
      : await withRemote(values, async (r) => {
          const o = await r.ferry<{ enrolmentToken: string; expiresAt: number }>(
            'CreateEnrolmentToken',
            input,
          );
          return { ...o, expiresAt: o.expiresAt * 1000 };
        });
  if (values.json) writeJson({ enrolmentToken: out.enrolmentToken, expiresAt: iso(out.expiresAt) });
  else process.stdout.write(`${out.enrolmentToken}\n(single use, expires ${iso(out.expiresAt)})\n`);
}
