import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Item } from './batch-write';

/**
 * JSON kept in an item as text, or, when it is long enough to cost another write unit (DynamoDB bills writes per KB,
 * reads per 4 KB), deflated into a binary attribute of its own. Event bodies and entity states are kept this way.
 */
export interface CompressedJsonAttributes {
  /** The attribute holding the JSON as text. */
  text: string;
  /** The attribute holding it deflated (raw deflate), when that is smaller. */
  deflated: string;
}

/** Below this, deflating cannot bring an item under a smaller billing unit worth the CPU. */
const deflateFrom = 600;

export function compressedJson(json: string, names: CompressedJsonAttributes): Item {
  if (Buffer.byteLength(json) < deflateFrom) return { [names.text]: { S: json } };
  const deflated = deflateRawSync(json);
  return deflated.length < Buffer.byteLength(json) ? { [names.deflated]: { B: deflated } } : { [names.text]: { S: json } };
}

/** The JSON text, from either form; undefined for an item that holds neither. */
export function compressedJsonOf(item: Item | undefined, names: CompressedJsonAttributes): string | undefined {
  const deflated = item?.[names.deflated]?.B;
  if (deflated !== undefined) return inflateRawSync(deflated).toString('utf8');
  return item?.[names.text]?.S;
}
