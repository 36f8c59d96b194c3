import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (for a process or container the caller
 * starts). Taken below the kernel's range for outgoing connections' local ports: a port from
 * that range can be taken by any client connecting in the moment between this check and the
 * caller's bind (the compose smoke test once lost its intake port that way).
 */
export async function freePort(): Promise<number> {
  const ceiling = Math.min(ephemeralFloor(), 65_536);
  const floor = Math.max(10_000, ceiling - 20_000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = floor + Math.floor(Math.random() * (ceiling - floor));
    if (await isFree(port)) return port;
  }
  throw new Error(`no free port found between ${floor} and ${ceiling}`);
}

function ephemeralFloor(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768; // Linux's default, and below the range other systems use
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
