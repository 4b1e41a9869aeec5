import { describe, expect, it } from 'vitest';
import { ENV, readEnv, storableText, TRAINER_LIMITS } from '../src/index.ts';

describe('storableText', () => {
  it('NUL in an error message: control characters become visible escapes Postgres can store', () => {
    expect(storableText('bad\u0000byte\u0007 and \u001b[31mred')).toBe('bad\\x00byte\\x07 and \\x1b[31mred');
    // Tabs and line breaks are text, and stay.
    expect(storableText('line one\n\tline two\r\n')).toBe('line one\n\tline two\r\n');
  });

  it('replaces unpaired surrogates and cuts to the limit', () => {
    expect(storableText('a\ud800b\udc00c😀')).toBe('a\ufffdb\ufffdc😀');
    const long = storableText('x'.repeat(50), 10);
    expect(long).toBe(`${'x'.repeat(9)}…`);
    expect(long.length).toBe(10);
  });
});

describe('trainer limits', () => {
  it('are the defaults of their environment variables', () => {
    const env = readEnv({});
    expect(env.HEADBENCH_MAX_DOWNLOAD_BYTES).toBe(TRAINER_LIMITS.downloadBytes);
    expect(env.HEADBENCH_MAX_UNPACKED_BYTES).toBe(TRAINER_LIMITS.unpackedBytes);
    expect(ENV.HEADBENCH_ALLOW_HOSTS.schema.safeParse('files.lab:8080,[::1]:9000,data.example').success).toBe(
      true,
    );
    expect(ENV.HEADBENCH_ALLOW_HOSTS.schema.safeParse('http://evil/').success).toBe(false);
  });
});
