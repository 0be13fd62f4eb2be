/**
 * Helpers for end-to-end tests of the KVM source through a real `ferry server --qmp-dir`:
 * a paused VM on one small qcow2 disk whose content the test models byte for byte (every
 * write goes through QEMU's block layer, HMP qemu-io), servers that can be killed and
 * restarted on the same data directory, and the checks every scenario ends with (what
 * Ferry left in QEMU, the exported image against the model and against the oracle).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SMS, ReplicationRun } from '@aws-sdk/client-sms';
import { ferryLeftovers, humanMonitorCommand } from '../../src/connectors/kvm/index.js';
import { qmp } from './kvm-connector.js';
import { startVm, type Proc } from './kvm.js';
import { qemuImg, qemuIo, sha256File } from './qemu.js';
import { exportedDiskSha, startServer, type RunningServer } from './server.js';
import { smsClient } from './sms.js';

export const MiB = 1024 * 1024;
export const DISK_BYTES = 64 * MiB;

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// A short QMP session (QEMU serves one client at a time: never hold it).
export { qmp };

/** A VM whose one disk (drive0, qcow2, 64 MiB) the test knows byte for byte. */
export class Guest {
  vm: Proc & { qmp: string };
  readonly model: Buffer;
  #writes = 0;

  private constructor(
    readonly dir: string,
    readonly qmpDir: string,
    readonly name: string,
    readonly uuid: string,
    readonly disk: string,
    vm: Proc & { qmp: string },
    model: Buffer,
  ) {
    this.vm = vm;
    this.model = model;
  }

  /**
   * Creates the disk, fills `regions` of it with random bytes (qemu-io, offline), and
   * starts the VM paused (-S, TCG, -m 64: QMP, block jobs and HMP qemu-io work the same).
   */
  static async create(
    dir: string,
    qmpDir: string,
    name: string,
    uuid: string,
    rand: () => number,
    regions: readonly [offset: number, length: number][],
  ): Promise<Guest> {
    const disk = join(dir, `${name}.qcow2`);
    await qemuImg('create', '-q', '-f', 'qcow2', disk, String(DISK_BYTES));
    const model = Buffer.alloc(DISK_BYTES);
    for (const [i, [offset, length]] of regions.entries()) {
      const file = join(dir, `${name}-init-${i}.bin`);
      const bytes = randomBytesFrom(rand, length);
      await writeFile(file, bytes);
      await qemuIo(disk, 'qcow2', `write -s ${file} ${offset} ${length}`);
      bytes.copy(model, offset);
    }
    const vm = await Guest.#boot(qmpDir, name, uuid, disk);
    return new Guest(dir, qmpDir, name, uuid, disk, vm, model);
  }

  static #boot(qmpDir: string, name: string, uuid: string, disk: string) {
    return startVm(qmpDir, name, [{ file: disk, format: 'qcow2', nodeName: 'disk0' }], { uuid });
  }

  /** Starts the VM again from its disk (after it quit or was killed). */
  async restart(): Promise<void> {
    await this.vm.stop();
    // A killed QEMU leaves its QMP socket file; waiting for the new one must not see it.
    await rm(this.vm.qmp, { force: true });
    this.vm = await Guest.#boot(this.qmpDir, this.name, this.uuid, this.disk);
  }

  /** Writes random bytes through QEMU (as the guest would), then flushes; mirrors them in the model. */
  async write(rand: () => number, offset: number, length: number): Promise<void> {
    const file = join(this.dir, `${this.name}-w${this.#writes++}.bin`);
    const bytes = randomBytesFrom(rand, length);
    await writeFile(file, bytes);
    await this.hmp([`qemu-io drive0 "write -s ${file} ${offset} ${length}"`, 'qemu-io drive0 flush']);
    bytes.copy(this.model, offset);
  }

  async hmp(lines: readonly string[]): Promise<void> {
    await qmp(this.vm.qmp, async (q) => {
      for (const line of lines) {
        const out = await humanMonitorCommand(q, line);
        assert.equal(out, '', `${line}: ${out}`);
      }
    });
  }

  leftovers() {
    return qmp(this.vm.qmp, ferryLeftovers);
  }

  /**
   * The oracle: qemu-img reads the disk QEMU has open (-U: no lock; the writes were
   * flushed) and converts it to raw; its SHA-256.
   */
  async oracleSha(): Promise<string> {
    const out = join(this.dir, `${this.name}-oracle.raw`);
    await qemuImg('convert', '-U', '-f', 'qcow2', '-O', 'raw', this.disk, out);
    return sha256File(out);
  }

  /** Asserts QEMU holds nothing of Ferry's but `checkpoint` (the one bitmap that may stay). */
  async assertClean(checkpoint: string | undefined, why: (s: string) => string): Promise<void> {
    const left = await this.leftovers();
    assert.deepEqual(
      { exports: left.exports, jobs: left.jobs, nodes: left.nodes },
      { exports: [], jobs: [], nodes: [] },
      why(`nothing of Ferry's left in QEMU: ${JSON.stringify(left)}`),
    );
    assert.deepEqual(
      left.bitmaps,
      checkpoint ? [`disk0:${checkpoint}`] : [],
      why(`only the checkpoint bitmap stays: ${JSON.stringify(left)}`),
    );
  }
}

/** Deterministic random bytes from the test's seeded generator. */
export function randomBytesFrom(rand: () => number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = Math.floor(rand() * 0xffffffff) >>> 0 || 1;
  for (let i = 0; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

/** A seeded generator (the same LCG as test/store/crash.integ.test.ts). */
export function seeded(seed: number): () => number {
  let state = seed || 1;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

/** `ferry server --qmp-dir` on one data directory, killed and restarted at will. */
export class FerryHost {
  readonly started: RunningServer[] = [];
  server!: RunningServer;
  sms!: SMS;

  constructor(
    readonly dataDir: string,
    readonly qmpDir: string,
    /** Serve the VMs through a remote connector (connector link) instead of --qmp-dir. */
    readonly remote = false,
  ) {}

  async start(): Promise<void> {
    this.server = await startServer({
      dataDir: this.dataDir,
      args: [
        ...(this.remote ? ['--connector-listen', '127.0.0.1:0'] : ['--qmp-dir', this.qmpDir]),
        '--on-demand-runs-per-day',
        '1000',
        '--log-level',
        'info',
      ],
      timeoutMs: 60_000,
    });
    this.started.push(this.server);
    this.sms = smsClient(this.server);
  }

  async kill9(): Promise<void> {
    this.sms.destroy();
    await this.server.stop('SIGKILL');
  }

  async stopAll(): Promise<void> {
    this.sms?.destroy();
    for (const s of this.started) await s.stop('SIGKILL').catch(() => undefined);
  }

  /** Every server process's log (for failure messages). */
  logs(): string {
    return this.started.map((s, i) => `── server ${i} (pid ${s.child.pid}) ──\n${s.log()}`).join('\n');
  }

  /** Catalogs the VMs and creates a job for `vmName` whose runs are all on demand. */
  async createJob(vmName: string): Promise<string> {
    await this.sms.importServerCatalog({});
    const servers = (await this.sms.getServers({})).serverList ?? [];
    const s = servers.find((x) => x.vmServer?.vmName === vmName);
    assert.ok(s?.serverId, `${vmName} catalogued: ${JSON.stringify(servers)}`);
    const { replicationJobId } = await this.sms.createReplicationJob({
      serverId: s.serverId,
      seedReplicationTime: new Date(Date.now() + 86_400_000),
      frequency: 24,
    });
    return replicationJobId!;
  }

  async startRun(jobId: string): Promise<string> {
    const { replicationRunId } = await this.sms.startOnDemandReplicationRun({ replicationJobId: jobId });
    return replicationRunId!;
  }

  async run(jobId: string, runId: string): Promise<ReplicationRun | undefined> {
    const runs = (await this.sms.getReplicationRuns({ replicationJobId: jobId })).replicationRunList ?? [];
    return runs.find((r) => r.replicationRunId === runId);
  }

  /** Polls (every `everyMs`) until `done(run)`; a timeout fails with the last state seen. */
  async waitRun(
    jobId: string,
    runId: string,
    done: (r: ReplicationRun) => boolean = (r) => ['COMPLETED', 'FAILED'].includes(r.state ?? ''),
    timeoutMs = 120_000,
    everyMs = 100,
  ): Promise<ReplicationRun> {
    const until = Date.now() + timeoutMs;
    let last: ReplicationRun | undefined;
    while (Date.now() < until) {
      last = await this.run(jobId, runId);
      if (last && done(last)) return last;
      await new Promise((r) => setTimeout(r, everyMs));
    }
    throw new Error(`run ${runId} not done in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
  }

  /** Exports disk 0 of image `amiId` as raw (the CLI on the server's data directory); its SHA-256. */
  async imageSha(amiId: string, dir: string): Promise<string> {
    return exportedDiskSha(this.dataDir, amiId, join(dir, `${amiId}.raw`));
  }

  /** Files the KVM connector keeps for a VM (scratch images, records) under DATA_DIR/kvm. */
  async scratchFiles(vmId: string): Promise<string[]> {
    return readdir(join(this.dataDir, 'kvm', vmId)).catch(() => []);
  }
}

/** The checkpoint bitmap a committed run leaves (names.ts: `ferry-<run key>`; run ids need no escaping). */
export const checkpointOf = (runId: string) => `ferry-${runId}`;
