import { sameSecret } from '../../src/modules/auth/auth.guard.js';

describe('sameSecret (the METRICS_TOKEN comparison)', () => {
  const token = 'scrape-0123456789abcdef';

  it('accepts the configured secret only', () => {
    expect(sameSecret(token, token)).toBe(true);
    expect(sameSecret(`${token.slice(0, -1)}x`, token)).toBe(false);
    expect(sameSecret(`${token}x`, token)).toBe(false);
    expect(sameSecret(token.slice(1), token)).toBe(false);
    expect(sameSecret('', token)).toBe(false);
  });

  it('never matches an empty configured secret', () => {
    expect(sameSecret('', '')).toBe(false);
  });

  it('compares inputs of any length without throwing (digests of equal size)', () => {
    expect(() => sameSecret('x'.repeat(10_000), token)).not.toThrow();
  });
});
