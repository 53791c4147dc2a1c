/**
 * A file's bytes from `start`, released at the pace of the agent's bandwidth limit (FTP data
 * connections pull from it). Small chunks keep the pace smooth: a 64 KiB chunk is four seconds
 * of a 16 KiB/s limit.
 */
import { createReadStream } from 'node:fs';
import { Transform, pipeline, type Readable } from 'node:stream';
import type { BandwidthLimiter } from './bandwidth.js';

const METERED_CHUNK_BYTES = 16 * 1024;

export function meteredReadStream(file: string, start: number, limiter: BandwidthLimiter, signal: AbortSignal): Readable {
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      limiter.take(chunk.length, signal).then(() => done(null, chunk), done);
    },
  });
  // pipeline: an error on either side (a read error, an abort) destroys both.
  return pipeline(createReadStream(file, { start, highWaterMark: METERED_CHUNK_BYTES }), meter, () => undefined);
}
