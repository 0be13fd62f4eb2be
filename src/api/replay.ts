/**
 * Replay refusal. A signature is valid for the whole clock-skew window, so a captured
 * request could be sent again within it. Every accepted signature of a *mutating*
 * operation is remembered until it can no longer pass the time check, and the same
 * signature arriving again more than REPLAY_GRACE_MS after the first is refused
 * (FERRY_AUTH_REPLAYED).
 *
 * The exceptions are deliberate:
 * - read-only operations (Get*, List*) may repeat: replaying a read changes nothing;
 * - within REPLAY_GRACE_MS of its first arrival, an identical request passes: awscli signs
 *   with one-second resolution and no nonce, so the same command run twice within one
 *   second (a script, a retry loop) sends byte-identical requests. Such duplicates are
 *   necessarily sent within a second of each other; a replay of a captured request is
 *   refused unless the attacker resends it within those few seconds;
 * - a request whose earlier attempt ended in a retryable failure (5xx, 429) may come
 *   again: that is the client's own retry.
 */
import { AuthReplayedError } from '../errors/index.js';
import { CLOCK_SKEW_MS } from './sigv4.js';

/** How long after its first arrival an identical request counts as a duplicate, not a replay. */
export const REPLAY_GRACE_MS = 3000;
/** Upper bound on remembered signatures (≈ 60 MB at worst); oldest forgotten first. */
const MAX_ENTRIES = 500_000;

type Outcome = 'in-flight' | 'done' | 'retryable';

interface Seen {
  outcome: Outcome;
  readonly firstSeenAt: number;
  readonly forgetAt: number;
}

export class ReplayGuard {
  readonly #seen = new Map<string, Seen>();

  /** Call before executing a mutating request; throws if the signature is being replayed. */
  admit(signature: string, requestTime: number, now: number): void {
    this.#sweep(now);
    const prior = this.#seen.get(signature);
    if (prior) {
      if (prior.outcome !== 'retryable' && now - prior.firstSeenAt > REPLAY_GRACE_MS) {
        throw new AuthReplayedError(
          'This request has already been received (signature replayed); sign a new request.',
        );
      }
      prior.outcome = 'in-flight';
      return;
    }
    // The request passes the skew check until requestTime + window; remember it that long.
    this.#seen.set(signature, {
      outcome: 'in-flight',
      firstSeenAt: now,
      forgetAt: Math.max(requestTime, now) + CLOCK_SKEW_MS + 1000,
    });
    if (this.#seen.size > MAX_ENTRIES) {
      const oldest = this.#seen.keys().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
  }

  /** Records how the request ended (status code of the response). */
  settle(signature: string, status: number): void {
    const e = this.#seen.get(signature);
    if (e) e.outcome = status >= 500 || status === 429 ? 'retryable' : 'done';
  }

  get size(): number {
    return this.#seen.size;
  }

  #sweep(now: number): void {
    // Entries are inserted roughly in time order; stop at the first still-live one.
    for (const [sig, e] of this.#seen) {
      if (e.forgetAt > now) break;
      this.#seen.delete(sig);
    }
  }
}
