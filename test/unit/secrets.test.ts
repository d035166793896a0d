import { afterEach, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { textSink } from '../../src/redaction/sinks.js';
import {
  clearRegisteredSecrets,
  readSecret,
  redact,
  redactDeep,
  redactedJson,
  redactUrl,
  registerBasicAuth,
  registerHeaderValue,
  registerProxyEnv,
  registerUrlSecrets,
} from '../../src/secrets.js';

afterEach(() => clearRegisteredSecrets());

describe('URL secrets registered once, redacted everywhere', () => {
  it('redacts every query value and the password of a registered URL from any text, raw or encoded', () => {
    registerUrlSecrets('https://ops:p%40ss-w0rd@prom.example.com/prometheus?access_token=s3cr+et/1234&org=7');
    const text = 'GET https://prom.example.com/prometheus/api/v1/query?access_token=s3cr+et/1234&org=7 (or s3cr%20et%2F1234) failed; value s3cr et/1234; auth p@ss-w0rd';
    const out = redact(text);
    expect(out).not.toContain('s3cr');
    expect(out).not.toContain('p@ss-w0rd');
    expect(out).toContain('access_token=[REDACTED]');
    // A value too short to redact on its own is still redacted beside its name, and nowhere else.
    expect(out).toContain('org=[REDACTED]');
    expect(redact('retries: 7')).toBe('retries: 7');
  });

  it('redacts a short value only beside its name, so a tenant like "shop" stays readable elsewhere', () => {
    registerUrlSecrets('http://thanos:9090/?tenant=shop&dedup=true&access_token=0123456789abcdef');
    expect(redact('namespace shop, dedup true; GET /?tenant=shop&dedup=true&access_token=0123456789abcdef; "0123456789abcdef"')).toBe(
      'namespace shop, dedup true; GET /?tenant=[REDACTED]&dedup=[REDACTED]&access_token=[REDACTED]; "[REDACTED]"',
    );
  });

  it('redacts inside records and recordings without touching numbers or structure', () => {
    registerUrlSecrets('http://p:9090/?access_token=abcdef123');
    expect(redactDeep({ error: 'echo abcdef123', status: 502, list: ['x abcdef123'], body: null })).toEqual({
      error: 'echo [REDACTED]',
      status: 502,
      list: ['x [REDACTED]'],
      body: null,
    });
  });

  it('shows a URL with its parameter names but no values and no user info', () => {
    expect(redactUrl('https://u:pw@hooks.example.com/x?token=abc&sig=def')).toBe('https://hooks.example.com/x?token=[REDACTED]&sig=[REDACTED]');
    expect(redactUrl('http://prom:9090/')).toBe('http://prom:9090/');
  });
});

describe('every wire form of a secret', () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64');

  it('basic auth: the password, base64(user:password) and the whole "Basic …" value', () => {
    registerBasicAuth('alice', 'pa/ss+word9');
    const header = `Authorization: Basic ${b64('alice:pa/ss+word9')}`;
    expect(redact(header)).toBe('Authorization: [REDACTED]');
    expect(redact(b64('alice:pa/ss+word9'))).toBe('[REDACTED]');
    expect(redact('pa%2Fss%2Bword9 and "pa\\/ss+word9"')).toBe('[REDACTED] and "[REDACTED]"');
  });

  it('URL user info and a proxy from the environment become their Basic / Proxy-Authorization forms', () => {
    registerUrlSecrets('https://bob:s3cr%2Fet-pw@prom.example.com');
    registerProxyEnv({ HTTPS_PROXY: 'http://carol:pr0xy/pass@proxy:3128' });
    expect(redact(`Basic ${b64('bob:s3cr/et-pw')}`)).toBe('[REDACTED]');
    expect(redact(`Proxy-Authorization: Basic ${b64('carol:pr0xy/pass')}`)).toBe('Proxy-Authorization: [REDACTED]');
  });

  it('a token with "/" is caught as written in JSON ("\\/"), and again once JSON.parse has decoded it', () => {
    registerHeaderValue('X-Api-Key', 'key/with/slashes-01');
    const echoed = '{"error":"X-Api-Key: key\\/with\\/slashes-01"}';
    expect(redact(echoed)).toBe('{"error":"X-Api-Key: [REDACTED]"}');
    expect(redactDeep(JSON.parse(echoed) as unknown)).toEqual({ error: 'X-Api-Key: [REDACTED]' });
    expect(redactedJson({ e: 'key/with/slashes-01' })).toBe('{"e":"[REDACTED]"}');
  });

  it('a short header value is redacted beside its name only, so the same word elsewhere survives', () => {
    registerHeaderValue('X-Org', 'shop');
    expect(redact('X-Org: shop; x-org: shop; "X-Org":"shop"; namespace shop')).toBe('X-Org: [REDACTED]; x-org: [REDACTED]; "X-Org":"[REDACTED]"; namespace shop');
  });

  it('a URL that does not parse still has its user info registered', () => {
    registerUrlSecrets('http://dave:pa/ss-word77@prometheus:9090');
    expect(redact('dave:pa/ss-word77@prometheus')).not.toContain('pa/ss-word77');
    registerUrlSecrets('htp:/erin:an0ther/pw@prometheus');
    expect(redact('htp:/erin:an0ther/pw@prometheus')).not.toContain('an0ther/pw');
  });

  it('readSecret registers what it reads', () => {
    process.env['CANARY_TEST_SECRET_REG'] = 'from-env/secret-42';
    try {
      expect(readSecret({ env: 'CANARY_TEST_SECRET_REG' }, 'test')).toBe('from-env/secret-42');
      expect(redact('x from-env%2Fsecret-42 from-env/secret-42')).toBe('x [REDACTED] [REDACTED]');
    } finally {
      delete process.env['CANARY_TEST_SECRET_REG'];
    }
  });

  it('writers take only Redacted text (checked by the compiler)', () => {
    registerHeaderValue('X-Api-Key', 'sink-secret-123');
    const stream = new PassThrough();
    const sink = textSink(stream);
    // @ts-expect-error a plain string must go through redact() first
    sink.write('plain');
    sink.write(redact('value sink-secret-123\n'));
    expect(String(stream.read())).toBe('plainvalue [REDACTED]\n');
  });
});
