/**
 * `bandwidthLimit` for SFTP: every WRITE request of one connection waits for the agent's shared
 * bucket before it is sent. Whatever writes (the small-file burst, ssh2's fastPut, appends, an
 * in-order writer) calls `sftp.write`, so wrapping that one method of the connection's SFTP object
 * meters them all. The bucket serves callers in the order they ask, so writes leave in the order
 * they were issued (offset order for the in-order writers), and the FSETSTAT, FSTAT and CLOSE sent
 * right behind them stay behind them. File bytes are counted; SSH framing
 * (about 0.1 % of a 255 KiB WRITE) and other requests are not.
 */
import type { SFTPWrapper } from 'ssh2';
import type { BandwidthLimiter } from '../shared/bandwidth.js';

type WriteCallback = (error?: Error | null) => void;
type Write = (handle: Buffer, buffer: Buffer, offset: number, length: number, position: number, callback: WriteCallback) => void;

/** Meters `sftp`'s WRITEs through `limiter`; `signal` (the connection's) ends waits when it closes. */
export function meterWrites(sftp: SFTPWrapper, limiter: BandwidthLimiter, signal: AbortSignal): void {
  const target = sftp as unknown as { write: Write };
  const write = target.write.bind(sftp) as Write;
  // ssh2 sends a longer write as several requests by calling write() again for the rest: each
  // call takes only what its first request carries.
  const maxRequest = (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? 32 * 1024;
  target.write = (handle, buffer, offset, length, position, callback) => {
    limiter.take(Math.min(length, maxRequest), signal).then(
      () => {
        try {
          write(handle, buffer, offset, length, position, callback);
        } catch (error) {
          callback(error as Error); // the channel closed while this write waited
        }
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  };
  // Requests sent together with WRITEs (sftpPipeline.ts: FSETSTAT, FSTAT and CLOSE right behind
  // them) must not overtake the WRITEs that wait for the bucket: they queue behind them, for 0 bytes.
  for (const name of ['futimes', 'fstat', 'close'] as const) {
    const methods = sftp as unknown as Record<typeof name, (...args: unknown[]) => void>;
    const original = methods[name].bind(sftp);
    methods[name] = (...args: unknown[]) => {
      const done = args[args.length - 1] as (error?: Error) => void;
      limiter.take(0, signal).then(
        () => {
          try {
            original(...args);
          } catch (error) {
            done(error as Error);
          }
        },
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      );
    };
  }
}
