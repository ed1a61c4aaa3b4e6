/**
 * A function of a string that remembers its last answer: a client sends the
 * same URL (one Host, one path) request after request, and parsing it each
 * time showed in a request's CPU profile. Only the last pair is kept, so a
 * client varying its URLs costs nothing more than parsing each one.
 */
export function rememberLast<T>(compute: (key: string) => T): (key: string) => T {
  let lastKey: string | undefined;
  let lastValue!: T;
  return (key) => {
    if (key !== lastKey) {
      lastValue = compute(key);
      lastKey = key;
    }
    return lastValue;
  };
}
