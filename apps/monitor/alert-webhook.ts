import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-keyward-signature';

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>">`, the scheme Stripe made familiar:
 * the timestamp is signed too, so a receiver can refuse replays older than its tolerance.
 */
export function signWebhook(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/** What a receiver runs (and what the tests run): constant-time compare, bounded clock tolerance. */
export function verifyWebhookSignature(secret: string, body: string, header: string | undefined, toleranceSeconds = 300, now = Date.now()): boolean {
  if (!header) return false;
  const parts = new Map(
    header.split(',').map((part) => {
      const eq = part.indexOf('=');
      return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(now / 1000 - t) > toleranceSeconds || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}

export interface WebhookAttemptResult {
  delivered: boolean;
  responseStatus: number | null;
  /** Short, URL-free reason for a failed attempt. */
  error: string | null;
}

/**
 * One POST of an alert. Only a 2xx counts; redirects are not followed (a moved endpoint is a
 * configuration problem to surface, not to chase). The error never contains the URL, which may
 * carry a token of the receiver's.
 */
export async function postWebhook(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<WebhookAttemptResult> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'user-agent': 'keyward-monitor', ...headers },
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    const delivered = response.status >= 200 && response.status < 300;
    return { delivered, responseStatus: response.status, error: delivered ? null : `HTTP ${response.status}` };
  } catch (error) {
    const e = error as { name?: string; cause?: { code?: string } };
    const reason = e.name === 'TimeoutError' ? `timeout after ${timeoutMs} ms` : (e.cause?.code ?? e.name ?? 'request failed');
    return { delivered: false, responseStatus: null, error: String(reason).slice(0, 100) };
  }
}
