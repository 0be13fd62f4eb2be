/**
 * The HTTP edge: a fastify app speaking the SMS wire protocol (AWS JSON 1.1).
 *
 *   POST <any path>   X-Amz-Target: AWSServerMigrationService_V2016_10_24.<Operation>
 *                     X-Amz-Target: Ferry_20261124.<Operation>   (Ferry's extensions, model/ferry/)
 *   GET  /healthz     200 "ok" when the database answers, else 503
 *   GET  /metrics     Prometheus text format
 *
 * Every SMS request goes: SigV4 → operation → replay guard (mutating operations) → JSON
 * body → model validation → handler → model-shaped response. Failures become
 * `{"__type", "message"}` with the status errors.ts gives; nothing else leaks.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { SerializationError, UnknownOperationError } from '../errors/index.js';
import { toWireError } from './errors.js';
import { ApiMetrics } from './metrics.js';
import { operationOfTarget } from './model/index.js';
import { MAX_BODY_BYTES } from './policy.js';
import { ReplayGuard } from './replay.js';
import { serializeOutput } from './serialize.js';
import { verifySigV4, type KeyLookup, type VerifiedCaller } from './sigv4.js';
import { validateInput } from './validate.js';

export type OperationInput = Record<string, unknown>;
export interface CallContext {
  readonly caller: VerifiedCaller;
  readonly requestId: string;
}
export type OperationHandler = (input: OperationInput, ctx: CallContext) => Promise<unknown>;
export type OperationTable = Readonly<Record<string, OperationHandler>>;

export interface ApiOptions {
  readonly operations: OperationTable;
  readonly keys: KeyLookup;
  readonly sha256: (text: string) => string;
  readonly now?: () => number;
  readonly logger?: Logger;
  readonly metrics?: ApiMetrics;
  /** Resolves when the service's dependencies answer (the database); throws otherwise. */
  readonly health?: () => Promise<void>;
  /** Serve HTTPS with this certificate chain and key (PEM). */
  readonly https?: { readonly cert: string; readonly key: string };
}

const JSON_11 = 'application/x-amz-json-1.1';

/** Operations that change nothing: exempt from replay refusal (see replay.ts). */
export function isReadOnly(operation: string): boolean {
  return /^(Get|List)/.test(operation);
}

export function createApi(options: ApiOptions) {
  const now = options.now ?? Date.now;
  const metrics = options.metrics ?? new ApiMetrics();
  const replay = new ReplayGuard();
  const app = Fastify({
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
  });

  // SigV4 signs the raw bytes, so the body stays a Buffer whatever its content type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.get('/healthz', async (_req, reply) => {
    try {
      await options.health?.();
      return reply.code(200).type('text/plain').send('ok\n');
    } catch {
      return reply.code(503).type('text/plain').send('unavailable\n');
    }
  });
  app.get('/metrics', async (_req, reply) =>
    reply
      .code(200)
      .type('text/plain; version=0.0.4')
      .send(await metrics.render()),
  );

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    let operation = 'unknown';
    let signature: string | undefined;
    let status = 200;
    let errorType: string | undefined;
    reply.header('x-amzn-RequestId', req.id);
    try {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const caller = await verifySigV4(
        { method: req.method, url: req.raw.url ?? '/', rawHeaders: req.raw.rawHeaders, body },
        options.keys,
        now(),
        options.sha256,
      );
      operation = operationOf(req.headers['x-amz-target']);
      if (!isReadOnly(operation)) {
        replay.admit(caller.signature, caller.requestTime, now());
        signature = caller.signature;
      }
      const input = validateInput(operation, parseBody(body));
      const handler = options.operations[operation];
      if (!handler) throw new UnknownOperationError(`${operation} is not implemented`, { operation });
      const result = await handler(input, { caller, requestId: req.id });
      return await reply
        .code(200)
        .type(JSON_11)
        .send(JSON.stringify(serializeOutput(operation, result)));
    } catch (err) {
      const { wire, error } = toWireError(err);
      status = wire.status;
      errorType = wire.type;
      if (status >= 500)
        req.log.error(
          { err: error, cause: (error as { cause?: unknown }).cause, operation },
          'request failed',
        );
      else req.log.debug({ code: error.code, operation }, error.message);
      return await reply
        .code(status)
        .type(JSON_11)
        .header('x-amzn-ErrorType', wire.type)
        .send(JSON.stringify({ __type: wire.type, message: wire.message }));
    } finally {
      if (signature) replay.settle(signature, status);
      metrics.observe(operation, status, errorType, (performance.now() - started) / 1000);
    }
  };
  app.post('/', handle);
  app.post('/*', handle);

  app.setNotFoundHandler((_req, reply) =>
    reply
      .code(404)
      .type(JSON_11)
      .send(
        JSON.stringify({
          __type: 'UnknownOperationException',
          message: 'Use POST with an X-Amz-Target header.',
        }),
      ),
  );
  // Fastify's own failures (body too large, broken framing) in the same error shape.
  app.setErrorHandler((err: { statusCode?: number; message: string; code?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    const type = status === 500 ? 'InternalError' : 'SerializationException';
    if (status === 500) req.log.error({ err }, 'unhandled error');
    metrics.observe('unknown', status, type, 0);
    return reply
      .code(status)
      .type(JSON_11)
      .header('x-amzn-ErrorType', type)
      .send(
        JSON.stringify({
          __type: type,
          message: status === 500 ? 'An internal error occurred.' : err.message,
        }),
      );
  });
  return app;
}

function operationOf(target: string | string[] | undefined): string {
  if (typeof target !== 'string' || !target) {
    throw new UnknownOperationError('Missing X-Amz-Target header naming the operation');
  }
  const name = operationOfTarget(target);
  if (name === undefined) {
    throw new UnknownOperationError(`Unknown operation ${JSON.stringify(target.slice(0, 200))}`, {
      target: target.slice(0, 200),
    });
  }
  return name;
}

function parseBody(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new SerializationError(`request body is not valid JSON: ${(err as Error).message}`);
  }
}
export type ApiServer = ReturnType<typeof createApi>;
