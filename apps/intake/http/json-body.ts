import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Refusal } from '@keyward/contracts';

const MAX_BODY_BYTES = 16 * 1024;

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const [type, ...params] = contentType.split(';').map((part) => part.trim().toLowerCase());
  if (type !== 'application/json') return false;
  const charset = params.find((p) => p.startsWith('charset='));
  return !charset || charset === 'charset=utf-8' || charset === 'charset="utf-8"';
}

/**
 * Reads a JSON body of at most `limit` bytes, before Nest's default parsers (which then see a
 * finished request and skip it). Refusals are Refusals: 415 for anything but JSON, 413 over
 * the limit, 400 for malformed JSON — without the parser's message, which quotes the input.
 */
export function readJsonBody(limit = MAX_BODY_BYTES): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!hasBody(req)) {
      req.body = undefined;
      next();
      return;
    }
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    const refusal = !isJson(req.headers['content-type']) || encoding !== 'identity' ? new Refusal('unsupported_media_type') : undefined;
    const declared = Number(req.headers['content-length'] ?? 0);
    const chunks: Buffer[] = [];
    let received = 0;
    let tooLarge = declared > limit;
    let settled = false;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      next(error);
    };
    // The rest of a refused body is drained (not kept) so the caller can read the answer.
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) tooLarge = true;
      if (!tooLarge && !refusal) chunks.push(chunk);
    });
    req.on('error', () => settle(new Refusal('malformed_json')));
    req.on('end', () => {
      if (tooLarge) return settle(new Refusal('body_too_large'));
      if (refusal) return settle(refusal);
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        req.body = undefined;
        return settle();
      }
      try {
        req.body = JSON.parse(text) as unknown;
      } catch {
        return settle(new Refusal('malformed_json'));
      }
      settle();
    });
  };
}
