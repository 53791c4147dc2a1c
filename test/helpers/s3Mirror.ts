/**
 * A local copy of a bucket prefix, kept up to date by polling (for the chaos suite, whose checks
 * read the server's files from disk). Each changed object (by ETag) is downloaded to a temp name
 * and renamed into place, so a reader never sees a partial copy.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

export interface S3Mirror {
  dir: string;
  /** Waits for the round in progress, then stops. */
  stop(): Promise<void>;
}

export function mirrorBucket(client: S3Client, bucket: string, prefix: string, dir: string, intervalMs = 200): S3Mirror {
  const etags = new Map<string, string>();
  let stopped = false;
  const round = async () => {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const object of page.Contents ?? []) {
        const key = object.Key!;
        if (etags.get(key) === object.ETag) continue;
        const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const bytes = Buffer.from(await answer.Body!.transformToByteArray());
        const target = path.join(dir, ...key.slice(prefix.length).split('/'));
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(`${target}.mirror-tmp`, bytes);
        fs.renameSync(`${target}.mirror-tmp`, target);
        etags.set(key, answer.ETag ?? object.ETag ?? '');
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  };
  const loop = (async () => {
    while (!stopped) {
      await round().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    dir,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
