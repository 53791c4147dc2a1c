/**
 * S3 answers (and network failures) as PushtaskErrors the retry policy understands:
 * - throttling and server trouble (SlowDown, 503, 500, RequestTimeout) are transient, with the
 *   server's `Retry-After` as the hint where it sends one;
 * - refused credentials and a missing bucket are configuration errors for the long schedule,
 *   named with endpoint, bucket and key id (never the secret).
 */
import { S3ServiceException } from '@aws-sdk/client-s3';
import { PushtaskError, type PushtaskErrorCode, errorMessage } from '../../shared/errors.js';
import { isNetworkError } from '../lifeline.js';

/** What an error message may say about the destination. */
export interface S3Where {
  /** `s3://bucket/prefix at http://endpoint`. */
  description: string;
  bucket: string;
  accessKeyId: string | undefined;
}

const AUTH_CODES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired', 'AllAccessDisabled']);
const THROTTLE_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests', 'ServiceUnavailable']);
const TRANSIENT_CODES = new Set(['RequestTimeout', 'InternalError', 'RequestTimeTooSkewed', 'OperationAborted']);

/** The S3 error code (`NoSuchKey`, `SlowDown`, …) or undefined for a network failure. */
export function s3Code(error: unknown): string | undefined {
  if (error instanceof S3ServiceException) return (error as { Code?: string }).Code ?? error.name;
  return undefined;
}

export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

export function isNotFound(error: unknown): boolean {
  const code = s3Code(error);
  return code === 'NotFound' || code === 'NoSuchKey' || (code !== 'NoSuchBucket' && httpStatus(error) === 404);
}

/**
 * @param what the operation, e.g. `Upload of site-7/a.csv`
 * @param failCode the code for failures that are neither auth, config nor throttling
 */
export function describeS3Error(error: unknown, where: S3Where, what: string, failCode: PushtaskErrorCode, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason ?? error;
  if (error instanceof PushtaskError) return error;
  const code = s3Code(error);
  const status = httpStatus(error);
  const retryAfterMs = retryAfterOf(error);
  const hint = retryAfterMs !== undefined ? { retryAfterMs } : {};
  const fail = (pushtaskCode: PushtaskErrorCode, message: string) => new PushtaskError(pushtaskCode, `${what} failed: ${message}`, { cause: error, ...hint });
  const keyId = where.accessKeyId ? `access key id ${where.accessKeyId}` : "the AWS SDK's default credentials";

  if (code === undefined) {
    // A connection that reset or went silent under a request: replaced at once, as on every
    // transport (the uploader's rule); a connect that fails so follows the retry schedule.
    if (failCode !== 'CONNECT_FAILED' && isNetworkError(error)) {
      return fail('CONNECTION_LOST', `the connection to ${where.description} was lost (${networkCause(error)}); reconnecting`);
    }
    return fail(failCode, `cannot reach ${where.description} (${networkCause(error)}); will retry`);
  }
  const detail = `${code}${status ? ` ${status}` : ''}${messageOf(error)}`;
  if (AUTH_CODES.has(code) || status === 401 || (status === 403 && !THROTTLE_CODES.has(code))) {
    return fail('AUTH_FAILED', `${where.description} refused ${keyId} for bucket ${where.bucket} (${detail}); check the keys and the bucket policy. Retrying on the long schedule`);
  }
  if (code === 'NoSuchBucket') {
    return fail('DESTINATION_REJECTED', `the bucket ${where.bucket} does not exist at ${where.description} (as seen with ${keyId}); create it or fix \`bucket\`. Retrying on the long schedule`);
  }
  if (THROTTLE_CODES.has(code) || status === 503 || status === 429) {
    return fail('RATE_LIMITED', `${where.description} is throttling (${detail})${retryAfterMs !== undefined ? `; retry after ${retryAfterMs} ms` : '; will retry'}`);
  }
  if (TRANSIENT_CODES.has(code) || (status !== undefined && status >= 500)) {
    return fail(failCode, `${where.description} answered ${detail}; will retry`);
  }
  return fail(failCode, `${where.description} answered ${detail}`);
}

function messageOf(error: unknown): string {
  const message = (error as { message?: unknown }).message;
  // The SDK's message for a body-less answer (HEAD) is just the status name.
  return typeof message === 'string' && message && message !== 'UnknownError' && !/^\d+$/.test(message) ? `: ${message}` : '';
}

/** `Retry-After` (seconds or an HTTP date) of the raw response, where the server sent one. */
export function retryAfterOf(error: unknown): number | undefined {
  const headers = (error as { $response?: { headers?: Record<string, string | undefined> } } | null)?.$response?.headers;
  const value = headers?.['retry-after'] ?? headers?.['Retry-After'];
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function networkCause(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  const label = typeof code === 'string' ? code : typeof name === 'string' && name !== 'Error' ? name : '';
  const message = errorMessage(error);
  return label && !message.includes(label) ? `${label}: ${message}` : message;
}
