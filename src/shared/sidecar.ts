/** `<file>.notify` sidecars: the notification channel between any writer and the subtask. */
export const NOTIFY_SUFFIX = '.notify';
export const HEARTBEAT_SUFFIX = '.heartbeat';

export function sidecarOf(file: string): string {
  return file + NOTIFY_SUFFIX;
}

export function isSidecar(file: string): boolean {
  return file.endsWith(NOTIFY_SUFFIX);
}

/** The data file a sidecar belongs to: removes the suffix (not characters, unlike pysubtask's strip). */
export function sourceOfSidecar(sidecar: string): string {
  return sidecar.slice(0, -NOTIFY_SUFFIX.length);
}
