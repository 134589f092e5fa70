// The event-stream parser: the WHATWG algorithm, whatever the line endings and wherever chunks are cut.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SdkError } from "@signet/sdk";
import { type SseEvent, SseParser } from "../src/sse-parser.js";

function parseAll(chunks: readonly (string | Uint8Array)[]): { events: SseEvent[]; parser: SseParser } {
  const parser = new SseParser();
  const events = chunks.flatMap((chunk) => parser.push(chunk));
  return { events, parser };
}

describe("SseParser", () => {
  it("reads id, event and data, and dispatches on a blank line", () => {
    const { events, parser } = parseAll(['id: 7\nevent: RESOLVED\ndata: {"id":7}\n\n']);
    expect(events).toEqual([{ type: "RESOLVED", data: '{"id":7}', lastEventId: "7" }]);
    expect(parser.lastEventId).toBe("7");
  });

  it("joins multi-line data with LF and names an untyped event message", () => {
    const { events } = parseAll(["data: first\ndata:second\ndata:  third\ndata\n\n"]);
    expect(events).toEqual([{ type: "message", data: "first\nsecond\n third\n", lastEventId: "" }]);
  });

  it("skips comments and heartbeats, and ignores unknown fields", () => {
    const { events } = parseAll([": ping\n\n: watching after 4\nfoo: bar\ndata: x\n: mid-event comment\n\n"]);
    expect(events).toEqual([{ type: "message", data: "x", lastEventId: "" }]);
  });

  it("treats CRLF, CR and LF alike", () => {
    const lf = parseAll(["id: 1\nevent: A\ndata: a\ndata: b\n\n"]).events;
    expect(parseAll(["id: 1\r\nevent: A\r\ndata: a\r\ndata: b\r\n\r\n"]).events).toEqual(lf);
    expect(parseAll(["id: 1\revent: A\rdata: a\rdata: b\r\r"]).events).toEqual(lf);
    expect(parseAll(["id: 1\r\nevent: A\rdata: a\ndata: b\r\n\n"]).events).toEqual(lf);
  });

  it("takes a CRLF split across two chunks as one line break", () => {
    // Read as two breaks, the CR alone would end the event early with data "a".
    const { events } = parseAll(["data: a\r", "\ndata: b\r", "\n\r", "\n"]);
    expect(events).toEqual([{ type: "message", data: "a\nb", lastEventId: "" }]);
  });

  it("keeps the last id for later events, and moves it on an id-only block", () => {
    const { events, parser } = parseAll(["id: 3\ndata: a\n\ndata: b\n\nid: 9\n\n"]);
    expect(events.map((event) => event.lastEventId)).toEqual(["3", "3"]);
    expect(parser.lastEventId).toBe("9");
  });

  it("moves the last event id only at a blank line, never mid-event", () => {
    const parser = new SseParser();
    parser.push("id: 1\ndata: one\n\nid: 2\ndata: tw");
    expect(parser.lastEventId).toBe("1");
  });

  it("ignores an id holding NUL, and reads retry only when it is all digits", () => {
    const { events, parser } = parseAll([
      "id: 5\ndata: a\n\nid: 6\u00007\nretry: 12x\ndata: b\n\nretry: 1500\n\n",
    ]);
    expect(events.map((event) => event.lastEventId)).toEqual(["5", "5"]);
    expect(parser.retryMs).toBe(1500);
  });

  it("discards an event cut off by the end of the stream", () => {
    const parser = new SseParser();
    expect(parser.push('id: 4\nevent: MESSAGE_ACCEPTED\ndata: {"id":4,')).toEqual([]);
    parser.end();
    expect(parser.push("\n\n")).toEqual([]);
  });

  it("drops a leading byte-order mark, in text and in bytes", () => {
    expect(parseAll(["\ufeffdata: x\n\n"]).events).toEqual([{ type: "message", data: "x", lastEventId: "" }]);
    const bytes = Buffer.from("\ufeffdata: x\n\n", "utf8");
    expect(parseAll([bytes.subarray(0, 2), bytes.subarray(2)]).events).toEqual([
      { type: "message", data: "x", lastEventId: "" },
    ]);
  });

  it("decodes UTF-8 split inside a character", () => {
    const bytes = Buffer.from("data: café ✓ 😀\n\n", "utf8");
    const chunks = [...bytes].map((byte) => Uint8Array.of(byte));
    expect(parseAll(chunks).events).toEqual([{ type: "message", data: "café ✓ 😀", lastEventId: "" }]);
  });

  it("refuses an event larger than the limit", () => {
    const parser = new SseParser({ maxEventChars: 16 });
    let error: unknown;
    try {
      parser.push("data: 0123456789\ndata: 0123456789\n");
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("event_too_large");
    expect(() => new SseParser({ maxEventChars: 8 }).push("data: 012345678")).toThrow(SdkError);
  });

  it("parses the same events however the byte stream is cut (property)", () => {
    const line = fc.string({ unit: "grapheme", maxLength: 12 }).filter((text) => !/[\r\n]/.test(text));
    const event = fc.record({
      id: fc.option(fc.stringMatching(/^[0-9]{1,6}$/), { nil: undefined }),
      type: fc.option(
        line.filter((text) => text.length > 0),
        { nil: undefined },
      ),
      data: fc.array(line, { minLength: 1, maxLength: 4 }),
      comment: fc.boolean(),
    });
    const ending = fc.constantFrom("\n", "\r", "\r\n");
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 6 }),
        fc.infiniteStream(ending),
        fc.array(fc.nat(), { maxLength: 8 }),
        (events, endings, cuts) => {
          const next = endings[Symbol.iterator]();
          let previous = "";
          const end = (): string => (previous = next.next().value as string);
          // A blank line's LF right after a CR would make one CRLF break, not a blank line.
          const blank = (): string => {
            const afterCr = previous === "\r";
            const ending = end();
            return afterCr && ending === "\n" ? (previous = "\r\n") : ending;
          };
          let text = "";
          let lastId = "";
          const expected: SseEvent[] = [];
          for (const item of events) {
            if (item.comment) text += `: ping${end()}`;
            if (item.id !== undefined) text += `id: ${item.id}${end()}`;
            if (item.type !== undefined) text += `event: ${item.type}${end()}`;
            for (const data of item.data) text += `data: ${data}${end()}`;
            text += blank();
            if (item.id !== undefined) lastId = item.id;
            expected.push({ type: item.type ?? "message", data: item.data.join("\n"), lastEventId: lastId });
          }
          const bytes = Buffer.from(text, "utf8");
          const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks: Uint8Array[] = [];
          let from = 0;
          for (const point of [...points, bytes.length]) {
            chunks.push(bytes.subarray(from, point));
            from = point;
          }
          const whole = parseAll([text]).events;
          expect(parseAll(chunks).events).toEqual(whole);
          expect(whole).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
