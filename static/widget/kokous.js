// Kokous booking widget: one ES module, no build step, no dependencies.
//
//   <script type="module" src="https://kokous.example/widget/kokous.js"></script>
//   <kokous-booking page="intro" base="https://kokous.example"></kokous-booking>
//
// Attributes: page (the slug), base (the Kokous server; default: where this module came from),
// domain (the host the page is served on), timezone (Area/City; default: the browser's),
// source (PAGE | EMBED | CHAT; default EMBED on another site's page, PAGE on Kokous' own),
// data-prefill ('{"name": .., "email": .., "answers": {"key": "value"}}'), contact-token.
//
// The DOM it renders (light DOM, so host pages can style it): each offered time is a
// <button data-start="YYYY-MM-DDTHH:MM:SSZ"> inside a role="group" per day; the form's inputs
// are named name, email and answers.<key>; an outcome is an element with data-kokous-state =
// confirmed | slot-taken | calendar-inactive | requested | rate-limited | error (and cancelled,
// when the invitee cancels through the link in their email: ?booking=<token>&action=cancel, or
// moves it with action=reschedule). After a booking it dispatches "kokous:booked" ({bookingId,
// start, end}, bubbling, composed), and inside an iframe posts {type: "kokous:booked", bookingId,
// start, end} to the parent. Times in data-start and in the event are UTC.
// Live: slotsChanged over graphql-transport-ws; each message replaces the list of times.

const SOURCES = new Set(["PAGE", "EMBED", "CHAT"]);
const CONTACT_COOKIE = "kokous_contact";
const CONTACT_STORAGE = "kokous:contact:";
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 15000;
const REDIRECT_DELAY_MS = 1500;
const MAX_ANSWER_LENGTH = 2000;
// Names the widget can do without when the server does not know them yet.
const OPTIONAL_NAMES = new Set(["redirectUrl", "prefill", "contactToken", "RateLimited", "complete"]);

const MODULE_BASE = (() => {
  try {
    const url = new URL(import.meta.url);
    const match = url.pathname.match(/^(.*)\/widget\/kokous\.js$/);
    return url.origin + (match ? match[1] : "");
  } catch {
    return "";
  }
})();

// -- GraphQL documents ---------------------------------------------------------------------------

function pageQuery(missing, withPrefill) {
  const prefill = withPrefill && !missing.has("prefill");
  const declared = prefill ? ", $contactToken: String!" : "";
  return `query KokousPage($slug: String!, $domain: String, $start: DateTime!, $end: DateTime!,
    $timezone: String!${declared}) {
  schedulingPage(slug: $slug, domain: $domain) {
    slug name url status durations timezone
    formFields { key label kind required }
    slots(start: $start, end: $end, timezone: $timezone) { ${slotSelection(missing)} }
    ${missing.has("redirectUrl") ? "" : "redirectUrl"}
    ${prefill ? "prefill(contactToken: $contactToken) { name email answers { key value } }" : ""}
  }
}`;
}

function slotSelection(missing) {
  return `slots { start end } asOf status ${missing.has("complete") ? "" : "complete"}`;
}

function slotsQuery(missing) {
  return `query KokousSlots($slug: String!, $domain: String, $start: DateTime!, $end: DateTime!,
    $timezone: String!, $duration: Int) {
  schedulingPage(slug: $slug, domain: $domain) {
    slots(start: $start, end: $end, timezone: $timezone, duration: $duration) { ${slotSelection(missing)} }
  }
}`;
}

function slotsSubscription(missing) {
  return `subscription KokousSlotsChanged($slug: String!, $start: DateTime!, $end: DateTime!,
    $timezone: String!, $duration: Int, $domain: String) {
  slotsChanged(slug: $slug, start: $start, end: $end, timezone: $timezone, duration: $duration,
    domain: $domain) { ${slotSelection(missing)} }
}`;
}

function resultSelection(missing) {
  const contact = missing.has("contactToken") ? "" : "contactToken";
  const limited = missing.has("RateLimited") ? "" : "... on RateLimited { message retryAfterSeconds }";
  return `__typename
    ... on BookingFields { id start end status inviteeEmail manageToken ${contact} }
    ... on SlotUnavailable { message alternatives { start end } }
    ... on CalendarUnreachable { message retryAfterSeconds }
    ${limited}
    ... on Error { message }`;
}

function bookingDocument(missing, field) {
  return `mutation KokousBook($input: BookMeetingInput!) {
  ${field}(input: $input) { ${resultSelection(missing)} }
}`;
}

function cancelDocument(missing) {
  return `mutation KokousCancel($token: String!) {
  cancelBookingByToken(token: $token) { ${resultSelection(missing)} }
}`;
}

function rescheduleDocument(missing) {
  return `mutation KokousMove($token: String!, $start: DateTime!) {
  rescheduleBookingByToken(token: $token, start: $start) { ${resultSelection(missing)} }
}`;
}

const MANAGED_BOOKING = `query KokousManagedBooking($token: String!) {
  booking(token: $token) { id start end status }
}`;

/** POSTs GraphQL; leaves out optional names the server says it does not know, and asks again. */
class GraphQLClient {
  constructor(base) {
    this.url = `${base}/graphql`;
    this.missing = new Set();
  }

  async request(build, variables) {
    for (;;) {
      const response = await fetch(this.url, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query: build(this.missing), variables }),
      });
      if (response.status === 429) {
        const retryAfter = Number.parseInt(response.headers.get("retry-after") || "", 10);
        return { rateLimited: Number.isFinite(retryAfter) ? retryAfter : 60 };
      }
      let body;
      try {
        body = await response.json();
      } catch {
        throw new Error(`the server answered ${response.status}`);
      }
      if (body && !body.data && this.forget(body.errors)) continue;
      return body;
    }
  }

  /** True when an error names an optional field or type the server does not know (then left out). */
  forget(errors) {
    let learned = false;
    for (const error of errors || []) {
      const match = /(?:Cannot query field|Unknown type|Unknown argument) '(\w+)'/.exec(error.message || "");
      if (match && OPTIONAL_NAMES.has(match[1]) && !this.missing.has(match[1])) {
        this.missing.add(match[1]);
        learned = true;
      }
    }
    return learned;
  }
}

/**
 * One WebSocket speaking graphql-transport-ws: connection_init → connection_ack, subscribe,
 * next / error / complete, ping → pong. When the socket drops it reconnects with exponential
 * backoff (0.5 s doubling to 15 s, with jitter) and subscribes again to everything still wanted.
 */
class LiveSocket {
  constructor(url, onStatus) {
    this.url = url;
    this.onStatus = onStatus;
    this.subscriptions = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.socket = null;
    this.acknowledged = false;
    this.timer = 0;
    this.closed = false;
    this.reconnectNow = () => {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = 0;
        this.open();
      }
    };
    globalThis.addEventListener?.("online", this.reconnectNow);
  }

  /** sink: {next(payload), error(errors), complete()}; returns the function that unsubscribes. */
  subscribe(build, variables, sink) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, { build, variables, sink });
    if (this.acknowledged) this.sendSubscribe(id);
    else this.open();
    return () => {
      if (this.subscriptions.delete(id) && this.acknowledged) this.send({ id, type: "complete" });
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    globalThis.removeEventListener?.("online", this.reconnectNow);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, "done");
  }

  open() {
    if (this.socket || this.closed || this.timer) return;
    let socket;
    try {
      socket = new WebSocket(this.url, "graphql-transport-ws");
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    this.acknowledged = false;
    socket.addEventListener("open", () => this.send({ type: "connection_init", payload: {} }));
    socket.addEventListener("message", (event) => this.receive(socket, event.data));
    socket.addEventListener("close", () => this.dropped(socket));
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  sendSubscribe(id) {
    const wanted = this.subscriptions.get(id);
    if (wanted) this.send({ id, type: "subscribe", payload: { query: wanted.build(), variables: wanted.variables } });
  }

  receive(socket, raw) {
    if (socket !== this.socket) return;
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    const wanted = message.id === undefined ? undefined : this.subscriptions.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        this.attempt = 0;
        this.onStatus("live");
        for (const id of this.subscriptions.keys()) this.sendSubscribe(id);
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next":
        wanted?.sink.next(message.payload);
        break;
      case "error":
        this.subscriptions.delete(message.id);
        wanted?.sink.error(message.payload);
        break;
      case "complete":
        this.subscriptions.delete(message.id);
        wanted?.sink.complete();
        break;
      default:
        break;
    }
  }

  dropped(socket) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.acknowledged = false;
    if (this.closed) return;
    this.onStatus("down");
    this.retry();
  }

  retry() {
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.open();
    }, delay);
  }
}

// -- Time zones without a library -----------------------------------------------------------------

const partFormats = new Map();

function zoneParts(ms, zone) {
  let format = partFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    partFormats.set(zone, format);
  }
  const parts = {};
  for (const part of format.formatToParts(new Date(ms))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  parts.hour %= 24;
  return parts;
}

function offsetMs(ms, zone) {
  const p = zoneParts(ms, zone);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
}

/** The instant a calendar day starts in a zone. */
function dayStart(day, zone) {
  const wall = Date.UTC(day.year, day.month - 1, day.day);
  const first = wall - offsetMs(wall, zone);
  return wall - offsetMs(first, zone);
}

function addDays(day, days) {
  const date = new Date(Date.UTC(day.year, day.month - 1, day.day + days));
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

const pad = (value, width = 2) => String(value).padStart(width, "0");

/** "2026-12-01T00:00:00+02:00": an instant written in a zone. */
function isoInZone(ms, zone) {
  const p = zoneParts(ms, zone);
  const offset = Math.round(offsetMs(ms, zone) / 60000);
  const sign = offset < 0 ? "-" : "+";
  const minutes = Math.abs(offset);
  return (
    `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}` +
    `${sign}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`
  );
}

/** "2026-12-01T08:00:00Z": the contract's form of a slot's start. */
function utcStamp(value) {
  return new Date(value).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function dayKey(ms, zone) {
  const p = zoneParts(ms, zone);
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
}

function validZone(zone) {
  if (!zone) return false;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

function randomKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  // Outside a secure context randomUUID is missing; getRandomValues is always there.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => pad(byte.toString(16)));
  return `${hex.slice(0, 4).join("")}-${hex.slice(4, 6).join("")}-${hex.slice(6, 8).join("")}-${hex
    .slice(8, 10)
    .join("")}-${hex.slice(10).join("")}`;
}

// -- The contact token: localStorage per Kokous server, and a cookie on this page's host -----------

function readContactToken(base) {
  try {
    const stored = localStorage.getItem(CONTACT_STORAGE + base);
    if (stored) return stored;
  } catch {
    // storage can be blocked (private modes, partitioned iframes): the cookie may still be there
  }
  try {
    for (const pair of document.cookie.split(";")) {
      const [name, ...rest] = pair.trim().split("=");
      if (name === CONTACT_COOKIE && rest.length) return decodeURIComponent(rest.join("="));
    }
  } catch {
    // a sandboxed frame has no cookies (reading them throws), or the value is mangled
  }
  return null;
}

function keepContactToken(base, token) {
  try {
    localStorage.setItem(CONTACT_STORAGE + base, token);
  } catch {
    // the cookie below is enough
  }
  const secure = location.protocol === "https:" ? "; Secure" : "";
  try {
    document.cookie = `${CONTACT_COOKIE}=${encodeURIComponent(token)}; Path=/; Max-Age=31536000; SameSite=Lax${secure}`;
  } catch {
    // a sandboxed frame: the visitor is not remembered
  }
}

// -- Styles: one constructable stylesheet (CSP style-src does not apply to it) ---------------------

const STYLES = `
kokous-booking {
  --kokous-accent: light-dark(#0b57d0, #a8c7fa);
  --kokous-accent-hover: light-dark(#0842a0, #d3e3fd);
  --kokous-on-accent: light-dark(#ffffff, #062e6f);
  --kokous-soft: light-dark(#e8f0fe, #0d2d5e);
  --kokous-text: CanvasText;
  --kokous-surface: Canvas;
  --kokous-muted: light-dark(#44474e, #c4c6d0);
  --kokous-border: light-dark(#74777f, #8e9099);
  --kokous-danger: light-dark(#b3261e, #f2b8b5);
  --kokous-focus: light-dark(#0b57d0, #a8c7fa);
  display: block;
  color: var(--kokous-text);
  line-height: 1.5;
}
kokous-booking [hidden] { display: none !important; }
kokous-booking .kokous-sr-only {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
kokous-booking :where(h2, h3, h4) { margin: 1rem 0 0.5rem; line-height: 1.25; }
kokous-booking :where(h2) { font-size: 1.375rem; }
kokous-booking :where(h3) { font-size: 1.125rem; }
kokous-booking :where(h4) { font-size: 1rem; }
kokous-booking :where(p) { margin: 0.5rem 0; }
kokous-booking :where(a) { color: var(--kokous-accent); text-underline-offset: 0.15em; }
kokous-booking :where(button, input, select, textarea, a, [tabindex]):focus-visible {
  outline: 3px solid var(--kokous-focus); outline-offset: 2px;
}
kokous-booking :where(button) {
  font: inherit; min-height: 2.75rem; padding: 0.5rem 1rem; border-radius: 0.5rem; cursor: pointer;
  border: 1px solid var(--kokous-accent); background: var(--kokous-surface); color: var(--kokous-accent);
}
kokous-booking :where(button:hover:not(:disabled)) { background: var(--kokous-soft); }
kokous-booking :where(button.kokous-primary) {
  background: var(--kokous-accent); color: var(--kokous-on-accent); font-weight: 600;
}
kokous-booking :where(button.kokous-primary:hover:not(:disabled)) {
  background: var(--kokous-accent-hover); border-color: var(--kokous-accent-hover);
}
kokous-booking :where(button:disabled) {
  cursor: not-allowed; border-color: var(--kokous-border); color: var(--kokous-muted); background: transparent;
}
kokous-booking :where(input:not([type="checkbox"]), select, textarea) {
  font: inherit; color: var(--kokous-text); background: var(--kokous-surface); box-sizing: border-box;
  width: 100%; min-height: 2.75rem; padding: 0.5rem 0.625rem;
  border: 1px solid var(--kokous-border); border-radius: 0.375rem;
}
kokous-booking :where(textarea) { min-height: 6rem; resize: vertical; }
kokous-booking :where(input[type="checkbox"]) { width: 1.25rem; height: 1.25rem; margin: 0; accent-color: var(--kokous-accent); }
kokous-booking :where(label) { font-weight: 600; }
kokous-booking .kokous-controls { display: flex; flex-wrap: wrap; gap: 0.75rem 1.5rem; margin: 0.75rem 0; }
kokous-booking .kokous-control { display: grid; gap: 0.25rem; flex: 1 1 14rem; }
kokous-booking .kokous-week { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1rem; margin: 0.5rem 0 1rem; }
kokous-booking .kokous-week-label { flex: 1 1 12rem; margin: 0; font-weight: 600; text-align: center; }
kokous-booking .kokous-day { margin: 0 0 1rem; }
kokous-booking .kokous-times { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0; padding: 0; list-style: none; }
kokous-booking .kokous-times :where(button) { min-width: 5.5rem; }
kokous-booking .kokous-field { display: grid; gap: 0.25rem; margin: 0.875rem 0; }
kokous-booking .kokous-check { display: flex; align-items: center; gap: 0.5rem; margin: 0.875rem 0; }
kokous-booking .kokous-optional { font-weight: 400; color: var(--kokous-muted); }
kokous-booking .kokous-actions { display: flex; flex-wrap: wrap; gap: 0.75rem; margin: 1rem 0; }
kokous-booking .kokous-notice {
  margin: 0.5rem 0; padding: 0.5rem 0.75rem; border-left: 4px solid var(--kokous-accent); background: var(--kokous-soft);
}
kokous-booking .kokous-outcome {
  margin: 1rem 0; padding: 0.25rem 1rem 0.75rem; border: 1px solid var(--kokous-border); border-radius: 0.5rem;
  border-left: 6px solid var(--kokous-accent);
}
kokous-booking .kokous-outcome:is([data-kokous-state="slot-taken"], [data-kokous-state="calendar-inactive"],
  [data-kokous-state="rate-limited"], [data-kokous-state="error"]) { border-left-color: var(--kokous-danger); }
kokous-booking .kokous-muted { color: var(--kokous-muted); }
`;

let sheet = null;

function adoptStyles() {
  if (sheet) return;
  if ("adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLES);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  } else {
    sheet = document.createElement("style");
    sheet.textContent = STYLES;
    document.head.append(sheet);
  }
}

// -- DOM helpers -----------------------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = value;
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
  return element;
}

let instances = 0;

// -- The element -------------------------------------------------------------------------------------

class KokousBooking extends HTMLElement {
  static observedAttributes = ["page", "base", "domain", "timezone", "source", "contact-token", "data-prefill"];

  constructor() {
    super();
    instances += 1;
    this.uid = `kokous-${instances}`;
    this.started = false;
  }

  connectedCallback() {
    if (this.started) return;
    this.started = true;
    adoptStyles();
    queueMicrotask(() => this.load());
  }

  disconnectedCallback() {
    this.stopLive();
    clearTimeout(this.redirectTimer);
    this.started = false;
    this.generation = (this.generation || 0) + 1;
  }

  attributeChangedCallback(name, before, after) {
    if (!this.started || before === after) return;
    if (name === "timezone") {
      if (validZone(after)) this.setZone(after);
    } else if (name !== "data-prefill" && name !== "contact-token") {
      this.load(); // another page or server: start again
    }
  }

  // -- attributes ------------------------------------------------------------------------------

  get base() {
    return (this.getAttribute("base") || MODULE_BASE || location.origin).replace(/\/+$/, "");
  }

  get slug() {
    return this.getAttribute("page") || "";
  }

  get domain() {
    return this.getAttribute("domain") || null;
  }

  get source() {
    const asked = (this.getAttribute("source") || "").toUpperCase();
    if (SOURCES.has(asked)) return asked;
    let baseOrigin = "";
    try {
      baseOrigin = new URL(this.base, location.href).origin;
    } catch {
      // an unusable base: treat the page as someone else's
    }
    return baseOrigin === location.origin ? "PAGE" : "EMBED";
  }

  get locale() {
    try {
      return Intl.getCanonicalLocales(this.lang || navigator.language || "en")[0] || "en";
    } catch {
      return "en"; // a malformed lang attribute
    }
  }

  initialZone() {
    const asked = this.getAttribute("timezone");
    if (validZone(asked)) return asked;
    const fromUrl = new URLSearchParams(location.search).get("timezone");
    if (validZone(fromUrl)) return fromUrl;
    return browserZone();
  }

  // -- loading the page -------------------------------------------------------------------------

  async load() {
    this.stopLive();
    const generation = (this.generation = (this.generation || 0) + 1);
    this.client = new GraphQLClient(this.base);
    this.zone = this.zone || this.initialZone();
    this.week = 0;
    this.slots = null;
    this.windowKey = null;
    this.complete = true;
    this.view = "times";
    this.selected = null;
    this.pending = null;
    this.outcome = null;
    this.managing = null;
    this.retryAction = null;
    this.liveStatus = "connecting";
    this.buildFrame();
    this.showMessage("Loading…");
    if (!this.slug) {
      this.showFailure("This booking widget has no page to show.", null);
      return;
    }
    const token = this.getAttribute("contact-token") || readContactToken(this.base);
    // The first week's times (in the page's first duration) come with the page: one round trip.
    const first = this.currentWindow();
    let answer;
    try {
      answer = await this.client.request((missing) => pageQuery(missing, Boolean(token)), {
        slug: this.slug,
        domain: this.domain,
        start: first.start,
        end: first.end,
        timezone: first.timezone,
        ...(token ? { contactToken: token } : {}),
      });
    } catch {
      if (generation === this.generation) {
        this.showFailure("The booking page could not be reached. Check your connection and try again.", () =>
          this.load(),
        );
      }
      return;
    }
    if (generation !== this.generation) return;
    const page = answer.data?.schedulingPage;
    if (answer.rateLimited) {
      this.showFailure(`Too many requests: try again in ${answer.rateLimited} seconds.`, () => this.load());
      return;
    }
    if (!page) {
      const message = answer.errors?.[0]?.message;
      this.showFailure(message ? `The booking page could not be loaded: ${message}` : "This page is not available.", null);
      return;
    }
    this.page = page;
    this.duration = page.durations[0] ?? null;
    this.buildPage();
    this.fillForm(page.prefill);
    this.applyExplicitPrefill();
    const manage = this.manageRequest();
    if (manage) this.view = "loading";
    this.openWindow(page.slots);
    if (manage) await this.startManaging(manage, generation);
  }

  buildFrame() {
    this.replaceChildren();
    this.heading = h("h2", { class: "kokous-title", hidden: true });
    this.controls = h("div", { class: "kokous-controls", hidden: true });
    this.connection = h("p", { class: "kokous-notice", "data-kokous-connection": "", hidden: true });
    this.main = h("div", { class: "kokous-main" });
    this.live = h("div", { class: "kokous-sr-only", "aria-live": "polite", "aria-atomic": "true" });
    this.append(this.heading, this.controls, this.connection, this.main, this.live);
  }

  showMessage(text) {
    this.main.replaceChildren(h("p", { class: "kokous-muted", text }));
  }

  showFailure(text, retry) {
    const title = h("h3", { tabindex: "-1", text: "Something went wrong" });
    this.main.replaceChildren(
      h(
        "section",
        { class: "kokous-outcome", "data-kokous-state": "error", role: "alert" },
        title,
        h("p", { text }),
        retry ? h("div", { class: "kokous-actions" }, h("button", { type: "button", onclick: retry, text: "Try again" })) : null,
      ),
    );
  }

  buildPage() {
    const page = this.page;
    // The server-rendered page already names the page in its <h1>.
    const named = document.querySelector("h1")?.textContent?.trim() === page.name;
    this.heading.textContent = page.name;
    this.heading.hidden = named;

    const controls = [];
    if (page.durations.length > 1) {
      const id = `${this.uid}-duration`;
      const select = h(
        "select",
        { id, name: "duration", onchange: (event) => this.setDuration(Number(event.target.value)) },
        page.durations.map((minutes) => h("option", { value: minutes, text: `${minutes} minutes` })),
      );
      select.value = String(this.duration);
      controls.push(h("div", { class: "kokous-control" }, h("label", { for: id, text: "Duration" }), select));
    }
    const zoneId = `${this.uid}-zone`;
    this.zoneSelect = h("select", { id: zoneId, name: "timezone", onchange: (event) => this.setZone(event.target.value) });
    this.fillZones();
    controls.push(h("div", { class: "kokous-control" }, h("label", { for: zoneId, text: "Time zone" }), this.zoneSelect));
    this.controls.replaceChildren(...controls);
    this.form = this.buildForm();
  }

  fillZones() {
    let zones = [];
    try {
      zones = Intl.supportedValuesOf("timeZone");
    } catch {
      zones = [];
    }
    if (!zones.includes(this.zone)) zones = [...zones, this.zone].sort();
    this.zoneSelect.replaceChildren(
      ...zones.map((zone) => h("option", { value: zone, text: zone.replaceAll("_", " ") })),
    );
    this.zoneSelect.value = this.zone;
  }

  // -- the form ---------------------------------------------------------------------------------

  buildForm() {
    const field = (name, label, control, optional) => {
      control.id = `${this.uid}-${name.replace(/[^\w-]/g, "_")}`;
      control.name = name;
      return h(
        "div",
        { class: "kokous-field" },
        h("label", { for: control.id }, label, optional ? h("span", { class: "kokous-optional", text: " (optional)" }) : null),
        control,
      );
    };
    const inputs = [
      field("name", "Name", h("input", { type: "text", autocomplete: "name", required: true, maxlength: 200 })),
      field("email", "Email", h("input", { type: "email", autocomplete: "email", required: true, maxlength: 254 })),
    ];
    for (const formField of this.page.formFields) {
      const name = `answers.${formField.key}`;
      const required = formField.required;
      if (formField.kind === "CHECKBOX") {
        const box = h("input", { type: "checkbox", value: "yes", required, id: `${this.uid}-answers_${formField.key}`, name });
        inputs.push(h("div", { class: "kokous-check" }, box, h("label", { for: box.id, text: formField.label })));
        continue;
      }
      const control =
        formField.kind === "TEXTAREA"
          ? h("textarea", { required, maxlength: MAX_ANSWER_LENGTH, rows: 4 })
          : h("input", {
              type: { EMAIL: "email", PHONE: "tel" }[formField.kind] || "text",
              autocomplete: { EMAIL: "email", PHONE: "tel" }[formField.kind] || null,
              inputmode: formField.kind === "PHONE" ? "tel" : null,
              required,
              maxlength: MAX_ANSWER_LENGTH,
            });
      inputs.push(field(name, formField.label, control, !required));
    }
    this.formTitle = h("h3", { tabindex: "-1", id: `${this.uid}-form-title`, text: "Your details" });
    this.chosen = h("p", { class: "kokous-chosen" });
    this.submitButton = h("button", { type: "submit", class: "kokous-primary", text: "Book" });
    this.formNotice = h("p", { class: "kokous-notice", hidden: true });
    const form = h(
      "form",
      { class: "kokous-form", "aria-labelledby": this.formTitle.id, onsubmit: (event) => this.onSubmit(event) },
      this.formTitle,
      this.chosen,
      this.formNotice,
      inputs,
      h(
        "div",
        { class: "kokous-actions" },
        this.submitButton,
        h("button", { type: "button", text: "Choose another time", onclick: () => this.backToTimes() }),
      ),
    );
    return form;
  }

  control(name) {
    return this.form?.elements.namedItem(name) ?? null;
  }

  setValue(name, value) {
    const control = this.control(name);
    if (!control || value === null || value === undefined) return;
    if (control.type === "checkbox") {
      control.checked = ["yes", "true", "on", "1"].includes(String(value).toLowerCase());
    } else {
      control.value = String(value);
    }
  }

  /** What the server remembered for this visitor's contact token (nothing else is shown). */
  fillForm(prefill) {
    if (!prefill) return;
    this.setValue("name", prefill.name);
    this.setValue("email", prefill.email);
    for (const answer of prefill.answers || []) this.setValue(`answers.${answer.key}`, answer.value);
  }

  /** data-prefill, then the page's URL parameters (?name=, ?email=, ?<field key>=). */
  applyExplicitPrefill() {
    let given = {};
    try {
      given = JSON.parse(this.dataset.prefill || "{}") || {};
    } catch {
      given = {};
    }
    // {"name", "email", "answers": {key: value}} or keyed by input name ({"answers.<key>": value}).
    for (const [key, value] of Object.entries(typeof given === "object" ? given : {})) {
      if (key === "answers" && value && typeof value === "object") {
        for (const [answer, text] of Object.entries(value)) this.setValue(`answers.${answer}`, text);
      } else if (key === "name" || key === "email" || key.startsWith("answers.")) {
        this.setValue(key, value);
      }
    }
    const params = new URLSearchParams(location.search);
    for (const name of ["name", "email"]) if (params.has(name)) this.setValue(name, params.get(name));
    for (const formField of this.page.formFields) {
      if (params.has(formField.key)) this.setValue(`answers.${formField.key}`, params.get(formField.key));
    }
  }

  // -- choosing the window ----------------------------------------------------------------------

  setZone(zone) {
    if (!validZone(zone) || zone === this.zone) return;
    this.zone = zone;
    if (this.zoneSelect) this.zoneSelect.value = zone;
    if (this.page) {
      this.render();
      this.openWindow();
    }
  }

  setDuration(minutes) {
    if (minutes === this.duration) return;
    this.duration = minutes;
    this.openWindow();
  }

  moveWeek(step) {
    this.week = Math.max(0, this.week + step);
    this.openWindow();
    this.announce(`Free times for ${this.weekLabel(this.windowRange)}`);
  }

  currentWindow() {
    const today = zoneParts(Date.now(), this.zone);
    const first = addDays(today, this.week * 7);
    const start = dayStart(first, this.zone);
    const end = dayStart(addDays(first, 7), this.zone);
    return {
      slug: this.slug,
      domain: this.domain,
      start: isoInZone(start, this.zone),
      end: isoInZone(end, this.zone),
      timezone: this.zone,
      duration: this.duration,
      startMs: start,
      endMs: end,
    };
  }

  /** Reads the window over HTTP at once (unless its list is given) and subscribes to it; each live
   * message replaces the list. */
  openWindow(given = null) {
    this.stopSubscription();
    const range = this.currentWindow();
    const key = JSON.stringify([range.start, range.end, range.timezone, range.duration]);
    if (key !== this.windowKey) this.slots = null; // the same window asked again keeps its list meanwhile
    this.windowKey = key;
    this.windowRange = range;
    this.heardLive = false;
    const { startMs, endMs, ...variables } = range;
    if (given) {
      this.takeSlots(given);
    } else {
      if (this.view === "times") this.renderTimes();
      this.readSlots(key, variables);
    }
    this.subscribeSlots(key, variables);
  }

  readSlots(key, variables) {
    this.client
      .request(slotsQuery, variables)
      .then((answer) => {
        const list = answer.data?.schedulingPage?.slots;
        if (list && this.windowKey === key && !this.heardLive) this.takeSlots(list);
      })
      .catch(() => {
        // the subscription brings the list when the socket connects
      });
  }

  subscribeSlots(key, variables) {
    if (!this.socket) {
      const url = `${this.base.replace(/^http/, "ws")}/graphql`;
      this.socket = new LiveSocket(url, (status) => this.setLiveStatus(status));
    }
    this.unsubscribe = this.socket.subscribe(() => slotsSubscription(this.client.missing), variables, {
      next: (payload) => {
        const list = payload?.data?.slotsChanged;
        if (this.windowKey !== key) return;
        if (list) {
          this.heardLive = true;
          this.endings = 0;
          this.takeSlots(list);
        } else if (payload?.errors?.length) {
          this.slotsFailed(payload.errors[0].message);
        }
      },
      error: (errors) => {
        if (this.windowKey !== key) return;
        if (this.client.forget(errors)) this.openWindow();
        else this.slotsFailed(errors?.[0]?.message || "The free times could not be loaded.");
      },
      complete: () => {
        // The server ended the stream (it restarts, say): ask again, waiting longer each time.
        if (this.windowKey !== key) return;
        const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.endings || 0));
        this.endings = (this.endings || 0) + 1;
        this.resubscribeTimer = setTimeout(() => this.openWindow(), delay);
      },
    });
  }

  stopSubscription() {
    clearTimeout(this.resubscribeTimer);
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  stopLive() {
    this.stopSubscription();
    this.socket?.close();
    this.socket = null;
  }

  setLiveStatus(status) {
    const before = this.liveStatus;
    this.liveStatus = status;
    if (status === "down" && before !== "down") {
      this.connection.textContent =
        "Live updates are paused while we reconnect. The times shown may have changed; we will refresh them shortly.";
      this.connection.hidden = false;
      this.announce("Live updates are paused while we reconnect.");
    } else if (status === "live" && before === "down") {
      this.connection.hidden = true;
      this.connection.textContent = "";
      this.announce("Live updates are back.");
    }
  }

  takeSlots(list) {
    // The socket's first message usually repeats what the page query brought: nothing to redraw.
    const signature = JSON.stringify([list.slots, list.complete, list.status]);
    if (this.slots !== null && signature === this.slotsSignature) return;
    this.slotsSignature = signature;
    this.slots = list.slots.map((slot) => ({ start: slot.start, end: slot.end, ms: Date.parse(slot.start) }));
    this.complete = list.complete !== false;
    if (list.status && list.status !== this.page.status) {
      this.page.status = list.status;
      this.updateSubmitLabel();
    }
    if (this.view === "times") this.renderTimes();
  }

  slotsFailed(message) {
    this.slots = [];
    this.slotsSignature = null;
    this.slotsError = message;
    if (this.view === "times") this.renderTimes();
    this.slotsError = null;
  }

  // -- rendering --------------------------------------------------------------------------------

  formats() {
    const zone = this.zone;
    const key = `${this.locale}|${zone}`;
    if (this.formatKey === key) return this.formatCache;
    this.formatKey = key;
    this.formatCache = {
      day: new Intl.DateTimeFormat(this.locale, { weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: zone }),
      time: new Intl.DateTimeFormat(this.locale, { hour: "2-digit", minute: "2-digit", timeZone: zone }),
      range: new Intl.DateTimeFormat(this.locale, { day: "numeric", month: "long", year: "numeric", timeZone: zone }),
    };
    return this.formatCache;
  }

  /** "Tuesday 1 December 2026, 10:00" in the visitor's zone. */
  describe(ms) {
    const format = this.formats();
    return `${format.day.format(ms)}, ${format.time.format(ms)}`;
  }

  /** "30 November – 6 December 2026". */
  weekLabel(range) {
    const format = this.formats().range;
    try {
      return format.formatRange(range.startMs, range.endMs - 1);
    } catch {
      return `${format.format(range.startMs)} – ${format.format(range.endMs - 1)}`;
    }
  }

  render() {
    if (this.view === "times") this.renderTimes();
    else if (this.view === "form") this.renderForm();
    else if (this.view === "move") this.renderMove();
    else if (this.view === "cancel") this.renderCancel();
    else if (this.view === "outcome") this.renderOutcome();
  }

  renderTimes() {
    if (!this.page || this.view !== "times") return;
    // Keep the keyboard's place: the list is rebuilt on every change.
    const focused = this.main.contains(document.activeElement) ? document.activeElement : null;
    const focusedStart = focused?.dataset?.start;
    const focusedWeek = focused?.dataset?.kokousWeek;
    const format = this.formats();
    const range = this.windowRange || this.currentWindow();
    const titleId = `${this.uid}-times-title`;
    const previous = h("button", {
      type: "button",
      "data-kokous-week": "previous",
      disabled: this.week === 0,
      text: "Previous week",
      onclick: () => this.moveWeek(-1),
    });
    const next = h("button", { type: "button", "data-kokous-week": "next", text: "Next week", onclick: () => this.moveWeek(1) });
    const body = [];
    if (this.slots === null) {
      body.push(h("p", { class: "kokous-muted", text: "Loading free times…" }));
    } else if (this.slotsError) {
      body.push(h("p", { class: "kokous-notice", role: "alert", text: this.slotsError }));
    } else {
      if (!this.complete) {
        body.push(
          h("p", {
            class: "kokous-notice",
            "data-kokous-incomplete": "",
            text: "Some times may be missing: part of the calendar could not be checked just now.",
          }),
        );
      }
      const days = new Map();
      for (const slot of this.slots) {
        const key = dayKey(slot.ms, this.zone);
        if (!days.has(key)) days.set(key, []);
        days.get(key).push(slot);
      }
      if (days.size === 0) body.push(h("p", { text: "No free times this week." }));
      for (const slots of days.values()) {
        const label = format.day.format(slots[0].ms);
        body.push(
          h(
            "div",
            { class: "kokous-day", role: "group", "aria-label": label },
            h("h4", { text: label }),
            h(
              "ul",
              { class: "kokous-times" },
              slots.map((slot) =>
                h(
                  "li",
                  {},
                  h("button", {
                    type: "button",
                    "data-start": utcStamp(slot.ms),
                    "aria-label": `${label}, ${format.time.format(slot.ms)}`,
                    text: format.time.format(slot.ms),
                    onclick: () => this.choose(slot),
                  }),
                ),
              ),
            ),
          ),
        );
      }
    }
    const section = h(
      "section",
      { class: "kokous-slots", "aria-labelledby": titleId, "aria-busy": this.slots === null ? "true" : null },
      h("h3", { id: titleId, tabindex: "-1", text: this.managing ? "Choose a new time" : "Choose a time" }),
      this.managing ? h("p", { class: "kokous-notice", text: `You are moving your meeting of ${this.managedSummary()}.` }) : null,
      h(
        "div",
        { class: "kokous-week" },
        previous,
        h("p", { class: "kokous-week-label", text: this.weekLabel(range) }),
        next,
      ),
      body,
    );
    this.main.replaceChildren(section);
    this.controls.hidden = false;
    this.timesTitle = section.querySelector("h3");
    if (focusedStart) {
      const again = section.querySelector(`button[data-start="${focusedStart}"]`);
      (again || this.timesTitle).focus();
    } else if (focusedWeek) {
      const again = section.querySelector(`button[data-kokous-week="${focusedWeek}"]`);
      (again && !again.disabled ? again : this.timesTitle).focus();
    } else if (focused) {
      this.timesTitle.focus();
    }
  }

  choose(slot) {
    this.selected = slot;
    if (this.managing) {
      this.view = "move";
      this.renderMove();
      this.moveTitle.focus();
      return;
    }
    this.view = "form";
    this.renderForm();
    this.formTitle.focus();
  }

  backToTimes() {
    this.view = "times";
    this.outcome = null;
    this.renderTimes();
    this.timesTitle?.focus();
  }

  updateSubmitLabel() {
    if (!this.submitButton) return;
    const offline = this.page.status === "OFFLINE";
    this.submitButton.textContent = offline ? "Send request" : "Book";
    this.formNotice.hidden = !offline;
    this.formNotice.textContent = offline ? "The host confirms this time before it is booked; you will hear by email." : "";
  }

  renderForm() {
    const slot = this.selected;
    const end = slot.ms + (this.duration || 0) * 60000;
    const format = this.formats();
    this.chosen.textContent = `${this.describe(slot.ms)}–${format.time.format(end)} (${this.zone.replaceAll("_", " ")})`;
    this.updateSubmitLabel();
    this.submitButton.disabled = false;
    this.controls.hidden = true; // the duration and zone are chosen with the list of times
    this.main.replaceChildren(this.form);
  }

  // -- booking ----------------------------------------------------------------------------------

  onSubmit(event) {
    event.preventDefault();
    if (!this.form.checkValidity()) {
      this.form.reportValidity();
      return;
    }
    this.submit();
  }

  bookingInput() {
    const value = (name) => {
      const control = this.control(name);
      if (!control) return "";
      if (control.type === "checkbox") return control.checked ? "yes" : "";
      return control.value.trim();
    };
    const answers = this.page.formFields
      .map((formField) => ({ key: formField.key, value: value(`answers.${formField.key}`) }))
      .filter((answer) => answer.value !== "");
    return {
      slug: this.slug,
      domain: this.domain,
      start: this.selected.start,
      duration: this.duration,
      timezone: this.zone,
      invitee: { name: value("name"), email: value("email") },
      answers,
      source: this.source,
    };
  }

  /** The same submission (a retry after a failure) keeps its idempotency key; a changed one gets a new key. */
  async submit() {
    const input = this.bookingInput();
    const field = this.page.status === "OFFLINE" ? "requestMeeting" : "bookMeeting";
    const fingerprint = JSON.stringify([input, field]);
    if (!this.pending || this.pending.fingerprint !== fingerprint) {
      this.pending = { fingerprint, key: randomKey() };
    }
    this.retryAction = () => this.resubmit();
    this.submitButton.disabled = true;
    this.form.setAttribute("aria-busy", "true");
    try {
      await this.send(field, bookingDocument, { input: { ...input, idempotencyKey: this.pending.key } }, (result) =>
        this.booked(result, input),
      );
    } finally {
      this.submitButton.disabled = false;
      this.form.removeAttribute("aria-busy");
    }
  }

  resubmit() {
    this.view = "form";
    this.renderForm();
    if (this.form.checkValidity()) this.submit();
    else this.formTitle.focus();
  }

  /** Sends one mutation and shows what came of it; ``done`` takes a Booking. */
  async send(field, build, variables, done) {
    let answer;
    try {
      answer = await this.client.request((missing) => build(missing, field), variables);
    } catch {
      this.showOutcome({
        state: "error",
        title: "We could not reach the booking service",
        text: "Nothing has changed, as far as we know. Check your connection and try again: trying again never books twice.",
        retry: true,
      });
      return;
    }
    if (answer.rateLimited !== undefined) {
      this.showOutcome(this.rateLimited(answer.rateLimited));
      return;
    }
    const result = answer.data?.[field];
    if (!result) {
      this.showOutcome({
        state: "error",
        title: "Something went wrong",
        text: answer.errors?.[0]?.message || "The booking service gave no answer.",
        retry: true,
      });
      return;
    }
    this.settle(result, done);
  }

  settle(result, done) {
    switch (result.__typename) {
      case "Booking":
        this.pending = null;
        done(result);
        return;
      case "BookingRequest":
        this.pending = null;
        this.keepToken(result);
        this.showOutcome({
          state: "requested",
          title: "Request sent",
          text: `You asked for ${this.describeRange(result)}. The host confirms it by email to ${result.inviteeEmail}.`,
        });
        return;
      case "SlotUnavailable":
        this.showOutcome({
          state: "slot-taken",
          title: "That time was just taken",
          text: result.alternatives.length
            ? "Someone else booked it a moment ago. These times nearby are free:"
            : "Someone else booked it a moment ago. Please choose another time.",
          alternatives: result.alternatives,
        });
        return;
      case "CalendarInactive":
        this.showOutcome({
          state: "calendar-inactive",
          title: "Booking is paused",
          text: "The host's calendar cannot be checked right now, so no time can be booked. Please try again later.",
        });
        return;
      case "RateLimited":
        this.showOutcome(this.rateLimited(result.retryAfterSeconds));
        return;
      case "CalendarUnreachable":
        this.showOutcome({
          state: "error",
          title: "The calendar did not answer",
          text: `Nothing has changed. Please try again in ${result.retryAfterSeconds} seconds.`,
          retry: true,
        });
        return;
      default:
        this.showOutcome({
          state: "error",
          title: result.__typename === "InvalidInput" ? "Please check your details" : "This is not available",
          text: result.message || "The request was not accepted.",
          edit: result.__typename === "InvalidInput" && !this.managing,
        });
    }
  }

  rateLimited(seconds) {
    return {
      state: "rate-limited",
      title: "Too many attempts",
      text: `Please wait ${seconds} seconds, then try again.`,
      retry: true,
    };
  }

  describeRange(result) {
    const start = Date.parse(result.start);
    return `${this.describe(start)}–${this.formats().time.format(Date.parse(result.end))}`;
  }

  keepToken(result) {
    if (result.contactToken) keepContactToken(this.base, result.contactToken);
  }

  booked(result, input) {
    this.keepToken(result);
    this.showOutcome({
      state: "confirmed",
      title: "You are booked",
      text: `${this.describeRange(result)} (${input.timezone.replaceAll("_", " ")}). A confirmation is on its way to ${result.inviteeEmail}.`,
      manage: this.manageLinks(result.manageToken),
    });
    const detail = { bookingId: result.id, start: utcStamp(result.start), end: utcStamp(result.end) };
    this.dispatchEvent(new CustomEvent("kokous:booked", { detail, bubbles: true, composed: true }));
    if (window.parent !== window) window.parent.postMessage({ type: "kokous:booked", ...detail }, "*");
    const redirect = this.page.redirectUrl;
    if (redirect && /^https?:/i.test(redirect)) {
      this.redirectTimer = setTimeout(() => location.assign(redirect), REDIRECT_DELAY_MS);
    }
  }

  manageLinks(token) {
    if (!token || !this.page.url) return null;
    try {
      const link = (action) => {
        const url = new URL(this.page.url, this.base);
        url.searchParams.set("booking", token);
        url.searchParams.set("action", action);
        return url.href;
      };
      return { reschedule: link("reschedule"), cancel: link("cancel") };
    } catch {
      return null;
    }
  }

  // -- managing a booking: the links in the invitee's emails (?booking=<token>&action=…) ----------

  manageRequest() {
    const params = new URLSearchParams(location.search);
    const token = params.get("booking");
    const action = params.get("action");
    return token && (action === "cancel" || action === "reschedule") ? { token, action } : null;
  }

  async startManaging({ token, action }, generation) {
    let answer;
    try {
      answer = await this.client.request(() => MANAGED_BOOKING, { token });
    } catch {
      if (generation === this.generation) {
        this.showFailure("Your booking could not be loaded. Check your connection and try again.", () => this.load());
      }
      return;
    }
    if (generation !== this.generation) return;
    const booking = answer.data?.booking;
    if (!booking) {
      this.showOutcome({
        state: "error",
        title: "This link is no longer valid",
        text: "We could not find the meeting it was for. You can book a new time instead.",
      });
      return;
    }
    if (booking.status === "CANCELLED" || booking.status === "DECLINED") {
      this.showOutcome({
        state: "cancelled",
        title: "This meeting is cancelled",
        text: `${this.describeRange(booking)} is no longer booked. You can book a new time instead.`,
      });
      return;
    }
    this.managing = { token, booking };
    if (action === "cancel") {
      this.view = "cancel";
      this.renderCancel();
      this.cancelTitle.focus();
      return;
    }
    const minutes = Math.round((Date.parse(booking.end) - Date.parse(booking.start)) / 60000);
    if (this.page.durations.includes(minutes) && minutes !== this.duration) {
      this.duration = minutes;
      this.controls.querySelector("select[name=duration]")?.setAttribute("disabled", "");
      this.view = "times";
      this.openWindow();
    } else {
      this.view = "times";
      this.renderTimes();
    }
    this.timesTitle?.focus();
  }

  managedSummary() {
    const booking = this.managing.booking;
    return `${this.describeRange(booking)} (${this.zone.replaceAll("_", " ")})`;
  }

  /** A question with two answers (the steps of managing a booking); returns its heading. */
  showPanel(view, title, lines, [yes, onYes], [no, onNo]) {
    const titleId = `${this.uid}-${view}-title`;
    const heading = h("h3", { id: titleId, tabindex: "-1", text: title });
    this.controls.hidden = true;
    this.main.replaceChildren(
      h(
        "section",
        { class: "kokous-outcome", "data-kokous-view": view, "aria-labelledby": titleId },
        heading,
        lines.map((text) => h("p", { text })),
        h(
          "div",
          { class: "kokous-actions" },
          h("button", { type: "button", class: "kokous-primary", text: yes, onclick: onYes }),
          h("button", { type: "button", text: no, onclick: onNo }),
        ),
      ),
    );
    return heading;
  }

  renderCancel() {
    this.cancelTitle = this.showPanel(
      "cancel",
      "Cancel your meeting",
      [`Your meeting: ${this.managedSummary()}.`],
      ["Cancel the meeting", () => this.cancel()],
      ["Choose a new time instead", () => this.backToTimes()],
    );
  }

  async cancel() {
    const token = this.managing.token;
    this.retryAction = () => this.cancel();
    await this.send("cancelBookingByToken", cancelDocument, { token }, (booking) => {
      this.showOutcome({
        state: "cancelled",
        title: "Your meeting is cancelled",
        text: `${this.describeRange(booking)} is cancelled and the host has been told. You can book a new time below.`,
      });
      this.managing = null;
    });
  }

  renderMove() {
    const slot = this.selected;
    const end = slot.ms + (this.duration || 0) * 60000;
    this.moveTitle = this.showPanel(
      "move",
      "Move your meeting",
      [`From ${this.managedSummary()}`, `to ${this.describe(slot.ms)}–${this.formats().time.format(end)}?`],
      ["Move the meeting", () => this.move(slot)],
      ["Choose another time", () => this.backToTimes()],
    );
  }

  async move(slot) {
    const token = this.managing.token;
    this.retryAction = () => this.move(slot);
    await this.send("rescheduleBookingByToken", rescheduleDocument, { token, start: slot.start }, (booking) => {
      this.managing = { token: booking.manageToken || token, booking };
      this.showOutcome({
        state: "confirmed",
        title: "Your meeting is moved",
        text: `It is now ${this.managedSummary()}. The host and you will get the updated invitation by email.`,
        manage: this.manageLinks(booking.manageToken || token),
      });
    });
  }

  // -- outcomes -----------------------------------------------------------------------------------

  showOutcome(outcome) {
    this.outcome = outcome;
    this.view = "outcome";
    this.renderOutcome();
    this.announce(`${outcome.title}. ${outcome.text}`);
    this.outcomeTitle.focus();
  }

  renderOutcome() {
    const outcome = this.outcome;
    const titleId = `${this.uid}-outcome-title`;
    this.outcomeTitle = h("h3", { id: titleId, tabindex: "-1", text: outcome.title });
    const actions = [];
    const format = this.formats();
    let alternatives = null;
    if (outcome.alternatives?.length) {
      alternatives = h(
        "ul",
        { class: "kokous-times", "aria-label": "Other free times" },
        outcome.alternatives.map((slot) => {
          const ms = Date.parse(slot.start);
          return h(
            "li",
            {},
            h("button", {
              type: "button",
              "data-start": utcStamp(ms),
              "aria-label": this.describe(ms),
              text: `${format.day.format(ms)}, ${format.time.format(ms)}`,
              onclick: () => this.choose({ start: slot.start, end: slot.end, ms }),
            }),
          );
        }),
      );
    }
    if (outcome.retry && this.retryAction) {
      actions.push(h("button", { type: "button", class: "kokous-primary", text: "Try again", onclick: this.retryAction }));
    }
    if ((outcome.edit || outcome.retry) && !this.managing) {
      actions.push(h("button", { type: "button", text: "Edit your details", onclick: () => this.editDetails() }));
    }
    if (outcome.state !== "confirmed" && outcome.state !== "requested") {
      actions.push(h("button", { type: "button", text: "See all free times", onclick: () => this.backToTimes() }));
    }
    let manage = null;
    if (outcome.manage) {
      manage = h(
        "p",
        { class: "kokous-manage" },
        "Need to change it? ",
        h("a", { href: outcome.manage.reschedule, text: "Reschedule" }),
        " or ",
        h("a", { href: outcome.manage.cancel, text: "cancel" }),
        ".",
      );
    }
    this.controls.hidden = true;
    this.main.replaceChildren(
      h(
        "section",
        { class: "kokous-outcome", "data-kokous-state": outcome.state, "aria-labelledby": titleId },
        this.outcomeTitle,
        h("p", { text: outcome.text }),
        alternatives,
        manage,
        actions.length ? h("div", { class: "kokous-actions" }, actions) : null,
      ),
    );
  }

  editDetails() {
    this.view = "form";
    this.renderForm();
    this.formTitle.focus();
  }

  announce(text) {
    // Cleared first so the same words said twice are announced twice.
    this.live.textContent = "";
    setTimeout(() => {
      this.live.textContent = text;
    }, 50);
  }
}

if (!customElements.get("kokous-booking")) customElements.define("kokous-booking", KokousBooking);

export { KokousBooking };
