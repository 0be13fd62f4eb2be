/**
 * Persistence: one narrow interface (types.ts), two back ends (SQLite by default,
 * PostgreSQL), schema migrations, and the repositories every statement lives in.
 */
export type { Database, Dialect, Row, SqlExecutor, SqlValue } from './types.js';
export { DIALECTS } from './types.js';
export { openDatabase, isPostgresUrl, type OpenedDatabase } from './open.js';
export { migrate, currentVersion, type Migration, type MigrationResult } from './migrate.js';
export { MIGRATIONS } from './schema.js';
export { SqliteDatabase } from './sqlite.js';
export { PostgresDatabase } from './postgres.js';
export { repositories, type Repositories } from './repos.js';
export type { Cursor, Page, PageQuery } from './page.js';
export type {
  AccessKeyRecord,
  AppRecord,
  ConnectorRecord,
  JobRecord,
  RunRecord,
  ServerRecord,
  InstanceRecord,
  TemplateRecord,
} from './records.js';
export type {
  EventRecord,
  WebhookRecord,
  DeliveryRecord,
  EnrolmentTokenRecord,
  LaunchHostRecord,
} from './records.js';
export type { EventFilter } from './repos-events.js';
export { observeChanges, type ChangeObserver } from './observe.js';
