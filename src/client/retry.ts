// Client failure handling shared by every wirelab client: per-attempt timeout, retries with
// exponential backoff and jitter, an overall deadline, and cancellation with AbortSignal.
// The jitter formulas are those of the AWS Architecture Blog, "Exponential Backoff And Jitter" (2015).
import { WirelabError, errorCode } from '../errors.ts';

/** `none`: retry at once; `exponential`: base*2^n capped, no jitter; then the three jittered forms. */
export type BackoffStrategy = 'none' | 'exponential' | 'full' | 'equal' | 'decorrelated';
export const BACKOFF_STRATEGIES: readonly BackoffStrategy[] = ['none', 'exponential', 'full', 'equal', 'decorrelated'];

export interface BackoffOptions {
  strategy: BackoffStrategy;
  /** The first wait's scale, in ms. */
  baseMs: number;
  /** No wait is longer than this, in ms. */
  capMs: number;
  /** A uniform random number in [0, 1): injectable so tests are repeatable. */
  random?: () => number;
}

/** The bounds [min, max] of the wait after failed attempt number `attempt` (0-based). */
export function backoffBounds(o: BackoffOptions, attempt: number, previousMs: number): [number, number] {
  const exp = Math.min(o.capMs, o.baseMs * 2 ** attempt);
  switch (o.strategy) {
    case 'none':
      return [0, 0];
    case 'exponential':
      return [exp, exp];
    case 'full': // sleep = random_between(0, min(cap, base * 2 ** attempt))
      return [0, exp];
    case 'equal': // temp = min(cap, base * 2 ** attempt); sleep = temp / 2 + random_between(0, temp / 2)
      return [exp / 2, exp];
    case 'decorrelated': // sleep = min(cap, random_between(base, sleep * 3)), sleep starting at base
      return [Math.min(o.capMs, o.baseMs), Math.min(o.capMs, Math.max(o.baseMs, previousMs * 3))];
  }
}

/** A stateful schedule: call `next()` after each failed attempt to get the wait in ms. */
export function backoffSchedule(o: BackoffOptions): { next(): number } {
  const random = o.random ?? Math.random;
  let attempt = 0;
  let previous = o.baseMs;
  return {
    next() {
      const [min, max] = backoffBounds(o, attempt, previous);
      const wait = min + (max - min) * random();
      attempt++;
      previous = wait;
      return wait;
    },
  };
}

export type RetryEvent =
  | { type: 'attempt'; attempt: number; elapsedMs: number }
  | { type: 'failure'; attempt: number; elapsedMs: number; code: string | undefined; message: string }
  | { type: 'backoff'; attempt: number; delayMs: number }
  | { type: 'success'; attempt: number; elapsedMs: number }
  | { type: 'giveup'; attempt: number; elapsedMs: number; code: string };

export interface RetryOptions extends Partial<BackoffOptions> {
  /** Attempts in all, the first included. Default 5. */
  maxAttempts?: number;
  /** Each attempt is aborted with ERR_TIMEOUT after this long. Default: none. */
  attemptTimeoutMs?: number;
  /** The whole call fails with ERR_DEADLINE after this long, waits included. Default: none. */
  deadlineMs?: number;
  signal?: AbortSignal;
  onEvent?: (event: RetryEvent) => void;
  /** Whether an error is worth another attempt. Default: every error. */
  isRetryable?: (err: unknown) => boolean;
}

export interface AttemptContext {
  /** 1-based. */
  attempt: number;
  /** Aborted when this attempt times out, the deadline passes or the caller aborts. */
  signal: AbortSignal;
}

/** Waits ms, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortedError(signal: AbortSignal): WirelabError {
  const reason: unknown = signal.reason;
  if (reason instanceof WirelabError) return reason;
  return new WirelabError('ERR_ABORTED', 'aborted by the caller', { cause: reason });
}

/**
 * Runs fn until it succeeds, a non-retryable error occurs, attempts run out (ERR_RETRIES_EXHAUSTED),
 * the deadline passes (ERR_DEADLINE) or the caller aborts (ERR_ABORTED). After any of those, fn is
 * never called again and nothing is left scheduled.
 */
export async function retry<T>(fn: (ctx: AttemptContext) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 5;
  const schedule = backoffSchedule({
    strategy: options.strategy ?? 'full',
    baseMs: options.baseMs ?? 50,
    capMs: options.capMs ?? 2000,
    random: options.random,
  });
  const emit = options.onEvent ?? (() => {});
  const start = performance.now();
  const elapsed = () => performance.now() - start;
  const deadlineAt = options.deadlineMs === undefined ? Infinity : start + options.deadlineMs;
  const outer = options.signal;
  let lastError: unknown;

  const giveUp = (attempt: number, err: WirelabError): never => {
    emit({ type: 'giveup', attempt, elapsedMs: elapsed(), code: err.code });
    throw err;
  };

  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (outer?.aborted) giveUp(attempt - 1, abortedError(outer));
    const remaining = deadlineAt - performance.now();
    if (remaining <= 0) giveUp(attempt - 1, new WirelabError('ERR_DEADLINE', `deadline of ${options.deadlineMs} ms passed`, { cause: lastError }));

    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(abortedError(outer!));
    outer?.addEventListener('abort', onOuterAbort, { once: true });
    const limit = Math.min(options.attemptTimeoutMs ?? Infinity, remaining);
    const timer = Number.isFinite(limit)
      ? setTimeout(() => {
          const isDeadline = limit === remaining && limit !== options.attemptTimeoutMs;
          controller.abort(
            isDeadline
              ? new WirelabError('ERR_DEADLINE', `deadline of ${options.deadlineMs} ms passed`)
              : new WirelabError('ERR_TIMEOUT', `attempt ${attempt} timed out after ${options.attemptTimeoutMs} ms`),
          );
        }, limit)
      : undefined;

    emit({ type: 'attempt', attempt, elapsedMs: elapsed() });
    try {
      // Race fn against its own signal so a callee that ignores the signal cannot hold us up.
      const result = await new Promise<T>((resolve, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
        fn({ attempt, signal: controller.signal }).then(resolve, reject);
      });
      emit({ type: 'success', attempt, elapsedMs: elapsed() });
      return result;
    } catch (err) {
      lastError = err;
      const code = errorCode(err);
      emit({ type: 'failure', attempt, elapsedMs: elapsed(), code, message: err instanceof Error ? err.message : String(err) });
      if (outer?.aborted) giveUp(attempt, abortedError(outer));
      if (code === 'ERR_DEADLINE') giveUp(attempt, err as WirelabError);
      if (options.isRetryable && !options.isRetryable(err)) {
        emit({ type: 'giveup', attempt, elapsedMs: elapsed(), code: code ?? 'ERR_NOT_RETRYABLE' });
        throw err;
      }
    } finally {
      if (timer) clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
      if (!controller.signal.aborted) controller.abort(new WirelabError('ERR_CANCELLED', 'attempt finished'));
    }
    if (attempt === maxAttempts) break;
    const delayMs = schedule.next();
    if (performance.now() + delayMs >= deadlineAt) {
      giveUp(attempt, new WirelabError('ERR_DEADLINE', `deadline of ${options.deadlineMs} ms would pass during the next backoff`, { cause: lastError }));
    }
    emit({ type: 'backoff', attempt, delayMs });
    try {
      await sleep(delayMs, outer);
    } catch {
      giveUp(attempt, abortedError(outer!));
    }
  }
  return giveUp(maxAttempts, new WirelabError('ERR_RETRIES_EXHAUSTED', `gave up after ${maxAttempts} attempts`, { cause: lastError }));
}
