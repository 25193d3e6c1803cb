// The HTTP server's named limits as lab flags, shared by labs 05-08, so every limit has a default and a flag.
import { parseIntOption, type LabOptions } from '../cli/lab.ts';
import { DEFAULT_HTTP_LIMITS } from '../wire/http.ts';
import { DEFAULT_SERVER_LIMITS, type HttpServerLimits } from './http-server.ts';
import { DEFAULT_JOB_OPTIONS } from './jobs.ts';

export const HTTP_LIMIT_OPTIONS = {
  'max-request-line': { type: 'string', default: String(DEFAULT_HTTP_LIMITS.maxRequestLine), description: 'request line bytes (over: 414)', valueName: 'BYTES' },
  'max-header-bytes': { type: 'string', default: String(DEFAULT_HTTP_LIMITS.maxHeaderBytes), description: 'header section bytes (over: 431)', valueName: 'BYTES' },
  'max-body-bytes': { type: 'string', default: String(DEFAULT_HTTP_LIMITS.maxBodyBytes), description: 'request body bytes (over: 413)', valueName: 'BYTES' },
  'header-timeout-ms': { type: 'string', default: String(DEFAULT_SERVER_LIMITS.headerTimeoutMs), description: 'a request must arrive whole within this (else 408, close)', valueName: 'MS' },
  'idle-timeout-ms': { type: 'string', default: String(DEFAULT_SERVER_LIMITS.idleTimeoutMs), description: 'close a keep-alive connection idle this long', valueName: 'MS' },
  'max-connections': { type: 'string', default: String(DEFAULT_SERVER_LIMITS.maxConnections), description: 'open connections (one more: 503, close)', valueName: 'N' },
  'max-header-count': { type: 'string', default: String(DEFAULT_HTTP_LIMITS.maxHeaderCount), description: 'header fields in one request (over: 431)', valueName: 'N' },
  'max-pipelined': { type: 'string', default: String(DEFAULT_SERVER_LIMITS.maxPipelined), description: 'parsed requests queued behind the one being answered before reading pauses', valueName: 'N' },
} satisfies LabOptions;

/** Limits of the jobs store, for the labs that serve the jobs API. */
export const JOB_LIMIT_OPTIONS = {
  'max-jobs': { type: 'string', default: String(DEFAULT_JOB_OPTIONS.maxJobs), description: 'jobs kept at once (all running: 503)', valueName: 'N' },
  'max-waiters': { type: 'string', default: String(DEFAULT_JOB_OPTIONS.maxWaitersPerJob), description: 'long polls held on one job', valueName: 'N' },
} satisfies LabOptions;

export function jobLimitsFrom(values: Record<keyof typeof JOB_LIMIT_OPTIONS, string>): { maxJobs: number; maxWaitersPerJob: number } {
  return {
    maxJobs: parseIntOption('max-jobs', values['max-jobs'], { min: 1, max: 1_000_000 })!,
    maxWaitersPerJob: parseIntOption('max-waiters', values['max-waiters'], { min: 1, max: 1_000_000 })!,
  };
}

type Raw = Record<keyof typeof HTTP_LIMIT_OPTIONS, string>;

export function httpLimitsFrom(values: Raw): Partial<HttpServerLimits> {
  const int = (name: keyof Raw, min: number, max: number) => parseIntOption(name, values[name], { min, max })!;
  return {
    maxRequestLine: int('max-request-line', 16, 1 << 20),
    maxHeaderBytes: int('max-header-bytes', 64, 1 << 24),
    maxBodyBytes: int('max-body-bytes', 0, 1 << 30),
    headerTimeoutMs: int('header-timeout-ms', 10, 3_600_000),
    idleTimeoutMs: int('idle-timeout-ms', 10, 3_600_000),
    maxConnections: int('max-connections', 1, 1_000_000),
    maxHeaderCount: int('max-header-count', 1, 10_000),
    maxPipelined: int('max-pipelined', 1, 10_000),
  };
}
