/**
 * The one error type of Ferry. Every failure a user can see carries a stable `code`
 * (`FERRY_…`, documented in docs/errors.md), a `kind` that groups codes by what the
 * caller can do about them, a `retryable` flag that retry policies read as data, and
 * plain-data `details` safe to print or serialise (never buffers, never secrets).
 *
 * Codes are defined only through {@link defineError}, which also records them in the
 * registry that the doc-sync test compares against docs/errors.md.
 */

/**
 * What a caller can do about an error. Input problems are always one of three distinct
 * kinds: `unsupported` (valid but not handled), `corrupt` (violates the format) and
 * `too-large` (exceeds a documented limit).
 */
export const ERROR_KINDS = [
  'unsupported',
  'corrupt',
  'too-large',
  'refused',
  'not-found',
  'invalid-argument',
  'io',
  'aborted',
  'internal',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export type ErrorDetails = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface ErrorSpec {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  /** One line, shown in docs/errors.md and used when no message is given. */
  readonly summary: string;
}

const kFerryError = Symbol.for('ferry.error');

export class FerryError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly details: ErrorDetails;

  constructor(spec: ErrorSpec, message?: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message ?? spec.summary, options);
    this.name = 'FerryError';
    this.code = spec.code;
    this.kind = spec.kind;
    this.retryable = spec.retryable;
    // A copy, read-only by type but not frozen: loggers (pino) tag the objects they walk,
    // and a frozen details object holding a string `message` made that tagging throw.
    this.details = { ...details };
  }

  /** Works across duplicate copies of the module (brand check, as undici does). */
  static is(value: unknown): value is FerryError {
    return (
      typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kFerryError] === true
    );
  }

  toJSON(): { code: string; kind: ErrorKind; retryable: boolean; message: string; details: ErrorDetails } {
    return {
      code: this.code,
      kind: this.kind,
      retryable: this.retryable,
      message: this.message,
      details: this.details,
    };
  }
}
Object.defineProperty(FerryError.prototype, kFerryError, { value: true });

const registry = new Map<string, ErrorSpec>();

export type FerryErrorClass = {
  new (message?: string, details?: ErrorDetails, options?: { cause?: unknown }): FerryError;
  readonly spec: ErrorSpec;
  readonly code: string;
};

/** Declares an error code once; returns its class. Duplicate codes are a programming error. */
export function defineError(
  code: string,
  kind: ErrorKind,
  retryable: boolean,
  summary: string,
): FerryErrorClass {
  if (!/^FERRY_[A-Z0-9_]+$/.test(code)) throw new Error(`bad error code ${code}`);
  if (registry.has(code)) throw new Error(`duplicate error code ${code}`);
  const spec: ErrorSpec = Object.freeze({ code, kind, retryable, summary });
  registry.set(code, spec);
  const cls = class extends FerryError {
    static readonly spec = spec;
    static readonly code = code;
    constructor(message?: string, details?: ErrorDetails, options?: { cause?: unknown }) {
      super(spec, message, details, options);
    }
  };
  Object.defineProperty(cls, 'name', { value: code });
  return cls;
}

/** Every code defined so far (the registry module defines them all at import). */
export function registeredErrors(): readonly ErrorSpec[] {
  return [...registry.values()];
}

/**
 * A FerryError received from another Ferry process (the connector link): the same code,
 * kind and retryable flag when this build knows the code, else FERRY_INTERNAL.
 */
export function errorFromWire(code: unknown, message: unknown, details: unknown): FerryError {
  const spec = (typeof code === 'string' && registry.get(code)) || registry.get('FERRY_INTERNAL');
  if (!spec) throw new Error('FERRY_INTERNAL is not registered');
  const safe: Record<string, string | number | boolean | null> = {};
  if (typeof details === 'object' && details !== null) {
    for (const [k, v] of Object.entries(details).slice(0, 32)) {
      if (v === null || ['string', 'number', 'boolean'].includes(typeof v))
        safe[k] = typeof v === 'string' ? v.slice(0, 1000) : (v as number | boolean | null);
    }
  }
  return new FerryError(spec, String(message ?? spec.summary).slice(0, 4000), safe);
}
