import type { PresetDictionary } from './compressed-json';

/**
 * Preset dictionaries for deflating short JSON documents (compressed-json.ts): the strings such a document usually
 * holds, so that even a single browser event refers back to them instead of spelling them out. Deflate finds the
 * dictionary's end cheapest to refer to, so each one runs from the rarest strings to the commonest.
 *
 * A dictionary can never change once items have been written with it (they would no longer inflate): a better one
 * goes in a new attribute, beside this one, which stays readable. test/unit/dictionaries.test.ts pins their bytes.
 */

const dictionary = (attribute: string, fragments: readonly string[]): PresetDictionary => ({ attribute, bytes: Buffer.from(fragments.join(''), 'utf8') });

/** A stored event chunk: a JSON array of Segment messages (the spec's fields, the common SDKs' context). */
export const eventDictionary = dictionary('zd', [
  // Mobile SDKs' context.
  '"os":{"name":"iOS","version":""},"device":{"id":"","advertisingId":"","manufacturer":"Apple","model":"","type":"ios","name":""},',
  '"app":{"name":"","version":"","build":"","namespace":""},"network":{"wifi":true,"carrier":"","cellular":false},',
  '"screen":{"width":,"height":,"density":2},',
  // Spec fields of campaigns, referrers and e-commerce.
  '"campaign":{"name":"","source":"","medium":"","term":"","content":""},"referrer":{"type":"","name":"","url":"","link":""},',
  '"revenue":,"currency":"USD","value":,',
  '"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",',
  '"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",',
  '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",',
  '"library":{"name":"analytics-ios","version":""},"library":{"name":"analytics-android","version":""},',
  '"library":{"name":"analytics-python","version":""},"library":{"name":"analytics-ruby","version":""},',
  '"library":{"name":"@segment/analytics-node","version":"2."},',
  // identify, group, alias and screen calls.
  '"traits":{"email":"","name":"","firstName":"","lastName":"","plan":"","company":{"name":"","id":""},"createdAt":"20"},',
  '"type":"alias","previousId":"","type":"screen","type":"group","groupId":"","type":"identify",',
  // analytics.js (analytics-next) in a browser: its context and page properties, the commonest browser events.
  '"userAgentData":{"brands":[{"brand":"Chromium","version":""},{"brand":"Google Chrome","version":""},{"brand":"Not-A.Brand","version":"99"}],"mobile":false,"platform":"Windows"},',
  '"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",',
  '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",',
  '"library":{"name":"analytics.js","version":"npm:next-1."},"timezone":"Europe/","timezone":"America/","locale":"en-US","ip":"",',
  '"_metadata":{"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]},"integrations":{},',
  '"type":"page","name":"","properties":{"path":"/","referrer":"https://","search":"","title":"","url":"https://","name":""},',
  '"context":{"page":{"path":"/","referrer":"https://","search":"","title":"","url":"https://"},"userAgent":"Mozilla/5.0 ',
  // Every message.
  '"type":"track","event":"","properties":{"},{"messageId":"ajs-next-","anonymousId":"","userId":"","timestamp":"20","sentAt":"20',
]);

/** An entity's stored state (core/facts' StoredEntityState): the lead state, its lifetime total and open days. */
export const stateDictionary = dictionary('stateZd', [
  '"conversion":{"at":"20","tier":"","signals":[]},"merged":["visitor:","user:"],',
  '{"lead":{"tier":null,"route":null,"score":0,"since":null,"cooldownUntil":null,"sequence":0,"rulesetVersion":"","evaluatedAt":"20',
  '","matched":[],"lastSeen":"20","history":[{"tier":"","previousTier":null,"at":"20","reasons":[" score  >= ","  = (+)"]}],',
  '"scores":[{"at":"20","total":0,"engagement":0,"fit":0}],"signals":[{"name":"","value":0,"points":0}],',
  '"qualification":{"at":"20","tier":"","signals":[]}},',
  '"lifetime":{"day":"lifetime","activity":0,"lastActivity":"20","names":{},"measures":{}},"firstSeen":"20","lastSeen":"20","rollupVersion":"",',
  '"openDays":[{"day":"20","activity":0,"names":{},"measures":{"":{"count":1,"sum":0,"last":"20","distinct":[],"sessions":1},',
  '"":{"count":0,"sum":0,"last":"20"}},"lastActivity":"20',
]);

/**
 * A user's day rollup (core/rules/engine's DayRollup): its measures by signal and its events by name. The evaluator
 * reads a window of them with every evaluation, in a strongly consistent query, which bills their deflated size.
 */
export const dayDictionary = dictionary('rollupZd', [
  '"distinct":[],"sessions":1,"days":1,"first":"20',
  '"names":{"Page Viewed":1,"Logged In":1},"lastActivity":"20',
  '{"day":"20","activity":0,"names":{},"measures":{"":{"count":1,"sum":0,"last":"20"},"":{"count":1,"sum":0,"last":"20"}},"lastActivity":"20',
]);
