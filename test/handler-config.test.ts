import { describe, expect, it } from 'vitest';
import { parseDotEnv, readConfig, validateSlackWebhookUrl } from '../handler.ts';

describe('readConfig', () => {
  it('fails at start with what to set when the signing secret is missing', () => {
    expect(() => readConfig({})).toThrow(/PLATFORM_SIGNING_SECRET is not set/);
    expect(() => readConfig({ PLATFORM_SIGNING_SECRET: '  ' })).toThrow(
      expect.objectContaining({ code: 'missing_secret' }),
    );
  });

  it('uses local defaults when only the secret is set', () => {
    expect(readConfig({ PLATFORM_SIGNING_SECRET: 's' })).toMatchObject({
      signingSecrets: ['s'],
      slackWebhookUrl: undefined,
      port: 3000,
      host: '127.0.0.1',
      maxBodyBytes: 1024 * 1024,
    });
  });

  it('accepts the previous secret for a rotation, current first', () => {
    const config = readConfig({
      PLATFORM_SIGNING_SECRET: 'new',
      PLATFORM_SIGNING_SECRET_PREVIOUS: 'old',
    });
    expect(config.signingSecrets).toEqual(['new', 'old']);
  });

  it('refuses a PORT past 65535 at start instead of failing to listen', () => {
    expect(() => readConfig({ PLATFORM_SIGNING_SECRET: 's', PORT: '70000' })).toThrow(
      /PORT must be an integer from 0 to 65535/,
    );
  });

  it.each(['abc', '-1', '1.5', '1e3'])('refuses MAX_BODY_BYTES=%s', (value) => {
    expect(() => readConfig({ PLATFORM_SIGNING_SECRET: 's', MAX_BODY_BYTES: value })).toThrow(
      expect.objectContaining({ code: 'invalid_number' }),
    );
  });
});

describe('validateSlackWebhookUrl', () => {
  it.each([
    'https://hooks.slack.com/services/T0/B0/x',
    'http://127.0.0.1:4000/services/demo',
    'http://localhost:4000/',
    'http://[::1]:4000/',
  ])('accepts %s', (url) => {
    expect(() => validateSlackWebhookUrl(url)).not.toThrow();
  });

  it.each([
    'http://hooks.slack.com/services/T0/B0/x',
    'https://hooks.slack.com.evil.example/services/x',
    'https://example.com/services/x',
    'http://10.0.0.5/services/x',
    'https://user:pw@hooks.slack.com/services/x',
    'not a url',
  ])('refuses %s', (url) => {
    expect(() => validateSlackWebhookUrl(url)).toThrow(
      expect.objectContaining({ code: 'invalid_slack_url' }),
    );
  });

  it('does not repeat the secret path of the URL in its message', () => {
    expect(() => validateSlackWebhookUrl('https://example.com/services/T0/B0/sekrit')).toThrow(
      expect.not.objectContaining({ message: expect.stringContaining('sekrit') }),
    );
  });
});

describe('parseDotEnv', () => {
  it('reads keys, quotes, comments and export prefixes', () => {
    const text = [
      '# local settings',
      'PLATFORM_SIGNING_SECRET=abc123',
      'export PORT=4001',
      'SLACK_WEBHOOK_URL="http://127.0.0.1:4000/x" ',
      "QUOTED='has # inside'",
      'TRAILING=value # comment',
      'not a line',
      '',
    ].join('\r\n');
    expect(parseDotEnv(text)).toEqual({
      PLATFORM_SIGNING_SECRET: 'abc123',
      PORT: '4001',
      SLACK_WEBHOOK_URL: 'http://127.0.0.1:4000/x',
      QUOTED: 'has # inside',
      TRAILING: 'value',
    });
  });
});
