import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { problem, ProblemCode } from '@keyward/contracts';

/** Problems the page shows without asking the server first (rendered from the one table). */
const PAGE_PROBLEMS: ProblemCode[] = ['install_session_missing', 'key_empty', 'key_has_auth_scheme', 'key_inner_whitespace', 'pleo_slow', 'submission_superseded', 'internal_error'];

export interface ConnectAsset {
  body: string;
  contentType: string;
}

const ASSETS_DIR = join(__dirname, 'assets');

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The page and its two assets, read once at start (the build copies assets/ next to this file). */
export function loadConnectPage(): { html: string; assets: Record<string, ConnectAsset> } {
  const templates = PAGE_PROBLEMS.map((code) => {
    const p = problem(code);
    return `<template id="problem-${code}"><p class="message">${escapeHtml(p.message)}</p><p class="action">${escapeHtml(p.action)}</p></template>`;
  }).join('\n');
  const html = readFileSync(join(ASSETS_DIR, 'connect.html'), 'utf8').replace('{{problems}}', templates);
  return {
    html,
    assets: {
      'connect.js': { body: readFileSync(join(ASSETS_DIR, 'connect.js'), 'utf8'), contentType: 'text/javascript; charset=utf-8' },
      'connect.css': { body: readFileSync(join(ASSETS_DIR, 'connect.css'), 'utf8'), contentType: 'text/css; charset=utf-8' },
    },
  };
}

/**
 * The page's headers: only its own script and style, requests to its own origin, no referrer,
 * nothing cached, and framing only by the origins the operator named (none by default).
 */
export function connectPageHeaders(frameAncestors: string): Record<string, string> {
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'none'",
    "base-uri 'none'",
    "object-src 'none'",
    `frame-ancestors ${frameAncestors}`,
  ].join('; ');
  return {
    'Content-Security-Policy': csp,
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=(), clipboard-read=()',
    ...(frameAncestors === "'none'" ? { 'X-Frame-Options': 'DENY' } : {}),
  };
}
