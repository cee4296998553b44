import fs from 'node:fs';
import net from 'node:net';

/**
 * The kernel's ephemeral range: the source ports of outgoing connections (Postgres, HTTP, gRPC) and of `listen(0)`
 * come from it, so a port picked there and released can be taken by any connection before its process binds it
 * (seen: the worker's metrics port "already in use" under `npm start`). Ports are picked below it instead.
 */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return [Number(low), Number(high)];
  } catch {
    return [32768, 60999];
  }
}

const [EPHEMERAL_LOW] = ephemeralRange();
const LOW = Math.max(1024, EPHEMERAL_LOW - 12_000);

const listens = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** Whatever `listen(0)` gets (a machine whose ephemeral range leaves no room below it). */
function anyPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A free TCP port on loopback, outside the ephemeral range (released before it is returned). */
export async function freePort(): Promise<number> {
  if (EPHEMERAL_LOW - LOW < 1000) return anyPort();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (EPHEMERAL_LOW - LOW));
    if (await listens(port)) return port;
  }
  throw new Error(`no free port between ${LOW} and ${EPHEMERAL_LOW}`);
}
