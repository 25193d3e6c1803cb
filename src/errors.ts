// Every rejection in wirelab carries a stable code. The code is the contract that tests assert;
// the message is for people and may change (the Node core convention).

export type ErrorCode =
  // frame protocol (src/wire/frame.ts)
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_BAD_VERSION'
  | 'ERR_UNKNOWN_TYPE'
  | 'ERR_DECODER_FAILED'
  | 'ERR_FRAME_TRUNCATED'
  | 'ERR_BAD_REQUEST'
  // request/response client and server
  | 'ERR_TIMEOUT'
  | 'ERR_CANCELLED'
  | 'ERR_ABORTED'
  | 'ERR_DEADLINE'
  | 'ERR_CONNECTION_CLOSED'
  | 'ERR_NOT_CONNECTED'
  | 'ERR_DUPLICATE_ID'
  | 'ERR_ID_EXHAUSTED'
  | 'ERR_TOO_MANY_PENDING'
  | 'ERR_TOO_MANY_CONNECTIONS'
  | 'ERR_IDLE_TIMEOUT'
  | 'ERR_REMOTE'
  | 'ERR_RETRIES_EXHAUSTED'
  | 'ERR_APPLICATION'
  // command line
  | 'ERR_BAD_ARGS'

  // dns and udp (issue 3): add codes below this line
  | 'ERR_DNS_TOO_SHORT'
  | 'ERR_DNS_TRUNCATED'
  | 'ERR_DNS_LABEL_TOO_LONG'
  | 'ERR_DNS_NAME_TOO_LONG'
  | 'ERR_DNS_EMPTY_LABEL'
  | 'ERR_DNS_POINTER_FORWARD'
  | 'ERR_DNS_POINTER_LOOP'
  | 'ERR_DNS_POINTER_IN_QUERY'
  | 'ERR_DNS_TRAILING_BYTES'
  | 'ERR_DNS_BAD_RDATA'
  | 'ERR_DNS_BAD_OPT'
  | 'ERR_DNS_BAD_QDCOUNT'
  | 'ERR_DNS_MESSAGE_TOO_LARGE'
  | 'ERR_DNS_ZONE_SYNTAX'
  | 'ERR_DNS_SERVER_ADDRESS'

  // file i/o and worker pool (issue 4): add codes below this line
  | 'ERR_POOL_CLOSED'
  | 'ERR_QUEUE_FULL'
  | 'ERR_WORKER_EXITED'
  | 'ERR_TASK_FAILED'
  | 'ERR_NOT_TRANSFERABLE'
  | 'ERR_PROBE_FAILED'
  | 'ERR_SATURATION_FAILED'

  // wire captures, pcap and diagrams (issue 5): add codes below this line
  | 'ERR_CAPTURE_NOT_PERMITTED'
  | 'ERR_CAPTURE_FAILED'
  | 'ERR_TOOL_MISSING'
  | 'ERR_PCAP_WRITE'
  | 'ERR_PCAP_ADDRESS'

  // http core, push, polling, sse (issue 6): add codes below this line
  | 'ERR_HTTP_MALFORMED'
  | 'ERR_HTTP_HEADER_TOO_LARGE'
  | 'ERR_HTTP_URI_TOO_LONG'
  | 'ERR_HTTP_BODY_TOO_LARGE'
  | 'ERR_HTTP_HEADER_TIMEOUT'
  | 'ERR_HTTP_SMUGGLING'
  | 'ERR_HTTP_BAD_CONTENT_LENGTH'
  | 'ERR_HTTP_BAD_CHUNK'
  | 'ERR_HTTP_LENGTH_REQUIRED'
  | 'ERR_HTTP_UNSUPPORTED_TRANSFER_ENCODING'
  | 'ERR_HTTP_VERSION_NOT_SUPPORTED'
  | 'ERR_HTTP_BAD_RESPONSE'
  | 'ERR_HTTP_STATUS'
  | 'ERR_HTTP_RESPONSE_STATE'
  | 'ERR_SSE_BAD_FIELD'
  | 'ERR_SSE_SLOW_CLIENT'
  | 'ERR_JOB_NOT_FOUND'
  | 'ERR_TOO_MANY_JOBS'

  ;

export class WirelabError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = `WirelabError [${code}]`;
  }
}

/** For values outside an allowed range (a length over its limit, a port out of range). */
export class WirelabRangeError extends RangeError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = `WirelabRangeError [${code}]`;
  }
}

export type CodedError = WirelabError | WirelabRangeError;

export function isCoded(err: unknown, code?: ErrorCode): err is CodedError {
  return (
    (err instanceof WirelabError || err instanceof WirelabRangeError) &&
    (code === undefined || err.code === code)
  );
}

/** The code of any error that has one (ours, or Node's own such as ENOENT / ECONNREFUSED). */
export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}
