import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { isDeepStrictEqual } from 'node:util';
import { sseEvents, UpstreamStreamError } from '../../src/modules/llm/upstream.js';
import { chunkings, openAiStreamLines, openAiStreamPayloads, SSE_FORMS, sseText } from '../support/sse-streams.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/**
 * An upstream response body that yields exactly these chunks (a real socket may merge or cut
 * them anywhere). `complete` is false when the body was cut. setEncoding is honoured like a
 * stream's, for a reader that asks for strings.
 */
function body(chunks: Uint8Array[], complete = true): IncomingMessage {
  let decoder: StringDecoder | undefined;
  const res = {
    complete,
    setEncoding(encoding: BufferEncoding) {
      decoder = new StringDecoder(encoding);
      return res;
    },
    async *[Symbol.asyncIterator]() {
      for (const c of chunks) yield decoder ? decoder.write(Buffer.from(c)) : Buffer.from(c);
    },
  };
  return res as unknown as IncomingMessage;
}

async function payloads(res: IncomingMessage): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const e of sseEvents(res)) out.push(e);
  return out;
}

const content = (events: Record<string, unknown>[]): string =>
  events.map((e) => (e.choices as { delta?: { content?: string } }[])[0]?.delta?.content ?? '').join('');

describe('LLM upstream: sseEvents reads the event stream as the SSE spec says', () => {
  it.each(SSE_FORMS)('gives every chunk of a stream with %s endings, however it is cut', async (form) => {
    const all = bytes(sseText(openAiStreamLines, form));
    for (const { name, chunks } of chunkings(all)) {
      const got = await payloads(body(chunks));
      // One failure names the cut (expect() in a loop of hundreds would not say which).
      if (!isDeepStrictEqual(got, openAiStreamPayloads))
        throw new Error(`${form}, ${name}: got ${got.length} events, content ${JSON.stringify(content(got))}`);
    }
    expect(content(await payloads(body([all])))).toBe('你好，世界 🌍!');
  });

  it('does not lose the event after a `\\r\\n\\n` separator (the reported case)', async () => {
    const frame = (text: string): string => `data: {"choices":[{"delta":{"content":"${text}"}}]}\r\n\n`;
    const events = await payloads(body([bytes(frame('abc') + frame('de') + 'data: [DONE]\r\n\n')]));
    expect(content(events)).toBe('abcde');
  });

  it('stops at [DONE] without reading what follows', async () => {
    const text = 'data: {"choices":[]}\r\rdata: [DONE]\r\rdata: not json\r\r';
    expect(await payloads(body([bytes(text)], false))).toEqual([{ choices: [] }]);
  });

  it('throws an in-band error, with CR endings too', async () => {
    const text =
      'data: {"choices":[]}\r\r: keep-alive\rdata: {"error":{"message":"overloaded","type":"server_error"}}\r\r';
    await expect(payloads(body([bytes(text)]))).rejects.toThrow(UpstreamStreamError);
    await expect(payloads(body([bytes(text)]))).rejects.toThrow('overloaded');
  });

  it('skips events without data or with blank data, whatever their type', async () => {
    const text =
      'event: ping\r\n\r\ndata:\r\n\r\ndata:   \r\n\r\nevent: x\r\ndata: {"a":1}\r\n\r\ndata: [DONE]\r\n\r\n';
    expect(await payloads(body([bytes(text)]))).toEqual([{ a: 1 }]);
  });

  it('throws when the body was cut before [DONE], without the event it cut', async () => {
    const text = 'data: {"a":1}\r\rdata: {"b":';
    const seen: Record<string, unknown>[] = [];
    await expect(
      (async () => {
        for await (const e of sseEvents(body([bytes(text)], false))) seen.push(e);
      })(),
    ).rejects.toThrow('upstream stream was cut');
    expect(seen).toEqual([{ a: 1 }]);
  });
});
