// A push parser for `text/event-stream` bodies, following the WHATWG "Interpreting an event
// stream" algorithm: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
//
//   const parser = new SseParser();
//   for await (const chunk of res) for (const event of parser.push(chunk)) use(event);
//
// Bytes go in as they arrive, in chunks of any size; complete events come out. What the spec asks
// and this does:
// - The body is UTF-8, decoded with a streaming TextDecoder: a character split across chunks is
//   decoded once its last byte arrives, and one leading byte order mark is skipped.
// - A line ends with CRLF, LF or CR. A CR that ends one chunk and an LF that starts the next are
//   one line ending, not two (the CR ends the line at once; the LF is then dropped).
// - A line starting with `:` is a comment. Otherwise `name: value` (one space after the colon is
//   dropped, no more); a line without a colon is a field with an empty value.
// - `data` lines add to the event's data, joined with `\n`; `event` sets its type; `id` sets the
//   last event id (kept for the events after it; a value with NUL is ignored); `retry` with only
//   ASCII digits sets the reconnection time. Other fields are ignored.
// - An empty line dispatches the event, unless it has no data (then it is dropped and the type is
//   cleared). The body's end discards an event that no empty line finished.

/** One dispatched event. */
export interface SseEvent {
  /** The `event` field, or `message` when the event had none. */
  type: string;
  /** The `data` lines joined with `\n`. */
  data: string;
  /** The last `id` seen so far in the stream ('' when none). */
  lastEventId: string;
}

const LF = 0x0a;
const CR = 0x0d;

/** An upstream event (or a line) grew past the parser's bound without ending. */
export class SseEventTooLargeError extends Error {}

/** Characters one event may hold (its data lines and the line being read): an upstream that never ends a line is cut off, not buffered for. */
const DEFAULT_MAX_EVENT_CHARS = 16 * 1024 * 1024;

export class SseParser {
  constructor(private readonly maxEventChars = DEFAULT_MAX_EVENT_CHARS) {}

  // fatal: false: bytes that are not UTF-8 become U+FFFD, as the spec says. ignoreBOM: false: the
  // decoder skips a byte order mark at the very start of the stream (only there).
  private readonly decoder = new TextDecoder('utf-8');
  /** CRLF before CR, so that a CRLF inside one chunk is one match. */
  private readonly lineEnd = /\r\n|\r|\n/g;
  /** The current line so far: text after the last line ending (it holds no CR or LF). */
  private line = '';
  /** The last chunk ended in CR: an LF starting the next text belongs to that line ending. */
  private afterCr = false;
  private data = '';
  private hasData = false;
  private eventType = '';
  private lastEventIdBuffer = '';
  /** The last valid `retry` value in milliseconds, if any (what a reconnecting client waits). */
  reconnectionTimeMs: number | undefined;

  /** Feeds the next bytes of the body; returns the events they complete, in order. */
  push(chunk: Uint8Array): SseEvent[] {
    let text = this.decoder.decode(chunk, { stream: true });
    if (text.length === 0) return []; // e.g. the first bytes of a split character: nothing to see yet
    if (this.afterCr) {
      this.afterCr = false;
      if (text.charCodeAt(0) === LF) text = text.slice(1);
    }
    const events: SseEvent[] = [];
    let start = 0;
    this.lineEnd.lastIndex = 0;
    for (let m = this.lineEnd.exec(text); m; m = this.lineEnd.exec(text)) {
      const line = start === 0 ? this.line + text.slice(0, m.index) : text.slice(start, m.index);
      this.line = '';
      start = this.lineEnd.lastIndex;
      // A CR as the very last character may be the first half of a CRLF split across chunks.
      if (start === text.length && text.charCodeAt(text.length - 1) === CR) this.afterCr = true;
      this.processLine(line, events);
    }
    this.line += text.slice(start);
    if (this.line.length + this.data.length > this.maxEventChars)
      throw new SseEventTooLargeError(`An upstream event is over ${this.maxEventChars} characters`);
    return events;
  }

  private processLine(line: string, events: SseEvent[]): void {
    if (line.length === 0) return this.dispatch(events);
    const colon = line.indexOf(':');
    if (colon === 0) return; // a comment, e.g. `: keep-alive`
    let name = line;
    let value = '';
    if (colon > 0) {
      name = line.slice(0, colon);
      value = line.slice(line.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1);
    }
    switch (name) {
      case 'data':
        // The spec appends value + LF and drops the final LF at dispatch; joining is the same.
        this.data = this.hasData ? `${this.data}\n${value}` : value;
        this.hasData = true;
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventIdBuffer = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.reconnectionTimeMs = Number(value);
        break;
      default: // unknown fields are ignored
    }
  }

  private dispatch(events: SseEvent[]): void {
    // The last event id is not reset: it carries over to the events after it.
    if (this.hasData)
      events.push({ type: this.eventType || 'message', data: this.data, lastEventId: this.lastEventIdBuffer });
    this.data = '';
    this.hasData = false;
    this.eventType = '';
  }
}
