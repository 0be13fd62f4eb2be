/**
 * Ferry's extension API: operations SMS has no verb for (instances, the app lifecycle,
 * events, webhooks, …), on the same wire protocol as SMS (AWS JSON 1.1, SigV4 with
 * signing name `sms`, `{"__type","message"}` errors), under their own target prefix:
 *
 *   X-Amz-Target: Ferry_20261124.<Operation>
 *
 * Each area keeps its shapes and operations in its own file, in the vocabulary of the SMS
 * model (model/types.ts), so one validator and one serializer serve both APIs. Shape and
 * operation names share one namespace with the SMS model; model/index.ts refuses clashes.
 */
import type { ModelShape } from '../types.js';
import * as checks from './checks.js';
import * as connectors from './connectors.js';
import * as events from './events.js';
import * as instances from './instances.js';
import * as launchOptions from './launch-options.js';
import * as lifecycle from './lifecycle.js';
import * as objects from './objects.js';
import * as templates from './templates.js';

export const FERRY_TARGET_PREFIX = 'Ferry_20261124';

export interface FerryArea {
  readonly shapes: Readonly<Record<string, ModelShape>>;
  readonly operations: Readonly<
    Record<string, readonly [input: string, output: string, errors: readonly string[]]>
  >;
}

/** Every area of the extension API; a new area adds one line here. */
export const FERRY_AREAS: readonly FerryArea[] = [
  instances,
  lifecycle,
  templates,
  objects,
  launchOptions,
  checks,
  events,
  connectors,
];
