/**
 * The client's text/event-stream reader on bytes as a network delivers them:
 * a CRLF line end split across two chunks is one line end, and a stream that
 * never ends an event is refused past 1 MiB instead of held in memory.
 */
import { expect, test } from 'vitest';
import { serverSentEvents } from '../../client/transports.js';

const stream = (chunks: string[]) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
      controller.close();
    },
  });

test('a CRLF split across chunks ends one line, not an event', async () => {
  const events = [];
  for await (const event of serverSentEvents(stream(['event: next\r', '\ndata: {"a":', '1}\r\n\r\n']))) events.push(event);
  expect(events).toEqual([{ type: 'next', data: '{"a":1}' }]);
});

test('an event that never ends is refused past 1 MiB', async () => {
  const endless = Array.from({ length: 20 }, () => `data: ${'x'.repeat(100_000)}\n`);
  const read = async () => {
    for await (const event of serverSentEvents(stream(endless))) void event;
  };
  await expect(read()).rejects.toThrow(/an event over 1048576 bytes/);
});
