/**
 * The file's mtime as object metadata, the way rclone stores it: `X-Amz-Meta-Mtime` holding Unix
 * seconds with a fraction (`1764936000.123`), so `rclone lsl` and `pushtask monitor` show it.
 */

/** The metadata key (the SDK adds `x-amz-meta-`). */
export const MTIME_METADATA_KEY = 'mtime';

export function formatMtime(date: Date): string | undefined {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) return undefined;
  const seconds = Math.floor(ms / 1000);
  const fraction = String(ms - seconds * 1000).padStart(3, '0');
  return `${seconds}.${fraction}`;
}

/** rclone writes up to nine decimals; anything unreadable is ignored (undefined). */
export function parseMtime(value: string | undefined): Date | undefined {
  if (value === undefined || !/^-?\d+(\.\d+)?$/.test(value.trim())) return undefined;
  const date = new Date(Math.round(Number(value) * 1000));
  return Number.isFinite(date.getTime()) ? date : undefined;
}

export function mtimeMetadata(date: Date): Record<string, string> {
  const value = formatMtime(date);
  return value === undefined ? {} : { [MTIME_METADATA_KEY]: value };
}
