/**
 * Test-side S3 access to a cluster (ceph.ts): a plain SDK client, a fresh bucket per test, and
 * what tests check on the server (object bytes and metadata, incomplete multipart uploads).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type MultipartUpload,
  type _Object,
} from '@aws-sdk/client-s3';
import type { PushtaskConfig } from '../../src/config/schema.js';
import type { CephCluster } from './ceph.js';

export function testS3Client(cluster: CephCluster): S3Client {
  // As in the transport (src/transports/s3/client.ts): the pinned SDK runs on Node 20.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint: cluster.endpoint,
    region: cluster.region,
    forcePathStyle: true,
    credentials: { accessKeyId: cluster.accessKeyId, secretAccessKey: cluster.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function createTestBucket(client: S3Client): Promise<string> {
  const bucket = `pt-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** The transport config for a bucket on the cluster, optionally through a proxy's port. */
export function s3TransportConfig(cluster: CephCluster, bucket: string, overrides: Record<string, unknown> = {}, port?: number): PushtaskConfig['transport'] {
  return {
    type: 's3',
    bucket,
    remoteDir: 'site-7',
    endpoint: port ? `http://127.0.0.1:${port}` : cluster.endpoint,
    accessKeyId: cluster.accessKeyId,
    secretAccessKey: cluster.secretAccessKey,
    ...overrides,
  } as PushtaskConfig['transport'];
}

/** The object's bytes, or null when it does not exist. */
export async function objectBytes(client: S3Client, bucket: string, key: string): Promise<Buffer | null> {
  try {
    const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await answer.Body!.transformToByteArray());
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') return null;
    throw error;
  }
}

/** sha256 of the object, streamed (for big objects), or null when it does not exist. */
export async function objectSha256(client: S3Client, bucket: string, key: string): Promise<string | null> {
  let answer;
  try {
    answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') return null;
    throw error;
  }
  const hash = createHash('sha256');
  for await (const chunk of answer.Body as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

export async function objectMetadata(client: S3Client, bucket: string, key: string): Promise<Record<string, string>> {
  return (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata ?? {};
}

export async function listObjects(client: S3Client, bucket: string): Promise<_Object[]> {
  return (await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [];
}

export async function incompleteUploads(client: S3Client, bucket: string): Promise<MultipartUpload[]> {
  return (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
}

/** Polls an async condition (the server's state). */
export async function waitForRemote(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}
