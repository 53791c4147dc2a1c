/**
 * Which config fields are secrets, and how to keep their values out of anything we print.
 */
const SECRET_KEYS = new Set([
  'password',
  'passphrase',
  'privateKey',
  'refreshToken',
  'accessToken',
  'appSecret',
  'secretAccessKey',
  'sessionToken',
]);

export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key);
}

/** Every secret value found anywhere in `value` (strings of 4+ characters). */
export function collectSecrets(value: unknown, found: string[] = []): string[] {
  if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (isSecretKey(key) && typeof inner === 'string' && inner.length >= 4) found.push(inner);
      else collectSecrets(inner, found);
    }
  }
  return found;
}

/** Replaces each known secret in `text` with `[redacted]` (longest first: one may contain another). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  }
  return out;
}

/** Pino redact paths: secret keys at any depth we log objects at. */
export const REDACT_PATHS = [...SECRET_KEYS].flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);
