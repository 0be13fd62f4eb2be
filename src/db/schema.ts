/**
 * Ferry's schema, as migrations. Never edit a released migration: add a new one.
 *
 * Conventions (see types.ts): times are BIGINT epoch milliseconds, booleans INTEGER 0/1,
 * nested values JSON in TEXT. Text columns that order pages use the byte-wise "C" collation
 * on PostgreSQL so that both back ends page in the same order (SQLite compares bytes).
 */
import type { Migration } from './migrate.js';
import type { Dialect } from './types.js';

const bytewise = (d: Dialect) => (d === 'postgres' ? ' COLLATE "C"' : '');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'control plane: keys, connectors, catalog, jobs, runs, apps, templates',
    statements: (d) => [
      `CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        secret_ciphertext TEXT NOT NULL,
        session_token_hash TEXT,
        description TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT
      )`,
      `CREATE TABLE connectors (
        connector_id TEXT${bytewise(d)} PRIMARY KEY,
        kind TEXT NOT NULL,
        version TEXT NOT NULL,
        capabilities TEXT NOT NULL,
        vm_manager_id TEXT NOT NULL,
        vm_manager_name TEXT NOT NULL,
        vm_manager_type TEXT,
        ip_address TEXT,
        mac_address TEXT,
        associated_on BIGINT NOT NULL,
        last_heartbeat_at BIGINT NOT NULL,
        disassociated_at BIGINT
      )`,
      `CREATE TABLE servers (
        server_id TEXT${bytewise(d)} PRIMARY KEY,
        connector_id TEXT NOT NULL,
        vm_manager_id TEXT NOT NULL,
        vm_id TEXT NOT NULL,
        sort_key TEXT${bytewise(d)} NOT NULL,
        vm_name TEXT NOT NULL,
        vm_manager_name TEXT,
        vm_manager_type TEXT,
        vm_path TEXT,
        facts TEXT NOT NULL,
        replication_job_id TEXT,
        replication_job_terminated INTEGER NOT NULL DEFAULT 0,
        imported_at BIGINT NOT NULL,
        UNIQUE (vm_manager_id, vm_id)
      )`,
      `CREATE INDEX servers_by_sort_key ON servers (sort_key, server_id)`,
      `CREATE TABLE replication_jobs (
        replication_job_id TEXT${bytewise(d)} PRIMARY KEY,
        server_id TEXT NOT NULL,
        server TEXT NOT NULL,
        seed_replication_time BIGINT NOT NULL,
        frequency INTEGER,
        run_once INTEGER NOT NULL,
        next_run_at BIGINT,
        license_type TEXT,
        role_name TEXT,
        description TEXT,
        number_of_recent_amis_to_keep INTEGER NOT NULL,
        encrypted INTEGER NOT NULL,
        kms_key_id TEXT,
        latest_ami_id TEXT,
        state TEXT NOT NULL,
        status_message TEXT NOT NULL,
        consecutive_failures INTEGER NOT NULL,
        app_id TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE INDEX replication_jobs_by_server ON replication_jobs (server_id)`,
      `CREATE INDEX replication_jobs_by_created ON replication_jobs (created_at, replication_job_id)`,
      `CREATE TABLE replication_runs (
        replication_run_id TEXT${bytewise(d)} PRIMARY KEY,
        replication_job_id TEXT NOT NULL,
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        status_message TEXT NOT NULL,
        stage TEXT,
        stage_progress TEXT,
        ami_id TEXT,
        scheduled_start_time BIGINT NOT NULL,
        started_at BIGINT,
        completed_time BIGINT,
        description TEXT,
        encrypted INTEGER NOT NULL,
        kms_key_id TEXT,
        step TEXT,
        checkpoint TEXT NOT NULL,
        progress TEXT,
        lease_owner TEXT,
        lease_until BIGINT,
        attempts INTEGER NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      `CREATE INDEX replication_runs_by_job ON replication_runs (replication_job_id, created_at)`,
      `CREATE INDEX replication_runs_by_state ON replication_runs (state, scheduled_start_time)`,
      `CREATE TABLE apps (
        app_id TEXT${bytewise(d)} PRIMARY KEY,
        client_token TEXT UNIQUE,
        body TEXT NOT NULL,
        replication_config TEXT,
        launch_config TEXT,
        validation_config TEXT,
        validation_outputs TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE INDEX apps_by_created ON apps (created_at, app_id)`,
      `CREATE TABLE templates (
        template_id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        format TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      `CREATE INDEX templates_by_app ON templates (app_id, created_at)`,
    ],
  },
  {
    version: 2,
    name: 'launch: instances',
    statements: (d) => [
      `CREATE TABLE instances (
        instance_id TEXT${bytewise(d)} PRIMARY KEY,
        app_id TEXT,
        server_id TEXT NOT NULL,
        image_id TEXT NOT NULL,
        instance_type TEXT NOT NULL,
        state TEXT NOT NULL,
        status_message TEXT NOT NULL,
        dir TEXT NOT NULL,
        pid INTEGER,
        launch_order INTEGER,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE INDEX instances_by_app ON instances (app_id, created_at)`,
    ],
  },
  {
    version: 3,
    name: 'events: event log, webhooks, webhook deliveries (outbox)',
    statements: (d) => [
      // event_id is time-ordered (src/control/events/ids.ts), so it alone orders the log.
      `CREATE TABLE events (
        event_id TEXT${bytewise(d)} PRIMARY KEY,
        source TEXT NOT NULL,
        detail_type TEXT NOT NULL,
        occurred_at BIGINT NOT NULL,
        resources TEXT NOT NULL,
        detail TEXT NOT NULL
      )`,
      `CREATE INDEX events_by_time ON events (occurred_at)`,
      `CREATE TABLE webhooks (
        webhook_id TEXT${bytewise(d)} PRIMARY KEY,
        name TEXT NOT NULL,
        url TEXT NOT NULL,
        description TEXT,
        event_patterns TEXT NOT NULL,
        secret_ciphertext TEXT NOT NULL,
        ca_bundle TEXT,
        enabled INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE TABLE webhook_deliveries (
        delivery_id TEXT${bytewise(d)} PRIMARY KEY,
        webhook_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at BIGINT,
        lease_owner TEXT,
        lease_until BIGINT,
        last_status INTEGER,
        last_error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        delivered_at BIGINT
      )`,
      `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at)`,
      `CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, delivery_id)`,
      `CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id)`,
    ],
  },
  {
    version: 4,
    name: 'remote connectors: enrolment tokens, connector certificates',
    statements: () => [
      `CREATE TABLE enrolment_tokens (
        token_hash TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT,
        used_by TEXT
      )`,
      // The serial of the client certificate a remote connector was enrolled with; its
      // link is accepted only with that certificate, and not once disassociated.
      `ALTER TABLE connectors ADD COLUMN cert_serial TEXT`,
    ],
  },
  {
    version: 5,
    name: 'remote launch hosts',
    statements: () => [
      `CREATE TABLE launch_hosts (
        host_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        facts TEXT NOT NULL,
        ip_address TEXT,
        cert_serial TEXT NOT NULL,
        enrolled_at BIGINT NOT NULL,
        last_heartbeat_at BIGINT NOT NULL,
        disassociated_at BIGINT
      )`,
      // Tokens enrol connectors (as before) or launch hosts.
      `ALTER TABLE enrolment_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'connector'`,
      // The remote launch host an instance runs on; NULL: the server's own machine.
      `ALTER TABLE instances ADD COLUMN host_id TEXT`,
    ],
  },
];
