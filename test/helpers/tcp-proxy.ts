/**
 * A TCP proxy in front of a test server: clients connect through it, and
 * cut() drops every connection at once, as a network fault would, whatever
 * the protocol on top (HTTP, SSE, WebSocket). The server stays up.
 */
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type TcpProxy = {
  /** The target URL with the proxy's port, e.g. http://127.0.0.1:51234 */
  url: string;
  /** Connections open through the proxy now. */
  openConnections(): number;
  /** Connections accepted since the proxy started. */
  acceptedConnections(): number;
  /** Destroys every open connection (both sides); new ones are accepted. */
  cut(): void;
  /** Sends new connections to another server from now on (a restarted service on a new port). */
  retarget(url: string): void;
  close(): Promise<void>;
};

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  let target = new URL(targetUrl);
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    const upstream = connect(Number(target.port), target.hostname);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      if (!pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const cut = () => {
    for (const [client, upstream] of [...pairs]) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    openConnections: () => pairs.size,
    acceptedConnections: () => accepted,
    cut,
    retarget: (url) => {
      target = new URL(url);
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
