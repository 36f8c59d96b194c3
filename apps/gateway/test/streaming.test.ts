import { createServer, IncomingMessage, request as httpRequest, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from '@keyward/testing';
import { call, GatewayHarness, GatewayInstance, pleoPath, seedTenant, SERVICE_TOKEN, startGatewayHarness } from './gateway-harness';

/**
 * Pleo's answer goes to the caller chunk by chunk (ADR 0028): a caller that stops reading slows
 * the read from Pleo, a caller that goes away drops the call to Pleo, and an answer that breaks
 * off closes the caller's connection instead of passing as complete. Pleo here is a plain HTTP
 * server the test controls.
 */
describe("gateway streaming of Pleo's answer", () => {
  let h: GatewayHarness;
  let pleo: Server;
  let replica: GatewayInstance;
  let onPleoCall: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();

  beforeAll(async () => {
    h = await startGatewayHarness();
    pleo = createServer((req, res) => onPleoCall(req, res));
    await new Promise<void>((resolve) => pleo.listen(0, '127.0.0.1', resolve));
    replica = await h.startReplica({ PLEO_API_BASE_URL: `http://127.0.0.1:${(pleo.address() as AddressInfo).port}`, PLEO_TIMEOUT_MS: '5000' });
  });

  afterAll(async () => {
    pleo?.closeAllConnections();
    await new Promise((resolve) => pleo?.close(resolve));
    await h?.close();
  });

  const metric = async (pattern: RegExp) => Number(pattern.exec(await fetch(`${replica.url}/metrics`).then((r) => r.text()))?.[1] ?? 0);
  const aborted = /keyward_gateway_upstream_errors_total\{kind="aborted",service="gateway"\} (\d+)/;

  /** Opens a call and hands back the answer's head without reading its body. */
  const open = (tenantId: string) =>
    new Promise<{ res: IncomingMessage; destroy: () => void }>((resolve, reject) => {
      const { hostname, port } = new URL(replica.url);
      const req = httpRequest({ host: hostname, port, path: pleoPath(tenantId, '/v1/export-jobs/1/file'), headers: { authorization: `Bearer ${SERVICE_TOKEN}` } }, (res) =>
        resolve({ res, destroy: () => req.destroy() }),
      );
      req.on('error', reject);
      req.end();
    });

  it('a caller that stops reading makes the gateway stop reading from Pleo (memory stays bounded)', async () => {
    const t = await seedTenant(h);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let written = 0;
    let pleoBlocked: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (pleoBlocked = resolve));
    onPleoCall = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/csv' });
      const pump = () => {
        while (written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      // Pleo's socket stays full while the caller does not read: the gateway paused its read.
      const check = setInterval(() => {
        if (res.writableNeedDrain) {
          clearInterval(check);
          pleoBlocked();
        }
      }, 50);
      res.once('close', () => clearInterval(check));
    };
    const { res, destroy } = await open(t.tenantId);
    expect(res.statusCode).toBe(200);
    res.pause();
    await blocked;
    await new Promise((r) => setTimeout(r, 300));
    const stalledAt = written;
    await new Promise((r) => setTimeout(r, 300));
    expect(written).toBe(stalledAt);
    // Socket buffers on both hops and one chunk in flight, not the whole export.
    expect(written).toBeLessThan(32 * 1024 * 1024);
    destroy();
  });

  it('a caller that goes away drops the call to Pleo, and counts as no upstream error', async () => {
    const t = await seedTenant(h);
    const before = await metric(aborted);
    let pleoSawClose: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => (pleoSawClose = resolve));
    onPleoCall = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/csv' });
      res.write('first,row\n');
      res.once('close', () => pleoSawClose());
      // Never ends on its own.
    };
    const { res, destroy } = await open(t.tenantId);
    await new Promise((resolve) => res.once('data', resolve));
    destroy();
    await closed;
    expect(await metric(aborted)).toBe(before);
    // The replica carries on.
    onPleoCall = (_req, r) => r.end('{"data":[]}');
    expect((await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'), { instance: replica })).status).toBe(200);
  });

  it("an answer that breaks off closes the caller's connection and counts as aborted", async () => {
    const t = await seedTenant(h);
    const before = await metric(aborted);
    onPleoCall = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/csv', 'content-length': '1000' });
      res.write('only,part\n');
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const { res } = await open(t.tenantId);
    expect(res.statusCode).toBe(200);
    const ended = await new Promise<string>((resolve) => {
      res.on('data', () => undefined);
      res.once('end', () => resolve('end'));
      res.once('aborted', () => resolve('aborted'));
      res.once('error', () => resolve('error'));
    });
    expect(ended).not.toBe('end');
    await eventually(async () => (await metric(aborted)) === before + 1);
  });
});
