/**
 * The multipart journal: for each multipart upload in progress, its UploadId, the local file it
 * sends (path, size, mtime, inode) and the parts the server has acknowledged (number, ETag, MD5).
 * Kept in the spool (`<spool>/s3-multipart/<hash>.json`, written atomically after every part),
 * so after `kill -9` or a power cut the next upload of that key resumes it (only missing parts
 * are sent) or, if it now sends other content, aborts it on the server first.
 *
 * An upload is identified by key, size and the source file's mtime, not by the snapshot's path:
 * after a restart the same content may come back as a new snapshot. Parts are only trusted when
 * the server's ETag, the journal's MD5 and the MD5 of our local bytes all agree.
 */
import { createHash } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';

export interface JournalPart {
  etag: string;
  /** Hex MD5 of the part's bytes: what its ETag must be. */
  md5: string;
  size: number;
}

export interface SourceIdentity {
  size: number;
  /** The source file's mtime (the snapshot keeps it), in ms. */
  mtimeMs: number;
}

export interface JournalEntry {
  bucket: string;
  key: string;
  uploadId: string;
  source: SourceIdentity;
  partSize: number;
  /** Part number → what the server acknowledged. */
  parts: Record<string, JournalPart>;
  /** ISO time the upload was created. */
  created: string;
  /** An append's composition (append.ts): never resumed, aborted by the next start's sweep. */
  append?: boolean;
  /**
   * Written just before CreateMultipartUpload (uploadId still ''): if the process dies before the
   * UploadId is journaled, or the answer is lost, whatever upload the server started for this key
   * is found by its key and aborted (sweep.ts), not left for the 24 h rule.
   */
  creating?: boolean;
}

export const JOURNAL_FOLDER = 's3-multipart';

export class MultipartJournal {
  readonly #dir: string;
  /** Per file: the write in progress, so writes of one entry never overlap and the last one wins. */
  readonly #writes = new Map<string, Promise<void>>();

  constructor(stateDir: string) {
    this.#dir = path.join(stateDir, JOURNAL_FOLDER);
  }

  #file(bucket: string, key: string): string {
    const hash = createHash('sha256').update(`${bucket}\0${key}`).digest('hex').slice(0, 32);
    return path.join(this.#dir, `${hash}.json`);
  }

  async load(bucket: string, key: string): Promise<JournalEntry | null> {
    const file = this.#file(bucket, key);
    // Asked after every whole upload, and almost never there: a stat, not a failed read's error.
    if (!fsSync.existsSync(file) && !this.#writes.has(file)) return null;
    return readEntry(file);
  }

  /** Every entry (unreadable ones are skipped: their uploads count as stale for the sweep). */
  async all(): Promise<JournalEntry[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.#dir);
    } catch {
      return [];
    }
    const entries = await Promise.all(names.filter((name) => /^[0-9a-f]{32}\.json$/.test(name)).map((name) => readEntry(path.join(this.#dir, name))));
    return entries.filter((entry): entry is JournalEntry => entry !== null);
  }

  /** Saves a snapshot of `entry` (copied now, so the caller may go on changing it). */
  async save(entry: JournalEntry): Promise<void> {
    const file = this.#file(entry.bucket, entry.key);
    const text = JSON.stringify(entry);
    const previous = this.#writes.get(file) ?? Promise.resolve();
    const next = previous.then(async () => {
      await fs.mkdir(this.#dir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(file, text, { mode: 0o600 });
    });
    this.#writes.set(file, next.catch(() => undefined));
    await next;
  }

  /** The intent to start a multipart upload of `key` (see `creating`), saved before asking the server. */
  async saveIntent(bucket: string, key: string): Promise<void> {
    await this.save({ bucket, key, uploadId: '', source: { size: 0, mtimeMs: 0 }, partSize: 0, parts: {}, created: new Date().toISOString(), creating: true });
  }

  async remove(bucket: string, key: string): Promise<void> {
    const file = this.#file(bucket, key);
    await this.#writes.get(file);
    await fs.rm(file, { force: true });
  }
}

async function readEntry(file: string): Promise<JournalEntry | null> {
  try {
    const entry = JSON.parse(await fs.readFile(file, 'utf8')) as JournalEntry;
    return typeof entry.uploadId === 'string' && typeof entry.key === 'string' && entry.source ? entry : null;
  } catch {
    return null;
  }
}

export function sameSource(a: SourceIdentity, b: SourceIdentity): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}
