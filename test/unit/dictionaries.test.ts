import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressedJson, compressedJsonOf } from '../../functions/adapters/dynamodb/compressed-json';
import { dayDictionary, eventDictionary, stateDictionary } from '../../functions/adapters/dynamodb/dictionaries';
import { eventBodyAttributes } from '../../functions/adapters/dynamodb/event-body';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** An analytics.js page call as stored (writeKey removed): ~1 KB of JSON. */
const browserPage = {
  messageId: 'ajs-next-1793491244461-0a8afdbb-225d-4075-abbf-d7a80064f77a',
  anonymousId: '5da9210c-3e14-4e1b-a80a-aea22d7a46e2',
  timestamp: '2026-11-01T00:00:44.461Z',
  sentAt: '2026-11-01T00:00:44.757Z',
  context: {
    page: { path: '/app/reports', referrer: 'https://www.example.org/blog/launch', search: '', title: 'Reports · Example', url: 'https://app.example.org/app/reports' },
    userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    userAgentData: { brands: [{ brand: 'Google Chrome', version: '131' }, { brand: 'Chromium', version: '131' }, { brand: 'Not_A Brand', version: '24' }], mobile: false, platform: 'macOS' },
    locale: 'de-DE',
    library: { name: 'analytics.js', version: 'npm:next-1.70.0' },
    timezone: 'Europe/Berlin',
  },
  integrations: {},
  type: 'page',
  name: 'Reports',
  properties: { path: '/app/reports', referrer: 'https://www.example.org/blog/launch', search: '', title: 'Reports · Example', url: 'https://app.example.org/app/reports', name: 'Reports' },
  _metadata: { bundled: ['Segment.io'], unbundled: [], bundledIds: [] },
};

describe('preset dictionaries', () => {
  it('never change: stored items inflate only with the exact bytes they were deflated with', () => {
    // A failure here means a dictionary in use was edited: restore it, and add a new one under a new attribute instead.
    expect({ attribute: eventDictionary.attribute, sha256: sha256(eventDictionary.bytes) }).toEqual({ attribute: 'zd', sha256: EVENT_SHA256 });
    expect({ attribute: stateDictionary.attribute, sha256: sha256(stateDictionary.bytes) }).toEqual({ attribute: 'stateZd', sha256: STATE_SHA256 });
    expect({ attribute: dayDictionary.attribute, sha256: sha256(dayDictionary.bytes) }).toEqual({ attribute: 'rollupZd', sha256: DAY_SHA256 });
  });

  it('make a day rollup under half its JSON, and read back exactly', () => {
    const rollup = {
      day: '2026-11-20',
      activity: 7,
      names: { 'Page Viewed': 4, 'Dashboard Created': 2, 'Report Exported': 1 },
      measures: {
        dashboards_30d: { count: 2, sum: 0, last: '2026-11-20T15:02:11.000Z' },
        invited: { count: 1, sum: 0, last: '2026-11-20T09:41:00.000Z', distinct: ['ana@example.org'] },
        active_7d: { count: 7, sum: 0, last: '2026-11-20T17:30:05.000Z', sessions: 2 },
      },
      lastActivity: '2026-11-20T17:30:05.000Z',
    };
    const json = JSON.stringify(rollup);
    const names = { text: 'rollup', deflated: 'rollupZ', dictionary: dayDictionary };
    const item = compressedJson(json, names);
    expect(item['rollupZd']?.B?.length).toBeLessThan(json.length / 2);
    expect(compressedJsonOf(item, names)).toBe(json);
    // Written before the dictionary: text.
    expect(compressedJsonOf({ rollup: { S: json } }, names)).toBe(json);
  });

  it('halve a single browser event deflated alone, and read back exactly', () => {
    const json = JSON.stringify([browserPage]);
    const item = eventBodyAttributes(json);
    const alone = deflateRawSync(json).length;
    expect(item['zd']?.B?.length).toBeLessThan(alone * 0.65);
    expect(compressedJsonOf(item, { text: 'msg', deflated: 'z', dictionary: eventDictionary })).toBe(json);
  });

  it('read what was written before them: text, and deflated with no dictionary', () => {
    const names = { text: 'state', deflated: 'stateZ', dictionary: stateDictionary };
    const json = JSON.stringify({ lead: { tier: 'PQL-A', history: Array.from({ length: 20 }, (_, i) => ({ at: `2026-11-${10 + i}` })) }, rollupVersion: 'v1' });
    expect(compressedJsonOf({ state: { S: json } }, names)).toBe(json);
    expect(compressedJsonOf({ stateZ: { B: deflateRawSync(json) } }, names)).toBe(json);
    expect(Object.keys(compressedJson(json, names))).toEqual(['stateZd']);
    expect(compressedJsonOf(compressedJson(json, names), names)).toBe(json);
    // Without a dictionary, short JSON stays text (deflating it would not save a billing unit).
    expect(compressedJson('{"a":1}', { text: 'event', deflated: 'eventDeflated' })).toEqual({ event: { S: '{"a":1}' } });
  });
});

const EVENT_SHA256 = 'd0ed7becf2d7e832d21f1132363856b0b617f37172302add0a002d624a1a549e';
const STATE_SHA256 = 'f2ccef1a8ff8b3016477920cc74c63de35b4ffd9812609b90fa332d79bd8e335';
const DAY_SHA256 = 'aa08ba65581076168968c06dea93c8ea8e1e8de9bd6f906a0fe727f6125c8f1d';
