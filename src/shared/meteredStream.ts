/**
 * Bytes released at the pace of the agent's bandwidth limit: a file from `start` (FTP data
 * connections pull from it) or a body already in memory (S3 requests). Small chunks keep the pace
 * smooth: a 64 KiB chunk is four seconds of a 16 KiB/s limit.
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform, pipeline } from 'node:stream';
import type { BandwidthLimiter } from './bandwidth.js';

const METERED_CHUNK_BYTES = 16 * 1024;

export function meteredReadStream(file: string, start: number, limiter: BandwidthLimiter, signal: AbortSignal): Readable {
  return metered(createReadStream(file, { start, highWaterMark: METERED_CHUNK_BYTES }), limiter, signal);
}

export function meteredBuffer(body: Buffer, limiter: BandwidthLimiter, signal: AbortSignal): Readable {
  function* chunks(): Generator<Buffer> {
    for (let at = 0; at < body.length; at += METERED_CHUNK_BYTES) yield body.subarray(at, at + METERED_CHUNK_BYTES);
  }
  return metered(Readable.from(chunks(), { objectMode: false }), limiter, signal);
}

function metered(source: Readable, limiter: BandwidthLimiter, signal: AbortSignal): Readable {
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      limiter.take(chunk.length, signal).then(() => done(null, chunk), done);
    },
  });
  // pipeline: an error on either side (a read error, an abort) destroys both.
  return pipeline(source, meter, () => undefined);
}
