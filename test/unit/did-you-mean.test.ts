import { describe, expect, it } from 'vitest';
import { closestName, didYouMean, editDistance } from '../../functions/core/did-you-mean';

describe('editDistance', () => {
  it.each<[a: string, b: string, distance: number]>([
    ['window', 'window', 0],
    ['windw', 'window', 1],
    ['widnow', 'window', 1],
    ['windows', 'window', 1],
    ['wimdow', 'window', 1],
    ['wndwo', 'window', 2],
    ['', 'abc', 3],
    ['abc', '', 3],
    ['ca', 'abc', 3],
  ])('%s -> %s: %i', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
    expect(editDistance(b, a)).toBe(distance);
  });
});

describe('closestName', () => {
  const keys = ['event', 'events', 'window', 'since_signup', 'distinct', 'at_least', 'at_most'];
  it.each<[name: string, meant: string | undefined]>([
    ['windw', 'window'],
    ['sinse_signup', 'since_signup'],
    ['distnict', 'distinct'],
    ['atleast', 'at_least'],
    ['evnts', 'events'],
    // Equally close (one edit from event and from events): the first known name.
    ['evens', 'event'],
    // Short names get one edit, longer ones two; nothing further is a typo.
    ['evet', 'event'],
    ['colour', undefined],
    ['wind', undefined],
    ['at_mst_', 'at_most'],
    ['sum', undefined],
  ])('%s: %s', (name, meant) => {
    expect(closestName(name, keys)).toBe(meant);
  });

  it('ignores case, and never suggests the name itself', () => {
    expect(closestName('pql-a', ['PQL-A', 'PQL-B'])).toBe('PQL-A');
    expect(closestName('window', ['window'])).toBeUndefined();
  });

  it('words the suggestion for a message, or gives nothing', () => {
    expect(didYouMean('windw', keys)).toBe('; did you mean "window"?');
    expect(didYouMean('colour', keys)).toBe('');
  });
});
