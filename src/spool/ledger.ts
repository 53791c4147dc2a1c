/**
 * The ledger (`state.json` in the spool): what was last delivered of each source file (its size
 * and mtime at snapshot time). At start it tells which files changed while nobody was uploading,
 * so they are delivered without waiting for a notify, and which residuals need no re-upload.
 * Saves are atomic and coalesced; losing the last one to a crash only costs a duplicate upload.
 */
import fs from 'node:fs';
import writeFileAtomic from 'write-file-atomic';

export interface DeliveredRecord {
  size: number;
  mtimeMs: number;
  remotePath: string;
  /** When the delivered snapshot was started: a sidecar touched after this asks for a new upload. */
  snapshotAt: number;
  deliveredAt: number;
  /** Append mode: hash of the delivered bytes' tail window, to recognise the file next time. */
  tailHash?: string;
}

interface LedgerFile {
  version: 1;
  delivered: Record<string, DeliveredRecord>;
}

export class Ledger {
  readonly file: string;
  #delivered = new Map<string, DeliveredRecord>();
  #saving: Promise<void> | null = null;
  #dirty = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(file: string) {
    this.file = file;
  }

  /** Reads the ledger; a missing or unreadable one starts empty (worst case: duplicate uploads). */
  load(): this {
    try {
      const parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as LedgerFile;
      this.#delivered = new Map(Object.entries(parsed.delivered ?? {}));
    } catch {
      this.#delivered = new Map();
    }
    return this;
  }

  get(source: string): DeliveredRecord | undefined {
    return this.#delivered.get(source);
  }

  /** True when `source` was delivered exactly as it is now. */
  isDelivered(source: string, size: number, mtimeMs: number): boolean {
    const record = this.#delivered.get(source);
    return record !== undefined && record.size === size && record.mtimeMs === mtimeMs;
  }

  recordDelivered(source: string, record: DeliveredRecord): void {
    this.#delivered.set(source, record);
    this.#dirty = true;
  }

  forget(source: string): void {
    if (this.#delivered.delete(source)) this.#dirty = true;
  }

  /**
   * Saves within `delayMs`, once for any number of changes meanwhile: with many small files, a
   * save per upload would cost an fsync each. A crash in between only costs duplicate uploads.
   */
  saveSoon(onError: (error: unknown) => void, delayMs = 500): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.save().catch(onError);
    }, delayMs);
  }

  /** Writes pending changes now; concurrent calls share one write and a follow-up if needed. */
  async save(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    while (this.#saving) await this.#saving.catch(() => undefined);
    if (!this.#dirty) return;
    this.#dirty = false;
    const content: LedgerFile = { version: 1, delivered: Object.fromEntries(this.#delivered) };
    this.#saving = writeFileAtomic(this.file, JSON.stringify(content), { mode: 0o600 })
      .catch((error: unknown) => {
        this.#dirty = true; // not written: the next save() must try again
        throw error;
      })
      .finally(() => {
        this.#saving = null;
      });
    await this.#saving;
  }
}
