/**
 * One webhook POST: bounded in time (connect + response), in what it reads back (the first
 * KiB of the response, for the delivery record), and never following redirects (a 3xx is
 * a failed attempt — the receiver's URL should be fixed, not chased).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const RESPONSE_SNIPPET_BYTES = 1024;

export interface PostResult {
  /** HTTP status, or undefined when no response arrived. */
  readonly status?: number;
  /** The first KiB of the response body, or the network error. */
  readonly text: string;
}

export function postJson(
  url: URL,
  body: string,
  headers: Record<string, string>,
  o: { timeoutMs: number; ca?: string | undefined },
): Promise<PostResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const options = {
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      },
      ...(o.ca ? { ca: o.ca } : {}),
    };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < RESPONSE_SNIPPET_BYTES) chunks.push(c.subarray(0, RESPONSE_SNIPPET_BYTES - size));
        size += c.length;
        if (size >= RESPONSE_SNIPPET_BYTES) res.destroy();
      });
      const finish = () =>
        done({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no response within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    req.on('error', (err) => done({ text: err.message }));
    req.end(body);
  });
}
