/**
 * Change capture at the persistence seam. The control plane turns state changes into
 * events (src/control/events); rather than asking every place that writes a state to also
 * remember to emit, the repositories report the writes of the tables an observer watches,
 * with the row before and after, inside the transaction of the write. The event rows the
 * observer adds therefore commit or roll back with the change itself (a transactional
 * outbox): no event for a change that did not happen, no change without its event.
 *
 * `observeChanges` is a decorator: it returns the same database whose executors (and the
 * executors of its transactions) carry the observer. Code holding the undecorated
 * database writes without events (maintenance commands that change no watched state).
 */
import type { Database, SqlExecutor } from './types.js';

export interface ChangeObserver {
  /** Whether writing `fields` of `table` can matter (unwatched writes cost nothing extra). */
  watches(table: string, fields: readonly string[]): boolean;
  /** A watched row was inserted (`before` undefined) or updated; runs in its transaction. */
  changed(tx: SqlExecutor, table: string, before: object | undefined, after: object): Promise<void>;
}

/** An executor that may carry an observer (only decorated databases' executors do). */
export type ObservedExecutor = SqlExecutor & { readonly observer?: ChangeObserver };

export function observerOf(x: SqlExecutor): ChangeObserver | undefined {
  return (x as ObservedExecutor).observer;
}

function carry(x: SqlExecutor, observer: ChangeObserver): ObservedExecutor {
  return {
    dialect: x.dialect,
    all: (sql, params) => x.all(sql, params),
    get: (sql, params) => x.get(sql, params),
    run: (sql, params) => x.run(sql, params),
    observer,
  };
}

export function observeChanges(db: Database, observer: ChangeObserver): Database & ObservedExecutor {
  return {
    ...carry(db, observer),
    description: db.description,
    transaction: (fn) => db.transaction((tx) => fn(carry(tx, observer))),
    warm: () => db.warm(),
    close: () => db.close(),
  };
}

/**
 * Runs a watched write and its capture atomically: inside the caller's transaction when
 * `x` is one, else in a transaction of its own (a decorated database).
 */
export async function atomically<T>(x: SqlExecutor, fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
  const db = x as Partial<Database>;
  return typeof db.transaction === 'function' ? db.transaction(fn) : fn(x);
}
