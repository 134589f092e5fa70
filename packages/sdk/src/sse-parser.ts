// A streaming parser for text/event-stream (the WHATWG "server-sent events" format), bounded in size.
import { SdkError } from "./errors.js";

/** One dispatched event: its type (`message` when none was named), its data, and the last event id. */
export interface SseEvent {
  /** The `event:` field, or `"message"`. */
  readonly type: string;
  /** The `data:` lines joined with `\n`. */
  readonly data: string;
  /** The last event id at dispatch: this event's `id:`, or the latest one before it (may be `""`). */
  readonly lastEventId: string;
}

/** Options for {@link SseParser}. */
export interface SseParserOptions {
  /** The most characters one event (its pending line and data) may hold. Default 8 MiB. */
  readonly maxEventChars?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const DEFAULT_MAX_EVENT_CHARS = 8 * 1024 * 1024;

/**
 * Parses an event stream fed in chunks cut anywhere — inside a line, between CR and LF, inside a UTF-8
 * sequence — following the WHATWG algorithm: lines end in CRLF, LF or CR; `:` starts a comment
 * (heartbeats); `data:` lines accumulate; a blank line dispatches; an `id:` persists until changed, and
 * becomes the last event id at every blank line, even one that dispatches nothing (so a server can move
 * a client's resume point without sending an event). An event cut off by the end of the stream is
 * discarded, never dispatched half-read.
 *
 * Example:
 * ```ts
 * const parser = new SseParser();
 * parser.push("id: 7\nevent: RESOLVED\ndata: {\"id\":7}\n\n"); // [{ type: "RESOLVED", data: '{"id":7}', lastEventId: "7" }]
 * ```
 */
export class SseParser {
  readonly #maxEventChars: number;
  readonly #decoder = new TextDecoder("utf-8");
  #started = false;
  /** A CR ended the last chunk: an LF starting the next one belongs to the same line break. */
  #skipLf = false;
  #line = "";
  #data = "";
  #hasData = false;
  #type = "";
  #idBuffer = "";
  #lastEventId = "";
  #retryMs: number | undefined;

  constructor(options: SseParserOptions = {}) {
    const max = options.maxEventChars ?? DEFAULT_MAX_EVENT_CHARS;
    if (!Number.isSafeInteger(max) || max <= 0) {
      throw new SdkError("maxEventChars must be a positive integer", { reason: "sse_parser" });
    }
    this.#maxEventChars = max;
  }

  /** The last event id as of the latest blank line (what a client resumes from). */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** The reconnection time the server asked for with `retry:`, in ms, if it did. */
  get retryMs(): number | undefined {
    return this.#retryMs;
  }

  /**
   * Feeds the next chunk (bytes, decoded as a UTF-8 stream, or text) and returns the events it
   * completed. Throws `SdkError` (reason `event_too_large`) when one event outgrows the limit.
   */
  push(chunk: Uint8Array | string): SseEvent[] {
    let text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    if (!this.#started && text.length > 0) {
      // TextDecoder drops a leading byte-order mark itself; text input is handled the same way.
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const events: SseEvent[] = [];
    let start = 0;
    if (this.#skipLf && text.length > 0) {
      this.#skipLf = false;
      if (text.charCodeAt(0) === LF) start = 1;
    }
    for (let index = start; index < text.length; index++) {
      const code = text.charCodeAt(index);
      if (code !== LF && code !== CR) continue;
      const line = this.#line + text.slice(start, index);
      this.#line = "";
      if (code === CR) {
        if (index + 1 === text.length) this.#skipLf = true;
        else if (text.charCodeAt(index + 1) === LF) index += 1;
      }
      start = index + 1;
      this.#processLine(line, events);
    }
    this.#line += text.slice(start);
    this.#checkSize();
    return events;
  }

  /** The stream ended: whatever was not yet dispatched is dropped (an incomplete event never counts). */
  end(): void {
    this.#decoder.decode();
    this.#line = "";
    this.#data = "";
    this.#hasData = false;
    this.#type = "";
    this.#skipLf = false;
  }

  #processLine(line: string, events: SseEvent[]): void {
    if (line.length === 0) {
      this.#dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 0x3a) return; // ":" — a comment, such as a heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    switch (field) {
      case "event":
        this.#type = value;
        break;
      case "data":
        this.#data = this.#hasData ? `${this.#data}\n${value}` : value;
        this.#hasData = true;
        this.#checkSize();
        break;
      case "id":
        if (!value.includes("\u0000")) this.#idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.#retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored, as the format requires
    }
  }

  #dispatch(events: SseEvent[]): void {
    this.#lastEventId = this.#idBuffer;
    if (this.#hasData) {
      events.push({
        type: this.#type === "" ? "message" : this.#type,
        data: this.#data,
        lastEventId: this.#lastEventId,
      });
    }
    this.#data = "";
    this.#hasData = false;
    this.#type = "";
  }

  #checkSize(): void {
    if (this.#line.length + this.#data.length > this.#maxEventChars) {
      throw new SdkError("An event in the stream is larger than the limit", { reason: "event_too_large" });
    }
  }
}
