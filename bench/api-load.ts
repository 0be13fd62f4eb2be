/**
 * Load generator for bench/api-latency.ts, run as its own process so its CPU does not
 * count against the server: open-loop GetServers at a fixed rate, each page chosen at
 * random from the catalog's pages, latency measured from the scheduled send time (so
 * queueing is not hidden: no coordinated omission).
 *
 *   node dist/bench/api-load.js URL ACCESS_KEY SECRET RATE SECONDS
 */
import { request } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

const [url = '', accessKeyId = '', secretAccessKey = '', rateText = '200', secondsText = '10'] =
  process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
const target = new URL(url);
const signer = new SignatureV4({
  credentials: { accessKeyId, secretAccessKey },
  region: 'us-east-1',
  service: 'sms',
  sha256: Hash.bind(null, 'sha256'),
});
const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 64 });

async function call(body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const req = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: target.hostname,
    port: Number(target.port),
    path: '/',
    headers: {
      host: target.host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'AWSServerMigrationService_V2016_10_24.GetServers',
    },
    body,
  });
  const signed = await signer.sign(req);
  return new Promise((resolve, reject) => {
    const r = request(
      { host: target.hostname, port: target.port, method: 'POST', path: '/', headers: signed.headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
          }),
        );
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

// Walk the catalog once to learn every page's token.
const tokens: (string | undefined)[] = [undefined];
for (let next: string | undefined; ;) {
  const page = await call(JSON.stringify(next ? { nextToken: next } : {}));
  next = page.json.nextToken as string | undefined;
  if (!next) break;
  tokens.push(next);
}

const latencies: number[] = [];
let errors = 0;
const started = performance.now();
const total = rate * seconds;
const pending: Promise<void>[] = [];
for (let i = 0; i < total; i++) {
  const due = started + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const token = tokens[Math.floor(Math.random() * tokens.length)];
  pending.push(
    call(JSON.stringify(token ? { nextToken: token } : {}))
      .then((r) => {
        if (r.status !== 200) errors++;
        latencies.push(performance.now() - due);
      })
      .catch(() => {
        errors++;
      }),
  );
}
await Promise.all(pending);
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
process.stdout.write(
  JSON.stringify({
    requests: total,
    errors,
    pages: tokens.length,
    achievedRate: total / ((performance.now() - started) / 1000),
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: latencies[latencies.length - 1],
  }) + '\n',
);
agent.destroy();
