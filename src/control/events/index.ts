/**
 * Events and webhooks (docs/events.md): state changes captured where they are stored,
 * kept in an event log, and pushed to webhooks through an outbox.
 */
export {
  EVENT_TYPES,
  EVENT_SOURCES,
  envelope,
  matches,
  type DetailType,
  type FerryEvent,
} from './catalog.js';
export { EventLog, DEFAULT_EVENT_RETENTION_MS, type ListEventsInput } from './log.js';
export { WebhookService, DEFAULT_MAX_ATTEMPTS } from './webhooks.js';
export { WebhookDispatcher, type DispatcherOptions } from './dispatcher.js';
export { verifySignature, signatureHeader, SIGNATURE_HEADER } from './signature.js';
