import { afterEach, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, redact, redactDeep, redactUrl, registerUrlSecrets } from '../../src/secrets.js';

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
