import { isDeepStrictEqual } from 'node:util';
import { type SseEvent, SseEventTooLargeError, SseParser } from '../../src/modules/llm/sse-parser.js';
import { chunkings, openAiStreamEvents, openAiStreamLines, SSE_FORMS, sseText } from '../support/sse-streams.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Every event the parser dispatches for these chunks, in order. */
function parse(chunks: Uint8Array[] | string, parser = new SseParser()): SseEvent[] {
  const list = typeof chunks === 'string' ? [bytes(chunks)] : chunks;
  return list.flatMap((c) => parser.push(c));
}

describe('SseParser (WHATWG event stream interpretation)', () => {
  describe.each(SSE_FORMS)('an OpenAI stream with %s line endings', (form) => {
    const text = sseText(openAiStreamLines, form);

    it('gives the same events however its bytes are cut into chunks', () => {
      const all = bytes(text);
      for (const { name, chunks } of chunkings(all)) {
        const events = parse(chunks);
        // One failure names the cut (expect() in a loop of hundreds would not say which).
        if (!isDeepStrictEqual(events, openAiStreamEvents))
          throw new Error(`${form}, ${name}: ${JSON.stringify(events, null, 1)}`);
      }
      expect(parse(text)).toEqual(openAiStreamEvents);
    });
  });

  it('is tested with every ending, and the mixed form has CRLF+LF, CR+CR and LF+CR next to each other', () => {
    expect(sseText(['a', ''], 'cr')).toBe('a\r\r');
    expect(sseText(['a', ''], 'crlf')).toBe('a\r\n\r\n');
    expect(sseText(['a', ''], 'crlf-lf')).toBe('a\r\n\n');
    const mixed = sseText(openAiStreamLines, 'mixed');
    for (const pair of ['\r\n\n', '\n\r', '\r\r']) expect(mixed).toContain(pair);
  });

  it('decodes multi-byte characters cut anywhere, one byte at a time included', () => {
    const all = bytes('data: 中文 🌍 ok\n\n');
    for (const { chunks } of chunkings(all)) expect(parse(chunks).map((e) => e.data)).toEqual(['中文 🌍 ok']);
  });

  it('skips a byte order mark at the very start, even when cut, and only there', () => {
    const all = bytes('\uFEFFdata: 你好\n\ndata: 🌍\n\n');
    expect(all.subarray(0, 3)).toEqual(new Uint8Array([0xef, 0xbb, 0xbf]));
    for (const { chunks } of chunkings(all)) expect(parse(chunks).map((e) => e.data)).toEqual(['你好', '🌍']);
    // A BOM later is part of the line: `\uFEFFdata` is an unknown field, ignored.
    expect(parse([bytes('data: a\n\n'), bytes('\uFEFFdata: b\n\n')]).map((e) => e.data)).toEqual(['a']);
  });

  it('treats a CR ending one chunk and an LF starting the next as one line ending', () => {
    const parser = new SseParser();
    expect(parser.push(bytes('data: a\r'))).toEqual([]);
    // The LF belongs to the CR before it, so this is not the empty line that dispatches.
    expect(parser.push(bytes('\ndata: b\r'))).toEqual([]);
    // A CR alone ends the line at once: the empty line dispatches without waiting for more.
    expect(parser.push(bytes('\r'))).toEqual([{ type: 'message', data: 'a\nb', lastEventId: '' }]);
    // Still one line ending when an empty chunk comes between the CR and the LF.
    expect(parser.push(bytes('data: c\r'))).toEqual([]);
    expect(parser.push(new Uint8Array(0))).toEqual([]);
    expect(parser.push(bytes('\ndata: d\r\n'))).toEqual([]);
    expect(parser.push(bytes('\r\n'))).toEqual([{ type: 'message', data: 'c\nd', lastEventId: '' }]);
  });

  it('drops one space after the colon, no more, and reads a line without a colon as an empty field', () => {
    expect(parse('data:  two\ndata:none\ndata: \ndata\ndata:\n\n')[0].data).toBe(' two\nnone\n\n\n');
    expect(parse('data\n\n')).toEqual([{ type: 'message', data: '', lastEventId: '' }]);
    expect(parse('data:\tx\n\n')[0].data).toBe('\tx');
    expect(parse('data: a: b\n\n')[0].data).toBe('a: b');
  });

  it('ignores comments, unknown fields and field names that only look alike', () => {
    expect(parse(': hi\n:\nfoo: 1\nData: x\n data: y\ndata : z\n\n')).toEqual([]);
    expect(parse(': only a comment\n\n: another\n\n')).toEqual([]);
  });

  it('dispatches on an empty line only when there is data, and clears the event type', () => {
    expect(parse('event: ping\n\ndata: x\n\n')).toEqual([{ type: 'message', data: 'x', lastEventId: '' }]);
    expect(parse('event: a\ndata: 1\n\ndata: 2\n\n').map((e) => e.type)).toEqual(['a', 'message']);
    expect(parse('event: a\nevent: b\ndata: 1\n\n')[0].type).toBe('b');
    expect(parse('event\ndata: 1\n\n')[0].type).toBe('message');
  });

  it('keeps the last event id for the events after it, ignores one with NUL, and an empty id resets it', () => {
    const events = parse('id: 1\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n');
    expect(events.map((e) => e.lastEventId)).toEqual(['1', '1', '1', '']);
    expect(parse('id: 7\n\ndata: a\n\n')[0].lastEventId).toBe('7'); // an id alone dispatches nothing, but sticks
  });

  it('takes retry only when it is all ASCII digits', () => {
    const parser = new SseParser();
    parse('retry: 3000\n', parser);
    expect(parser.reconnectionTimeMs).toBe(3000);
    parse('retry: 12a\nretry: -1\nretry:  5\nretry:\nretry: 1.5\n', parser);
    expect(parser.reconnectionTimeMs).toBe(3000);
    parse('retry: 0\n', parser);
    expect(parser.reconnectionTimeMs).toBe(0);
  });

  it('discards an event the end of the body cuts before its empty line', () => {
    expect(parse('data: a\n\ndata: b\n')).toEqual([{ type: 'message', data: 'a', lastEventId: '' }]);
    expect(parse('data: a\n\ndata: b')).toHaveLength(1);
  });

  it('turns bytes that are not UTF-8 into U+FFFD and goes on', () => {
    expect(parse([new Uint8Array([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0x0a, 0x0a])])[0].data).toBe('\uFFFD');
  });

  it('refuses an event or a line that grows past its bound instead of buffering it', () => {
    const parser = new SseParser(1000);
    const enc = new TextEncoder();
    expect(parser.push(enc.encode(`data: ${'a'.repeat(900)}\n\n`))).toHaveLength(1);
    expect(() => parser.push(enc.encode('data: ' + 'b'.repeat(1200)))).toThrow(SseEventTooLargeError);
    const lines = new SseParser(1000);
    lines.push(enc.encode(`data: ${'c'.repeat(600)}\n`));
    expect(() => lines.push(enc.encode(`data: ${'d'.repeat(600)}\n`))).toThrow(SseEventTooLargeError);
  });
});
