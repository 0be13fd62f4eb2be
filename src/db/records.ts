/**
 * Rows as plain records. The database knows their shape, not their meaning: states are
 * strings here and become closed unions in src/control, which owns the rules. Nested
 * values (`facts`, `body`, configurations) are JSON the control plane wrote itself.
 */

export interface AccessKeyRecord {
  readonly accessKeyId: string;
  /** AES-256-GCM envelope of the secret (src/control/keys), never the secret itself. */
  readonly secretCiphertext: string;
  /** SHA-256 (hex) of the session token of a temporary key; null for long-term keys. */
  readonly sessionTokenHash: string | null;
  readonly description: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

export interface ConnectorRecord {
  readonly connectorId: string;
  /** 'local' (built into the server) or 'remote'. */
  readonly kind: string;
  readonly version: string;
  readonly capabilities: readonly string[];
  readonly vmManagerId: string;
  readonly vmManagerName: string;
  readonly vmManagerType: string | null;
  readonly ipAddress: string | null;
  readonly macAddress: string | null;
  readonly associatedOn: number;
  readonly lastHeartbeatAt: number;
  readonly disassociatedAt: number | null;
  /** Serial (hex) of a remote connector's client certificate; null for built-in ones. */
  readonly certSerial: string | null;
}

export interface ServerRecord {
  readonly serverId: string;
  readonly connectorId: string;
  readonly vmManagerId: string;
  readonly vmId: string;
  /** Catalog order: VM manager, then VM id (GetServers pages in this order). */
  readonly sortKey: string;
  readonly vmName: string;
  readonly vmManagerName: string | null;
  readonly vmManagerType: string | null;
  readonly vmPath: string | null;
  /** What the connector reported: disks, CPU, memory, NICs, descriptor (JSON). */
  readonly facts: unknown;
  readonly replicationJobId: string | null;
  readonly replicationJobTerminated: boolean;
  readonly importedAt: number;
}

export interface JobRecord {
  readonly replicationJobId: string;
  readonly serverId: string;
  /** The server as it was when the job was created (JSON), so a job outlives the catalog. */
  readonly server: unknown;
  readonly seedReplicationTime: number;
  readonly frequency: number | null;
  readonly runOnce: boolean;
  readonly nextRunAt: number | null;
  readonly licenseType: string | null;
  readonly roleName: string | null;
  readonly description: string | null;
  readonly numberOfRecentAmisToKeep: number;
  readonly encrypted: boolean;
  readonly kmsKeyId: string | null;
  readonly latestAmiId: string | null;
  readonly state: string;
  readonly statusMessage: string;
  readonly consecutiveFailures: number;
  readonly appId: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface RunRecord {
  readonly replicationRunId: string;
  readonly replicationJobId: string;
  readonly type: string;
  readonly state: string;
  readonly statusMessage: string;
  readonly stage: string | null;
  readonly stageProgress: string | null;
  readonly amiId: string | null;
  readonly scheduledStartTime: number;
  readonly startedAt: number | null;
  readonly completedTime: number | null;
  readonly description: string | null;
  readonly encrypted: boolean;
  readonly kmsKeyId: string | null;
  /** The itinerary step the run is at (null before the first). */
  readonly step: string | null;
  /** Outputs of the steps done so far (JSON), persisted after each step. */
  readonly checkpoint: unknown;
  /** Bytes done/total, rate, ETA (JSON) while a step copies data. */
  readonly progress: unknown;
  /** Which worker holds the run, and until when (a crashed worker's lease expires). */
  readonly leaseOwner: string | null;
  readonly leaseUntil: number | null;
  readonly attempts: number;
  readonly createdAt: number;
}

export interface AppRecord {
  readonly appId: string;
  readonly clientToken: string | null;
  /** Summary fields, server groups and tags (JSON). */
  readonly body: unknown;
  readonly replicationConfig: unknown;
  readonly launchConfig: unknown;
  readonly validationConfig: unknown;
  readonly validationOutputs: unknown;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A launched instance (src/launch): an image running under QEMU through an overlay. */
export interface InstanceRecord {
  readonly instanceId: string;
  readonly appId: string | null;
  readonly serverId: string;
  readonly imageId: string;
  readonly instanceType: string;
  /** pending | running | stopped | failed | terminated */
  readonly state: string;
  readonly statusMessage: string;
  /** The instance directory (overlay, sockets, console.log). */
  readonly dir: string;
  readonly pid: number | null;
  readonly launchOrder: number | null;
  /** The remote launch host it runs on; null: this server's own machine. */
  readonly hostId: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface TemplateRecord {
  readonly templateId: string;
  readonly appId: string;
  /** 'template' or 'change-set'. */
  readonly kind: string;
  readonly format: string;
  readonly body: string;
  readonly createdAt: number;
}

/** One entry of the event log (src/control/events): EventBridge-like. */
export interface EventRecord {
  /** Time-ordered id (`evt-…`): orders the log and dedupes webhook deliveries. */
  readonly eventId: string;
  readonly source: string;
  readonly detailType: string;
  readonly occurredAt: number;
  /** Ids of what the event is about (JSON array). */
  readonly resources: readonly string[];
  readonly detail: unknown;
}

export interface WebhookRecord {
  readonly webhookId: string;
  readonly name: string;
  readonly url: string;
  readonly description: string | null;
  /** Sources or detail types delivered (JSON array); empty: every event. */
  readonly eventPatterns: readonly string[];
  /** AES-256-GCM envelope of the signing secret, never the secret itself. */
  readonly secretCiphertext: string;
  /** PEM certificates trusted for an https URL, besides the system's. */
  readonly caBundle: string | null;
  readonly enabled: boolean;
  readonly maxAttempts: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One event owed to one webhook (the outbox row the dispatcher works from). */
export interface DeliveryRecord {
  readonly deliveryId: string;
  readonly webhookId: string;
  readonly eventId: string;
  /** PENDING | DELIVERED | DEAD */
  readonly state: string;
  readonly attempts: number;
  readonly nextAttemptAt: number | null;
  readonly leaseOwner: string | null;
  readonly leaseUntil: number | null;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly deliveredAt: number | null;
}

/** A one-time token a remote connector enrols with (stored hashed). */
export interface EnrolmentTokenRecord {
  /** SHA-256 (hex) of the token. */
  readonly tokenHash: string;
  readonly description: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt: number | null;
  /** The connector or launch host id the token enrolled. */
  readonly usedBy: string | null;
  /** What the token enrols: a remote connector or a remote launch host. */
  readonly role: 'connector' | 'host';
}

/** A remote launch host (enrolled like a connector; docs/launch.md, "Launch hosts"). */
export interface LaunchHostRecord {
  readonly hostId: string;
  readonly name: string;
  readonly version: string;
  /** What it offers, from its hello: { cpus, memoryMiB, accelerator, qemu, ovmf }. */
  readonly facts: unknown;
  readonly ipAddress: string | null;
  readonly certSerial: string;
  readonly enrolledAt: number;
  readonly lastHeartbeatAt: number;
  readonly disassociatedAt: number | null;
}
