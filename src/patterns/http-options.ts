// The HTTP server's named limits as lab flags, shared by labs 05-08, so every limit has a default and a flag.
import { parseIntOption, type LabOptions } from '../cli/lab.ts';
import { DEFAULT_HTTP_LIMITS } from '../wire/http.ts';
import { DEFAULT_SERVER_LIMITS, type HttpServerLimits } from './http-server.ts';

export const HTTP_LIMIT_OPTIONS = {
  'max-request-line': { type: 'string', default: String(DEFAULT_HTTP_LIMITS.maxRequestLine), description: 'request line bytes (over: 414)', valueName: 'BYTES' },
  'max-header-bytes': { type: 'string', default: String(DEFAULT_HTTP_LIMITS.maxHeaderBytes), description: 'header section bytes (over: 431)', valueName: 'BYTES' },
  'max-body-bytes': { type: 'string', default: String(DEFAULT_HTTP_LIMITS.maxBodyBytes), description: 'request body bytes (over: 413)', valueName: 'BYTES' },
  'header-timeout-ms': { type: 'string', default: String(DEFAULT_SERVER_LIMITS.headerTimeoutMs), description: 'a request must arrive whole within this (else 408, close)', valueName: 'MS' },
  'idle-timeout-ms': { type: 'string', default: String(DEFAULT_SERVER_LIMITS.idleTimeoutMs), description: 'close a keep-alive connection idle this long', valueName: 'MS' },
  'max-connections': { type: 'string', default: String(DEFAULT_SERVER_LIMITS.maxConnections), description: 'open connections (one more: 503, close)', valueName: 'N' },
} satisfies LabOptions;

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
  };
}
