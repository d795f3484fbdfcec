import { DeleteObjectCommand, GetObjectCommand, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import type { BufferObject, BufferObjects } from '../../core/ingest-buffer';

/**
 * The objects an SQS message names, as S3 sends its event notifications there: one per record of the notification,
 * and none for the `s3:TestEvent` S3 sends when the notification is configured. S3 writes keys URL-encoded, with '+'
 * for a space. Anything else is an error naming what is wrong, so the message is retried and then dead-lettered.
 */
export function bufferObjectsOf(body: string): BufferObject[] {
  let notification: { Event?: unknown; Records?: unknown };
  try {
    notification = JSON.parse(body) as typeof notification;
  } catch {
    throw new Error('S3 notification: the message body is not JSON');
  }
  if (notification.Event === 's3:TestEvent') return [];
  if (!Array.isArray(notification.Records)) throw new Error('S3 notification: Records must be an array');
  return notification.Records.map((record: { s3?: { bucket?: { name?: unknown }; object?: { key?: unknown } } }, index) => {
    const bucket = record.s3?.bucket?.name;
    const key = record.s3?.object?.key;
    if (typeof bucket !== 'string' || typeof key !== 'string') throw new Error(`S3 notification: Records[${index}].s3 must name a bucket and an object key`);
    return { bucket, key: decodeURIComponent(key.replace(/\+/g, ' ')) };
  });
}

/**
 * A delivery stream's objects in S3. The client keeps the SDK's addressing, no forcePathStyle: virtual-hosted (the
 * bucket in the host name), the style AWS recommends, path style being the one it has announced it would retire; for
 * an endpoint given by IP address (the tests' local S3, through AWS_ENDPOINT_URL_S3) the SDK's endpoint rules use path
 * style by themselves, so the tests need no setting the deployed function lacks.
 */
export class S3BufferObjects implements BufferObjects {
  constructor(private readonly client: S3Client) {}

  async read(object: BufferObject): Promise<string | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: object.bucket, Key: object.key }));
      return await response.Body!.transformToString('utf8');
    } catch (error) {
      // The loader deletes an object once its requests are stored: gone means an earlier delivery of the same
      // notification (SQS delivers at least once) stored it, not that anything was lost. S3 says NoSuchKey only to a
      // role that may list the bucket (s3:ListBucket); to any other, AccessDenied, which fails the message instead.
      if (error instanceof NoSuchKey) return undefined;
      throw error;
    }
  }

  async remove(object: BufferObject): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: object.bucket, Key: object.key }));
  }
}
