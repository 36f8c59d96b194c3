import { Webhook } from 'standardwebhooks';
import { WebhookSigningSecret } from '@keyward/config';

/**
 * The Standard Webhooks headers (https://www.standardwebhooks.com): `webhook-id` is the alert
 * event's id (the same on every attempt, so a receiver can drop repeats), `webhook-timestamp`
 * the moment of this attempt, and `webhook-signature` one `v1,<base64 HMAC-SHA256>` per secret
 * in use, separated by spaces. During a rotation window both the current and the previous
 * secret sign, so a receiver holding either one accepts the delivery.
 */
export function standardWebhookHeaders(secrets: WebhookSigningSecret[], messageId: string, body: string, now = new Date()): Record<string, string> {
  const timestamp = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const signatures = signingSecretsAt(secrets, now).map((s) => new Webhook(s.secret).sign(messageId, timestamp, body));
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp.getTime() / 1000),
    ...(signatures.length > 0 ? { 'webhook-signature': signatures.join(' ') } : {}),
  };
}

/** The secrets that sign at `now`: a previous secret stops at the end of its window. */
export function signingSecretsAt(secrets: WebhookSigningSecret[], now = new Date()): WebhookSigningSecret[] {
  return secrets.filter((s) => !s.until || s.until.getTime() > now.getTime());
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
export async function postWebhook(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<WebhookAttemptResult> {
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
