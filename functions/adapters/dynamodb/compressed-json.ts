import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Item } from './batch-write';

/**
 * JSON kept in an item as text, or, when it is long enough to cost another write unit (DynamoDB bills writes per KB,
 * reads per 4 KB), deflated into a binary attribute of its own. Event bodies, entity states and outbox events are
 * kept this way.
 */
export interface CompressedJsonAttributes {
  /** The attribute holding the JSON as text. */
  text: string;
  /** The attribute holding it deflated (raw deflate) with no dictionary: written when there is none, read always. */
  deflated: string;
  /**
   * A preset dictionary of the strings such JSON usually holds (its field names, common values), and the attribute
   * that holds the JSON deflated with it. Written instead of `deflated` (items written before it still read): a
   * short document deflates poorly on its own, since it has little to refer back to.
   */
  dictionary?: PresetDictionary;
}

export interface PresetDictionary {
  attribute: string;
  /** Must never change once items have been written with it: a new dictionary needs a new attribute. */
  bytes: Buffer;
}

/** Below this, deflating with no dictionary cannot bring an item under a smaller billing unit worth the CPU. */
const deflateFrom = 600;

export function compressedJson(json: string, names: CompressedJsonAttributes): Item {
  const { dictionary } = names;
  const length = Buffer.byteLength(json);
  if (!dictionary && length < deflateFrom) return { [names.text]: { S: json } };
  const deflated = dictionary ? deflateRawSync(json, { dictionary: dictionary.bytes }) : deflateRawSync(json);
  if (deflated.length >= length) return { [names.text]: { S: json } };
  return { [dictionary?.attribute ?? names.deflated]: { B: deflated } };
}

/** The JSON text, from any of its forms; undefined for an item that holds none. */
export function compressedJsonOf(item: Item | undefined, names: CompressedJsonAttributes): string | undefined {
  const { dictionary } = names;
  const withDictionary = dictionary ? item?.[dictionary.attribute]?.B : undefined;
  if (withDictionary !== undefined) return inflateRawSync(withDictionary, { dictionary: dictionary!.bytes }).toString('utf8');
  const deflated = item?.[names.deflated]?.B;
  if (deflated !== undefined) return inflateRawSync(deflated).toString('utf8');
  return item?.[names.text]?.S;
}
