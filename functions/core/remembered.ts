/**
 * A pure function that remembers its results. A backtest asks for the same few hundred days, and the same users'
 * times, again and again: parsing and formatting them was most of what its day arithmetic cost. At most
 * `maxRemembered` results are kept (all forgotten at once when full), so memory stays flat whatever the input; a
 * call that throws remembers nothing.
 */
export function remembered<K, V>(compute: (key: K) => V, maxRemembered = 100_000): (key: K) => V {
  const results = new Map<K, V>();
  return (key) => {
    let result = results.get(key);
    if (result === undefined) {
      result = compute(key);
      if (results.size >= maxRemembered) results.clear();
      results.set(key, result);
    }
    return result;
  };
}
