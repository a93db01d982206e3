import { sameDigest, sign, verifySignature } from '../../src/modules/plugin-callbacks/webhook-signature.js';

// The example of the Standard Webhooks specification (standard-webhooks/standard-webhooks).
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TS = 1614265330;
const BODY = Buffer.from('{"test": 2432232314}');
const EXPECTED = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

describe('Standard Webhooks signatures', () => {
  const headers = (signature: string, ts = String(TS)) => ({ id: ID, timestamp: ts, signature });

  it('signs as the specification does', () => {
    expect(sign(SECRET, ID, TS, BODY)).toBe(EXPECTED);
  });

  it('accepts any valid one of several signatures, within ±300 s', () => {
    expect(verifySignature(headers(EXPECTED), BODY, [SECRET], TS)).toBeUndefined();
    expect(verifySignature(headers(`v1,bm9wZQ== ${EXPECTED}`), BODY, [SECRET], TS + 300)).toBeUndefined();
    expect(verifySignature(headers(EXPECTED), BODY, ['whsec_AAAA', SECRET], TS - 300)).toBeUndefined();
  });

  it('names what is wrong', () => {
    expect(verifySignature(headers(EXPECTED), BODY, [SECRET], TS + 301)).toBe('stale timestamp');
    expect(verifySignature(headers(EXPECTED), BODY, [SECRET], TS - 301)).toBe('timestamp in the future');
    expect(verifySignature(headers(EXPECTED, '1614265330.5'), BODY, [SECRET], TS)).toBe('malformed timestamp');
    expect(verifySignature({ id: ID, timestamp: String(TS) }, BODY, [SECRET], TS)).toBe('missing webhook headers');
    expect(verifySignature(headers(EXPECTED), Buffer.from('{"test":2432232314}'), [SECRET], TS)).toBe(
      'invalid signature',
    );
    expect(verifySignature(headers(EXPECTED.replace('v1,', 'v2,')), BODY, [SECRET], TS)).toBe('invalid signature');
    expect(verifySignature(headers(EXPECTED), BODY, ['whsec_AAAA'], TS)).toBe('invalid signature');
  });

  it('compares digests in constant time, false for different lengths', () => {
    expect(sameDigest('abcd', 'abcd')).toBe(true);
    expect(sameDigest('abcd', 'abce')).toBe(false);
    expect(sameDigest('abcd', 'abcdef')).toBe(false);
    expect(sameDigest('', '')).toBe(false);
  });
});
