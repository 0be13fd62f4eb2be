/** The event log and webhooks (src/control/events, docs/events.md). */
import type { FerryArea } from './index.js';

const ERRORS = [
  'UnauthorizedOperationException',
  'InvalidParameterException',
  'MissingRequiredParameterException',
  'InternalError',
];

const WEBHOOK_FIELDS = {
  name: 'FerryWebhookName',
  url: 'FerryWebhookUrl',
  description: 'FerryDescription',
  eventPatterns: 'FerryEventPatterns',
  caBundle: 'FerryCaBundle',
  enabled: 'boolean',
  maxAttempts: 'FerryMaxAttempts',
};

export const shapes: FerryArea['shapes'] = {
  FerryStrings: { type: 'list', member: 'string' },
  FerryEvent: {
    type: 'structure',
    members: {
      eventId: 'string',
      source: 'string',
      detailType: 'string',
      time: 'timestamp',
      resources: 'FerryStrings',
      detail: 'string',
    },
  },
  FerryEventList: { type: 'list', member: 'FerryEvent' },
  FerryMaxResults: { type: 'integer', min: 1 },
  ListEventsRequest: {
    type: 'structure',
    members: {
      source: 'string',
      detailType: 'string',
      resourceId: 'string',
      startTime: 'timestamp',
      endTime: 'timestamp',
      maxResults: 'FerryMaxResults',
      nextToken: 'string',
    },
  },
  ListEventsResponse: { type: 'structure', members: { events: 'FerryEventList', nextToken: 'string' } },

  FerryWebhookName: { type: 'string', min: 1, max: 128 },
  FerryWebhookUrl: { type: 'string', min: 1, max: 2048 },
  FerryDescription: { type: 'string', max: 256 },
  FerryEventPatterns: { type: 'list', member: 'string', max: 20 },
  FerryCaBundle: { type: 'string', max: 65536 },
  FerryMaxAttempts: { type: 'integer', min: 1, max: 50 },
  FerryWebhook: {
    type: 'structure',
    members: {
      webhookId: 'string',
      name: 'string',
      url: 'string',
      description: 'string',
      eventPatterns: 'FerryStrings',
      enabled: 'boolean',
      maxAttempts: 'integer',
      hasCaBundle: 'boolean',
      pendingDeliveries: 'integer',
      deliveredDeliveries: 'integer',
      deadDeliveries: 'integer',
      createdAt: 'timestamp',
      updatedAt: 'timestamp',
    },
  },
  FerryWebhookList: { type: 'list', member: 'FerryWebhook' },
  CreateWebhookRequest: { type: 'structure', members: WEBHOOK_FIELDS, required: ['name', 'url'] },
  FerryWebhookWithSecret: {
    type: 'structure',
    members: { webhook: 'FerryWebhook', signingSecret: 'string' },
  },
  UpdateWebhookRequest: {
    type: 'structure',
    members: { webhookId: 'string', ...WEBHOOK_FIELDS, rotateSecret: 'boolean' },
    required: ['webhookId'],
  },
  FerryWebhookRef: { type: 'structure', members: { webhookId: 'string' }, required: ['webhookId'] },
  GetWebhookResponse: { type: 'structure', members: { webhook: 'FerryWebhook' } },
  ListWebhooksRequest: { type: 'structure', members: {} },
  ListWebhooksResponse: { type: 'structure', members: { webhooks: 'FerryWebhookList' } },
  DeleteWebhookResponse: { type: 'structure', members: {} },
  TestWebhookResponse: { type: 'structure', members: { eventId: 'string' } },

  FerryDeliveryState: { type: 'string', enum: ['PENDING', 'DELIVERED', 'DEAD'] },
  FerryDelivery: {
    type: 'structure',
    members: {
      deliveryId: 'string',
      webhookId: 'string',
      eventId: 'string',
      state: 'string',
      attempts: 'integer',
      nextAttemptAt: 'timestamp',
      lastStatus: 'integer',
      lastError: 'string',
      createdAt: 'timestamp',
      deliveredAt: 'timestamp',
    },
  },
  FerryDeliveryList: { type: 'list', member: 'FerryDelivery' },
  ListWebhookDeliveriesRequest: {
    type: 'structure',
    members: {
      webhookId: 'string',
      state: 'FerryDeliveryState',
      maxResults: 'FerryMaxResults',
      nextToken: 'string',
    },
  },
  ListWebhookDeliveriesResponse: {
    type: 'structure',
    members: { deliveries: 'FerryDeliveryList', nextToken: 'string' },
  },
  FerryDeliveryIds: { type: 'list', member: 'string', min: 1, max: 1000 },
  RedeliverWebhookDeliveriesRequest: {
    type: 'structure',
    members: { deliveryIds: 'FerryDeliveryIds', webhookId: 'string' },
  },
  RedeliverWebhookDeliveriesResponse: { type: 'structure', members: { redelivered: 'integer' } },
};

export const operations: FerryArea['operations'] = {
  ListEvents: ['ListEventsRequest', 'ListEventsResponse', ERRORS],
  CreateWebhook: ['CreateWebhookRequest', 'FerryWebhookWithSecret', ERRORS],
  UpdateWebhook: ['UpdateWebhookRequest', 'FerryWebhookWithSecret', ERRORS],
  GetWebhook: ['FerryWebhookRef', 'GetWebhookResponse', ERRORS],
  ListWebhooks: ['ListWebhooksRequest', 'ListWebhooksResponse', ERRORS],
  DeleteWebhook: ['FerryWebhookRef', 'DeleteWebhookResponse', ERRORS],
  TestWebhook: ['FerryWebhookRef', 'TestWebhookResponse', ERRORS],
  ListWebhookDeliveries: ['ListWebhookDeliveriesRequest', 'ListWebhookDeliveriesResponse', ERRORS],
  RedeliverWebhookDeliveries: [
    'RedeliverWebhookDeliveriesRequest',
    'RedeliverWebhookDeliveriesResponse',
    ERRORS,
  ],
};
