// Built-in secret detectors: linear-time scanners that mask secrets inside free-text strings.
//
// Every pattern here runs on V8's backtracking engine over untrusted text, so each is written to do
// bounded work per input character (see the note on each). The rules used throughout:
//   - quantified parts are separated by characters they cannot share, so there is one way to split a
//     match and a failed attempt never retries other splits;
//   - an unbounded run is either the last thing in the pattern (nothing after it can fail and make it
//     give characters back) or an attempt can only start where such a run starts, so no character is
//     scanned by more than a constant number of attempts.

/** The built-in detectors, in the order they run. */
export const DETECTOR_NAMES = Object.freeze(["private_key", "bearer", "api_key", "card", "email"] as const);

/** The name of a built-in detector. */
export type DetectorName = (typeof DETECTOR_NAMES)[number];

/** Returns true when `value` names a built-in detector. */
export function isDetectorName(value: unknown): value is DetectorName {
  return typeof value === "string" && (DETECTOR_NAMES as readonly string[]).includes(value);
}

/** The text that replaces a secret found by `name`. Example: `detectorMask("email") === "[REDACTED:email]"`. */
export function detectorMask(name: DetectorName): string {
  return `[REDACTED:${name}]`;
}

// A PEM private key: header, then a body that stops at the next "-----", then the END line if present.
// Header words end in a space, so they split one way only. The body is Friedl's unrolled loop (`[^-]*`
// then a `-` that does not start "-----"): one way to split it, and it is greedy with only an optional
// group after, so it never gives characters back. A truncated key (no END line, as in a cut-off log
// line) is masked up to the end of its body rather than leaked.
const PRIVATE_KEY =
  /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[^-]*(?:-(?!----)[^-]*)*(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?/g;

// `Bearer <token>` (RFC 6750 token68 characters). Spaces, token and padding use disjoint character
// sets, so a failing attempt gives back only its run of spaces, and an attempt reads no further than
// the next space after its token, so each character is read by at most two attempts. Eight token
// characters at least, so "the bearer of bad news" stays readable.
const BEARER = /\bbearer[ \t]+[A-Za-z0-9._~+/-]{8,}=*/gi;

// Well-known key prefixes. An attempt can only start where a run of key characters starts (the
// lookbehind refuses a key character before it), each body is a single greedy run with nothing after,
// so every run is read at most once per alternative.
const API_KEY = new RegExp(
  "(?<![A-Za-z0-9_-])(?:" +
    [
      "(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{10,}", // Stripe
      "sk-[A-Za-z0-9_-]{16,}", // OpenAI, Anthropic and others
      "gh[pousr]_[A-Za-z0-9]{20,}", // GitHub tokens
      "github_pat_[A-Za-z0-9_]{20,}", // GitHub fine-grained tokens
      "xox[abposr]-[A-Za-z0-9-]{10,}", // Slack
      "(?:AKIA|ASIA)[A-Z0-9]{16}", // AWS access key ids
      "AIza[A-Za-z0-9_-]{30,}", // Google API keys
      "sgk_[A-Za-z0-9_-]{16,}", // Signet API keys
    ].join("|") +
    ")",
  "g",
);

// Maximal runs of digit groups joined by one space or dash. Digits and separators are disjoint and the
// match always succeeds at a run start, consuming the whole run, so each character is read once.
const DIGIT_RUN = /[0-9]+(?:[ -][0-9]+)*/g;

// Emails are found from their "@": an attempt fails at once unless it starts on an "@", then a
// lookbehind reads the local part backwards. "@" belongs to neither the local part nor the domain, so the runs read for
// different "@"s do not overlap. The domain's labels are split by "." which labels cannot contain.
// Anchoring on "@" (rather than on where the local part starts) also means a local part that directly
// follows an earlier match is still found, so no email survives next to a masked one.
const EMAIL = /@(?<=([A-Za-z0-9._%+-]+)@)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;

const CARD_MIN_DIGITS = 13;
const CARD_MAX_DIGITS = 19;

/** Luhn (mod 10) check over the digits of `text` from `start` to `end`, ignoring separators. */
function passesLuhn(text: string, start: number, end: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = end - 1; i >= start; i--) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) continue;
    let added = double ? digit * 2 : digit;
    if (added > 9) added -= 9;
    sum += added;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Masks card numbers inside one run of digit groups. A card is a window of whole groups holding 13 to
 * 19 digits that passes Luhn; windows rather than the whole run, so "4111 1111 1111 1111 123" (card
 * then CVV) still hides the card. Each start tries at most 19 groups, so the work stays linear.
 */
function redactDigitRun(run: string, onHit: () => void): string {
  if (run.length < CARD_MIN_DIGITS) return run;
  const starts: number[] = [];
  const ends: number[] = [];
  for (let pos = 0; pos < run.length; pos++) {
    starts.push(pos);
    while (pos < run.length && run.charCodeAt(pos) !== 0x20 && run.charCodeAt(pos) !== 0x2d) pos++;
    ends.push(pos);
  }
  let out = "";
  let cursor = 0;
  let group = 0;
  while (group < starts.length) {
    const start = starts[group] as number;
    let digits = 0;
    let best = -1;
    for (let last = group; last < starts.length; last++) {
      const end = ends[last] as number;
      digits += end - (starts[last] as number);
      if (digits > CARD_MAX_DIGITS) break;
      if (digits >= CARD_MIN_DIGITS && passesLuhn(run, start, end)) best = last;
    }
    if (best < 0) {
      group += 1;
      continue;
    }
    out += run.slice(cursor, start) + detectorMask("card");
    cursor = ends[best] as number;
    group = best + 1;
    onHit();
  }
  return cursor === 0 ? run : out + run.slice(cursor);
}

function redactEmails(text: string, onHit: () => void): string {
  if (!text.includes("@")) return text;
  const mask = detectorMask("email");
  let out = "";
  let cursor = 0;
  // matchAll works on a copy of the pattern, so a nested call (onHit may redact too) cannot move lastIndex.
  for (const match of text.matchAll(EMAIL)) {
    const localPart = match[1] ?? "";
    // The local part may reach back into an earlier match ("a@b.com@c.org"); that text is already masked.
    const start = Math.max(match.index - localPart.length, cursor);
    out += text.slice(cursor, start) + mask;
    cursor = match.index + match[0].length;
    onHit();
  }
  return cursor === 0 ? text : out + text.slice(cursor);
}

// Sharing one global pattern across calls is safe: replace() collects every match before it calls the
// callback, so a nested call cannot disturb its lastIndex.
function replacer(pattern: RegExp, name: DetectorName): (text: string, onHit: () => void) => string {
  const mask = detectorMask(name);
  return (text, onHit) =>
    text.replace(pattern, () => {
      onHit();
      return mask;
    });
}

const redactPrivateKeys = replacer(PRIVATE_KEY, "private_key");

const DETECTORS: Readonly<Record<DetectorName, (text: string, onHit: () => void) => string>> = {
  private_key: (text, onHit) => (text.includes("-----BEGIN ") ? redactPrivateKeys(text, onHit) : text),
  bearer: replacer(BEARER, "bearer"),
  api_key: replacer(API_KEY, "api_key"),
  card: (text, onHit) => text.replace(DIGIT_RUN, (run) => redactDigitRun(run, onHit)),
  email: redactEmails,
};

/**
 * Runs `detectors` over `text` in {@link DETECTOR_NAMES} order and returns the text with each secret
 * replaced by its detector's mask; `onHit` is called once per replaced substring. Private keys go first
 * so their base64 body is masked whole instead of in pieces, and bearer before API keys so
 * `Bearer sk-...` is one hit.
 *
 * Example: `redactText("mail bob@example.com", ["email"], () => {})` is `"mail [REDACTED:email]"`.
 */
export function redactText(
  text: string,
  detectors: readonly DetectorName[],
  onHit: (name: DetectorName) => void,
): string {
  let out = text;
  for (const name of DETECTOR_NAMES) {
    if (!detectors.includes(name)) continue;
    out = DETECTORS[name](out, () => onHit(name));
  }
  return out;
}
