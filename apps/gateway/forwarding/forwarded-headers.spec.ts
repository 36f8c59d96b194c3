import { headersForCaller, headersForPleo } from './forwarded-headers';

describe('headersForPleo', () => {
  it("drops the caller's credentials, cookies, host, hop-by-hop headers and those Connection names; sets the key", () => {
    const out = headersForPleo(
      {
        authorization: 'Bearer caller-token',
        cookie: 'a=b',
        host: 'gateway:3004',
        connection: 'keep-alive, X-Private',
        'x-private': '1',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        te: 'trailers',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic eA==',
        'x-forwarded-for': '10.0.0.1',
        accept: 'application/json',
        'content-type': 'application/json',
        'content-length': '12',
      },
      'Basic a2V5Og==',
    );
    expect(out).toEqual({ accept: 'application/json', 'content-type': 'application/json', 'content-length': '12', authorization: 'Basic a2V5Og==' });
  });
});

describe('headersForCaller', () => {
  it("drops hop-by-hop headers and Pleo's WWW-Authenticate, keeps the rest (Retry-After included)", () => {
    const out = headersForCaller({
      'WWW-Authenticate': 'Basic realm="Pleo API"',
      connection: 'close',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'retry-after': '7',
      'content-type': 'application/json',
    });
    expect(out).toEqual({ 'retry-after': '7', 'content-type': 'application/json' });
  });
});
