/** One client command's connection to the server: resolve, connect, call, always close. */
import type { SMS } from '@aws-sdk/client-sms';
import { AbortedError, ApiUnreachableError } from '../../errors/index.js';
import { fromSdkError } from './errors.js';
import { callFerry } from './ferry-call.js';
import { resolveConnection, smsClient, type ClientFlags } from './connection.js';

/**
 * The longest one call may take, retries included. The slowest operation (ImportServerCatalog
 * of a large folder) answers in seconds; a server that says nothing for this long (a
 * black-holed address, a stopped process) is not going to.
 */
export const CALL_TIMEOUT_MS = 60_000;

export interface CallOptions {
  readonly abortSignal: AbortSignal;
}

export interface Remote {
  readonly endpoint: string;
  /** One SDK call, bounded in time; whatever it throws arrives as a coded error. */
  call<T>(fn: (sms: SMS, options: CallOptions) => Promise<T>): Promise<T>;
  /** One call of a Ferry extension operation (src/api/model/ferry/), bounded the same way. */
  ferry<T>(operation: string, input?: object): Promise<T>;
}

export async function withRemote<T>(
  flags: ClientFlags,
  fn: (r: Remote) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const connection = await resolveConnection(flags);
  const sms = await smsClient(connection);
  const { endpoint } = connection;
  const bounded = async <T>(f: (options: CallOptions) => Promise<T>): Promise<T> => {
    signal?.throwIfAborted();
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), CALL_TIMEOUT_MS);
    const stop = () => deadline.abort();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      return await f({ abortSignal: deadline.signal });
    } catch (err) {
      if (signal?.aborted) {
        throw signal.reason instanceof Error ? signal.reason : new AbortedError('stopped');
      }
      if (deadline.signal.aborted) {
        throw new ApiUnreachableError(`${endpoint} did not answer within ${CALL_TIMEOUT_MS / 1000} s`, {
          endpoint,
          errno: 'ETIMEDOUT',
        });
      }
      throw fromSdkError(err, endpoint);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
    }
  };
  try {
    return await fn({
      endpoint,
      call: (f) => bounded((options) => f(sms, options)),
      ferry: (operation, input = {}) =>
        bounded((options) => callFerry(connection, operation, input, options.abortSignal)),
    });
  } finally {
    sms.destroy();
  }
}
