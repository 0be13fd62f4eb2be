/**
 * Repository locks (`locks/<id>`, encrypted objects). They do not exclude writers from each
 * other — writers never conflict — they tell GC whom to wait for (docs/store.md,
 * "Crash-safety argument"), keep two GCs apart, and keep two resumes of one image apart.
 *
 * A lock is refreshed every minute (the `refreshed` time inside it). It is *stale* — and
 * ignored — when it was not refreshed for `lockStaleMs` (10 minutes), or when it names a
 * process of this host that no longer exists (a writer killed with -9). A holder that could
 * not refresh for half that time stops before committing (FERRY_STORE_LOCK_LOST).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { StoreLockedError, StoreLockLostError } from '../../errors/index.js';
import { listAll } from '../backend/backend.js';
import { baseName, KEY_PREFIX, LOCK_REFRESH_MS } from '../layout.js';
import type { Repository } from '../repo/repository.js';

export type LockKind = 'write' | 'read' | 'gc';

export interface LockInfo {
  readonly id: string;
  readonly kind: LockKind;
  readonly host: string;
  readonly pid: number;
  readonly created: string;
  readonly refreshed: string;
  /** The image a write lock writes. */
  readonly image?: string;
  readonly live: boolean;
}

export class RepoLock {
  readonly id: string;
  readonly kind: LockKind;
  readonly #repo: Repository;
  readonly #record: Omit<LockInfo, 'live' | 'refreshed'>;
  readonly #timer: NodeJS.Timeout;
  #lastOk: number;
  #released = false;

  private constructor(repo: Repository, record: Omit<LockInfo, 'live' | 'refreshed'>) {
    this.#repo = repo;
    this.#record = record;
    this.id = record.id;
    this.kind = record.kind;
    this.#lastOk = Date.now();
    const every = Math.min(LOCK_REFRESH_MS, Math.max(10, repo.lockStaleMs / 5));
    this.#timer = setInterval(() => void this.refresh().catch(() => {}), every);
    this.#timer.unref();
  }

  /**
   * Takes a lock. `write` locks of the same image and `gc` locks exclude each other
   * (FERRY_STORE_LOCKED, retryable); everything else coexists.
   */
  static async acquire(
    repo: Repository,
    kind: LockKind,
    options: { image?: string } = {},
  ): Promise<RepoLock> {
    const record = {
      id: `${Date.now().toString(16).padStart(12, '0')}${randomBytes(6).toString('hex')}`,
      kind,
      host: hostname(),
      pid: process.pid,
      created: new Date().toISOString(),
      ...(options.image ? { image: options.image } : {}),
    };
    const lock = new RepoLock(repo, record);
    try {
      await lock.#write();
      const others = (await listLocks(repo)).filter((l) => l.live && l.id !== lock.id);
      const rival = others.find((l) =>
        kind === 'gc'
          ? l.kind === 'gc' // any other holder wins; two at the same moment both back off (retryable)
          : kind === 'write' &&
            l.kind === 'write' &&
            options.image !== undefined &&
            l.image === options.image,
      );
      if (rival) {
        throw new StoreLockedError(
          `${repo.location}: ${rival.kind} lock ${rival.id} of ${rival.host} pid ${rival.pid} ` +
            `(refreshed ${rival.refreshed}) is in the way`,
          { lock: rival.id, kind: rival.kind, host: rival.host, pid: rival.pid },
        );
      }
      return lock;
    } catch (err) {
      await lock.release().catch(() => {});
      throw err;
    }
  }

  async #write(): Promise<void> {
    const now = Date.now();
    await this.#repo.putJson('lock', `${KEY_PREFIX.locks}${this.id}`, {
      ...this.#record,
      refreshed: new Date(now).toISOString(),
    });
    this.#lastOk = now;
  }

  async refresh(): Promise<void> {
    if (!this.#released) await this.#write();
  }

  /** Throws FERRY_STORE_LOCK_LOST when others may already consider this lock stale. */
  assertFresh(): void {
    if (Date.now() - this.#lastOk > this.#repo.lockStaleMs / 2) {
      throw new StoreLockLostError(
        `${this.#repo.location}: lock ${this.id} was not refreshed for ${Date.now() - this.#lastOk} ms; ` +
          'stopping before commit (resume the write)',
        { lock: this.id },
      );
    }
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    await this.#repo.backend.delete(`${KEY_PREFIX.locks}${this.id}`);
  }
}

/** Every lock, with its liveness. Undecodable locks are reported as stale. */
export async function listLocks(repo: Repository): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for (const o of await listAll(repo.backend, KEY_PREFIX.locks)) {
    const id = baseName(o.key);
    try {
      const v = await repo.getJson('lock', o.key);
      const info = {
        id,
        kind: v.kind as LockKind,
        host: String(v.host),
        pid: Number(v.pid),
        created: String(v.created),
        refreshed: String(v.refreshed),
        ...(typeof v.image === 'string' ? { image: v.image } : {}),
      };
      out.push({ ...info, live: v.id === id && isLive(info, repo.lockStaleMs) });
    } catch (err) {
      // A lock deleted between list and get is simply gone.
      if ((err as { code?: string }).code === 'FERRY_STORE_MISSING_CHUNK') continue;
      out.push({ id, kind: 'write', host: '?', pid: 0, created: '', refreshed: '', live: false });
    }
  }
  return out;
}

function isLive(l: Omit<LockInfo, 'live'>, staleMs: number): boolean {
  const refreshed = Date.parse(l.refreshed);
  if (!Number.isFinite(refreshed) || Date.now() - refreshed > staleMs) return false;
  if (l.host === hostname() && !pidAlive(l.pid)) return false;
  return true;
}

function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes locks that are stale (never live ones). */
export async function removeStaleLocks(repo: Repository): Promise<number> {
  let n = 0;
  for (const l of await listLocks(repo)) {
    if (!l.live) {
      await repo.backend.delete(`${KEY_PREFIX.locks}${l.id}`);
      n++;
    }
  }
  return n;
}
