/**
 * Replay refusal. A signature is valid for the whole clock-skew window, so a captured
 * request could be sent again within it. Every accepted signature of a *mutating*
 * operation is remembered until it can no longer pass the time check; the same signature
 * again is refused (FERRY_AUTH_REPLAYED).
 *
 * Two deliberate exceptions:
 * - read-only operations (Get*, List*) may repeat: replaying a read changes nothing, and
 *   awscli sends byte-identical requests (hence identical signatures) when the same
 *   command runs twice within one second, e.g. in a polling loop;
 * - a request whose first attempt ended in a retryable failure (5xx, 429) may come again:
 *   that is the client's own retry (botocore can re-send within the same second).
 */
import { AuthReplayedError } from '../errors/index.js';
import { CLOCK_SKEW_MS } from './sigv4.js';

/** Upper bound on remembered signatures (≈ 60 MB at worst); oldest forgotten first. */
const MAX_ENTRIES = 500_000;

type Outcome = 'in-flight' | 'done' | 'retryable';

export class ReplayGuard {
  readonly #seen = new Map<string, { outcome: Outcome; forgetAt: number }>();

  /** Call before executing a mutating request; throws if the signature was used. */
  admit(signature: string, requestTime: number, now: number): void {
    this.#sweep(now);
    const prior = this.#seen.get(signature);
    if (prior && prior.outcome !== 'retryable') {
      throw new AuthReplayedError(
        'This request has already been received (signature replayed); sign a new request.',
      );
    }
    if (prior) this.#seen.delete(signature);
    // The request passes the skew check until requestTime + window; remember it that long.
    this.#seen.set(signature, { outcome: 'in-flight', forgetAt: requestTime + CLOCK_SKEW_MS + 1000 });
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
