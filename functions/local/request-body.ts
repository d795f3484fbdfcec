import type { IncomingMessage } from 'node:http';

/** Request bodies of the local servers (npm start's, webhooks listen's), read whole but bounded before anything looks at them. */

/** API Gateway's own payload limit: the Lambda behind it never sees more, so neither does the local one. */
export const maxBodyBytes = 10 * 1024 * 1024;
/**
 * A body refused for its size is still read, and thrown away, up to this much, so the answer reaches the client and
 * its keep-alive connection stays usable; past it the connection is closed.
 */
const maxDiscardBytes = 64 * 1024 * 1024;

/** The whole body, or undefined when it is over the limit (read to its end all the same, up to maxDiscardBytes). */
export async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxDiscardBytes) {
      request.socket.destroySoon();
      return undefined;
    }
    if (size <= maxBodyBytes) chunks.push(chunk as Buffer);
  }
  return size > maxBodyBytes ? undefined : Buffer.concat(chunks);
}
