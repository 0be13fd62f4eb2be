/**
 * The remote connector process's link: the generic dialling loop (src/link/dial.ts)
 * serving a local connector, its disk reads paced by the bandwidth limit.
 */
import {
  keepLinked,
  throttled,
  type ClientLog,
  type LinkIdentity,
  type LinkTarget,
  type Throttle,
} from '../../link/index.js';
import type { Connector } from '../types.js';
import { serveConnector } from './agent.js';

/** Keeps the connector's link up until `signal` aborts; `onUp` is told each time it is up. */
export function runLink(
  target: LinkTarget,
  id: LinkIdentity,
  connector: Connector,
  o: {
    signal: AbortSignal;
    log?: ClientLog;
    onUp?: () => void;
    heartbeatMs?: number;
    /** Paces disk data (--bandwidth, --bandwidth-schedule). */
    throttle?: Throttle;
  },
): Promise<void> {
  return keepLinked(target, id, {
    signal: o.signal,
    ...(o.log ? { log: o.log } : {}),
    ...(o.heartbeatMs !== undefined ? { heartbeatMs: o.heartbeatMs } : {}),
    hello: () => ({
      ...connector.descriptor,
      role: 'connector',
      roles: {
        snapshot: connector.source.snapshot !== undefined,
        release: connector.source.release !== undefined,
        sweep: connector.source.sweep !== undefined,
      },
    }),
    serve: () => {
      const served = serveConnector(connector);
      return o.throttle ? { ...served, handlers: throttled(served.handlers, o.throttle) } : served;
    },
    onUp: () => o.onUp?.(),
  });
}
