// The timed job the polling labs watch: a real task on the server (a SHA-256 chain advanced in steps on
// timers) with progress, and event-driven waiters for long polling: a waiter is a callback on the job,
// woken by the state change itself, never by a loop that re-reads the job.
import { createHash, randomBytes } from 'node:crypto';
import { WirelabError } from '../errors.ts';

export type JobState = 'running' | 'done';

export interface JobView {
  id: string;
  state: JobState;
  /** 0..1 */
  progress: number;
  /** Milliseconds since the epoch (with fractions), for the comparison's "how late did the client know". */
  startedAt: number;
  doneAt?: number;
  result?: { digest: string; steps: number };
}

export interface JobStoreOptions {
  /** How long each job runs. */
  jobMs?: number;
  /** Progress updates per job. */
  steps?: number;
  /** Jobs kept at once (running and finished); past it the oldest finished one is forgotten, or 503 if none. */
  maxJobs?: number;
  /** Waiters on one job (long polls); past it a waiter is refused. */
  maxWaitersPerJob?: number;
}

export const DEFAULT_JOB_OPTIONS = { jobMs: 10_000, steps: 20, maxJobs: 1_000, maxWaitersPerJob: 1_000 };

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

type Waiter = (view: JobView) => void;

class Job {
  state: JobState = 'running';
  step = 0;
  readonly startedAt = nowMs();
  doneAt?: number;
  digest = createHash('sha256');
  result?: { digest: string; steps: number };
  timer: NodeJS.Timeout | null = null;
  readonly waiters = new Set<Waiter>();
  readonly listeners = new Set<(view: JobView) => void>();
  constructor(readonly id: string, readonly steps: number) {}

  view(): JobView {
    const v: JobView = { id: this.id, state: this.state, progress: Math.round((this.step / this.steps) * 1000) / 1000, startedAt: this.startedAt };
    if (this.doneAt !== undefined) v.doneAt = this.doneAt;
    if (this.result) v.result = this.result;
    return v;
  }
}

export class JobStore {
  readonly options: Required<JobStoreOptions>;
  private readonly jobs = new Map<string, Job>();

  constructor(options: JobStoreOptions = {}) {
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...DEFAULT_JOB_OPTIONS, ...given };
  }

  create(jobMs = this.options.jobMs): JobView {
    if (this.jobs.size >= this.options.maxJobs) {
      const oldDone = [...this.jobs.values()].find((j) => j.state === 'done');
      if (!oldDone) throw new WirelabError('ERR_TOO_MANY_JOBS', `${this.options.maxJobs} jobs already running`);
      this.jobs.delete(oldDone.id);
    }
    const job = new Job(randomBytes(6).toString('hex'), this.options.steps);
    job.digest.update(job.id);
    this.jobs.set(job.id, job);
    const stepMs = jobMs / job.steps;
    // Each step is scheduled against the start time, so timer lateness does not add up over the job.
    const next = () => {
      job.step++;
      job.digest.update(String(job.step));
      if (job.step >= job.steps) {
        job.state = 'done';
        job.doneAt = nowMs();
        job.result = { digest: job.digest.digest('hex').slice(0, 16), steps: job.steps };
        job.timer = null;
        this.changed(job, true);
        return;
      }
      this.changed(job, false);
      job.timer = setTimeout(next, Math.max(0, job.startedAt + stepMs * (job.step + 1) - nowMs()));
    };
    job.timer = setTimeout(next, stepMs);
    return job.view();
  }

  get(id: string): JobView | undefined {
    return this.jobs.get(id)?.view();
  }

  /** Long-poll waiters on a job right now. */
  waiterCount(id: string): number {
    return this.jobs.get(id)?.waiters.size ?? 0;
  }

  /**
   * Resolves with the job when it changes state (running -> done) or after timeoutMs with the job as it is.
   * An aborted signal (the client disconnected) removes the waiter at once and resolves with null.
   */
  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<JobView | null> {
    const job = this.jobs.get(id);
    if (!job) return Promise.reject(new WirelabError('ERR_JOB_NOT_FOUND', `no job ${id}`));
    if (job.state === 'done') return Promise.resolve(job.view());
    if (job.waiters.size >= this.options.maxWaitersPerJob) return Promise.reject(new WirelabError('ERR_TOO_MANY_PENDING', `${job.waiters.size} waiters on job ${id}`));
    return new Promise((resolve) => {
      const finish = (value: JobView | null) => {
        clearTimeout(timer);
        job.waiters.delete(waiter);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const waiter: Waiter = (view) => finish(view);
      const onAbort = () => finish(null);
      const timer = setTimeout(() => finish(job.view()), timeoutMs);
      job.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Every progress and state change of a job (for the SSE watcher); returns the unsubscribe function. */
  subscribe(id: string, listener: (view: JobView) => void): () => void {
    const job = this.jobs.get(id);
    if (!job) throw new WirelabError('ERR_JOB_NOT_FOUND', `no job ${id}`);
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  listenerCount(id: string): number {
    return this.jobs.get(id)?.listeners.size ?? 0;
  }

  private changed(job: Job, stateChanged: boolean): void {
    const view = job.view();
    for (const l of [...job.listeners]) l(view);
    if (stateChanged) for (const w of [...job.waiters]) w(view);
  }

  /** Stops every running job's timer (server shutdown). */
  close(): void {
    for (const j of this.jobs.values()) if (j.timer) clearTimeout(j.timer);
  }
}
