/**
 * A subscription's `opened` promise with its two outcomes held for the code
 * that sees them (the first `next`, or an error before it). A failure nobody
 * awaits must not crash the process: whoever awaits `opened` still sees it.
 */
export function openedSignal(): { opened: Promise<void>; markOpened: () => void; fail: (error: Error) => void } {
  let markOpened!: () => void;
  let fail!: (error: Error) => void;
  const opened = new Promise<void>((resolve, reject) => {
    markOpened = resolve;
    fail = reject;
  });
  opened.catch(() => undefined);
  return { opened, markOpened, fail };
}
