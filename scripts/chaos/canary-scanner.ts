/**
 * Finds key material in any text: a key in plain form, or inside any base64 run (which covers
 * `base64(key)` and the Basic auth form `base64(key + ":")`). Keys are registered as they are
 * issued, before any of them can reach keyward, so a text is scanned once, when it is seen.
 */
const KEY_FORMAT = /^pleo_[A-Za-z0-9]{40}$/;
const PLAIN = /pleo_[A-Za-z0-9]{40}/g;
const BASE64_RUN = /[A-Za-z0-9+/]{56,}={0,2}/g;

export interface Leak {
  phase: string;
  place: string;
  form: 'plain' | 'base64';
  last4: string;
}

export class CanaryScanner {
  private readonly keys = new Set<string>();
  readonly leaks: Leak[] = [];
  /** The phase running when a text is scanned, to say where a leak happened. */
  phase = 'start-up';
  /** Characters scanned per place, to show each place was really searched. */
  readonly scanned = new Map<string, number>();

  register(key: string): void {
    if (!KEY_FORMAT.test(key)) throw new Error('canary keys must have the sandbox format (pleo_ + 40 letters/digits) for the scanner to see them');
    this.keys.add(key);
  }

  get size(): number {
    return this.keys.size;
  }

  /** Returns the leaks found in this text (also kept in `leaks`). */
  scan(place: string, text: string): Leak[] {
    this.scanned.set(place, (this.scanned.get(place) ?? 0) + text.length);
    const found: Leak[] = [];
    for (const match of text.matchAll(PLAIN)) {
      if (this.keys.has(match[0])) found.push({ phase: this.phase, place, form: 'plain', last4: match[0].slice(-4) });
    }
    for (const match of text.matchAll(BASE64_RUN)) {
      // A base64 value may start at any of three offsets inside a longer run; decode each.
      for (let offset = 0; offset < 4; offset++) {
        const decoded = Buffer.from(match[0].slice(offset), 'base64').toString('latin1');
        for (const inner of decoded.matchAll(PLAIN)) {
          if (this.keys.has(inner[0])) found.push({ phase: this.phase, place, form: 'base64', last4: inner[0].slice(-4) });
        }
      }
    }
    this.leaks.push(...found);
    return found;
  }

  /** Proves the scanner sees each form it claims to (run once at start, on a registered key). */
  selfTest(key: string): void {
    const forms = [key, Buffer.from(key).toString('base64'), Buffer.from(`${key}:`).toString('base64'), `Basic ${Buffer.from(`${key}:`).toString('base64')}"`];
    for (const form of forms) {
      const probe = new CanaryScanner();
      probe.register(key);
      if (probe.scan('self-test', `{"x":"${form}"}`).length === 0) throw new Error('canary scanner self-test failed: a registered key was not found');
    }
  }
}
