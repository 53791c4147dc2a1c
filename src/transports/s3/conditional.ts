/**
 * If-Match as each server understands it. AWS takes the ETag quoted, as HTTP spells it; Ceph RGW
 * 16 compares it without the quotes and answers 412 to the quoted form even when it matches.
 * So a 412 is checked against the object's current ETag: if the object did not change, the
 * other spelling is tried, and if neither works the server's If-Match is useless and requests
 * go without it (one warning). What works is remembered for the agent.
 */
import { PushtaskError } from '../../shared/errors.js';
import { causeCode } from './multipart.js';
import { headObject } from './objects.js';
import { bareEtag } from './parts.js';
import type { S3Session } from './session.js';

export type IfMatchStyle = 'quoted' | 'bare' | 'none';
const ORDER: IfMatchStyle[] = ['quoted', 'bare', 'none'];

export async function withIfMatch<T>(session: S3Session, key: string, etag: string, signal: AbortSignal, send: (ifMatch: string | undefined) => Promise<T>): Promise<T> {
  const bare = bareEtag(etag);
  if (!bare) return send(undefined);
  const known = session.shared.ifMatchStyle;
  for (const style of known ? ORDER.slice(ORDER.indexOf(known)) : ORDER) {
    try {
      const result = await send(style === 'quoted' ? `"${bare}"` : style === 'bare' ? bare : undefined);
      if (session.shared.ifMatchStyle !== style) {
        session.shared.ifMatchStyle = style;
        if (style === 'none') session.logger.warn(`${session.where.description} refuses If-Match in every spelling: appends there are not guarded against a concurrent writer`);
      }
      return result;
    } catch (error) {
      if (causeCode(error) !== 'PreconditionFailed' || signal.aborted) throw error;
      const now = await headObject(session, key, signal);
      if (!now || bareEtag(now.ETag) !== bare) {
        throw new PushtaskError('UPLOAD_FAILED', `Append to ${key}: the object changed on the server meanwhile (ETag ${bare} → ${bareEtag(now?.ETag) || 'gone'}); the next try looks again`, { cause: error });
      }
    }
  }
  throw new PushtaskError('UPLOAD_FAILED', `Append to ${key}: the server refused every form of If-Match`);
}
