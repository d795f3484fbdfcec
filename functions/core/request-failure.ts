/**
 * The body of every error answer of pql-radar's HTTP APIs (ingest, lead status, the local server in front of them).
 * `error`, `path` and `reason` are pql-radar's own; `code` and `message` are the fields Segment's API answers with,
 * which analytics-python reads from any answer that is not a 200 (`payload['code']`, `payload['message']`): without
 * them it fails on the missing key instead, takes even a final 4xx for a passing failure, and retries it ten times.
 */
// A type, not an interface: it is given where a body is any JSON object (Record<string, unknown>).
export type RequestFailure = {
  success: false;
  /** Stable and machine-readable: one per status, so clients may branch on either. */
  code: FailureCode;
  error: string;
  /** The same text as `error`. */
  message: string;
  /** The field at fault, e.g. `batch[3].event`; empty for the request as a whole. */
  path: string;
  reason: string;
};

const failureCodes = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  // The local runtime's evaluator control, asked for a time before one it already ran at (local/evaluate-route.ts).
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'throttled',
  500: 'internal_error',
} as const;

export type FailureStatus = keyof typeof failureCodes;
export type FailureCode = (typeof failureCodes)[FailureStatus];

/** `error` is the field and the reason, unless the answer words it otherwise. */
export function failureBody(status: FailureStatus, path: string, reason: string, error = path ? `${path}: ${reason}` : reason): RequestFailure {
  return { success: false, code: failureCodes[status], error, message: error, path, reason };
}
