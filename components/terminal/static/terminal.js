// Front end of the terminal component (Streamlit Components v2).
//
// Streamlit loads this file as an ES module from a blob: URL, so relative
// imports cannot resolve: xterm.js and its addons are imported dynamically from
// absolute URLs built from data.vendor (the path __init__.py serves them at).
// Terminal bytes never go through Streamlit: this module opens its own
// WebSocket to {data.base}/terminal/ws/{session_id}, where data.base is
// server.baseUrlPath ("" or "/coda").
//
// The protocol (lib/terminal/protocol.py has the server's side):
// - The first message on the socket is {"type": "hello", "viewer": <this terminal's id>,
//   "resume": <output offset it has>}. The server answers with a replay framed by control messages: "replay"
//   (full: reset and take its size; resume: keep the screen), binary output
//   and "size" items, "unseen", then "live". Every step runs in xterm's write
//   queue (term.write("", callback)), so resets, resizes and the end of the
//   replay happen exactly between the bytes they belong between.
// - While a replay is parsed, the answers xterm generates to queries in it
//   (cursor position, device attributes, colours, modes) are dropped: they were
//   answered when that output was live. Only what the user types goes out.
//   After "unseen" the output was produced with nobody watching, so xterm
//   answers it as if live.
// - Input is numbered: typed bytes stay in an outbox until the server's count
//   ("input" in "replay" and "pong") covers them, and a reconnect resends what
//   the server did not count. Nothing typed during a drop is lost or doubled.
// - Pings both ways every data.ping_s; a socket silent for three intervals is
//   closed and reconnected.
//
// Closing and reconnecting:
// - data.close_codes is the one close-code table, {"4404": {meaning, retry}}.
//   A close with a code in it shows its meaning; retry=false stops for good.
//   Other codes (network drops, server restarts) reconnect with backoff.
// - A socket refused before the handshake (a stranger, a cross-site page, the
//   owner not known yet) never opens, and the browser reports only 1006. So a
//   socket that closes without having opened asks GET {base}/api/sessions
//   once, which passes the same access checks, and looks up 4000 + its HTTP
//   status in the same table: 403 -> 4403 Forbidden (final, with the server's
//   reason), 503 -> 4503 Not ready (retry). A 200 list without this session
//   means 4404 Unknown session (final). No answer or anything else: retry.

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 8000;
const RESIZE_DEBOUNCE_MS = 100;
// Close code = this + HTTP status, for the codes of a refused handshake.
const HTTP_CLOSE_BASE = 4000;
const SEND_CHUNK = 64 * 1024; // input frames; a 1 MB paste goes out in pieces
const QUEUE_LIMIT = 4 * 1024 * 1024; // input kept while disconnected; beyond it typing is refused visibly
const MIN_COLS = 40; // narrow screens get a smaller font rather than fewer columns
const MIN_FONT = 8;
const NOTICE_MS = 6000;

const FONT_FAMILY =
  'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, "Liberation Mono", monospace';

// xterm's default ANSI palette suits dark backgrounds; the light one darkens
// the colours that would be unreadable on white (yellow, white, cyan...).
const THEMES = {
  dark: {
    background: "#0e1117", foreground: "#e6e6e6", cursor: "#e6e6e6",
    cursorAccent: "#0e1117", selectionBackground: "#3a4a66",
  },
  light: {
    background: "#ffffff", foreground: "#262730", cursor: "#262730",
    cursorAccent: "#ffffff", selectionBackground: "#b4d5fe",
    black: "#262730", red: "#c4262e", green: "#1b7f3b", yellow: "#8a6d00",
    blue: "#1f5fbf", magenta: "#a3309c", cyan: "#0f7a8a", white: "#8a8d96",
    brightBlack: "#5c5f6a", brightRed: "#e0383e", brightGreen: "#23963f",
    brightYellow: "#a07c00", brightBlue: "#2f74d0", brightMagenta: "#b93fb2",
    brightCyan: "#138c9e", brightWhite: "#3d404a",
  },
};

// Search matches: the text keeps the theme's foreground, so the background
// must be light on the light theme and dark on the dark one.
const SEARCH_DECORATIONS = {
  dark: {
    matchBackground: "#6b5d00", matchOverviewRuler: "#d4b000",
    activeMatchBackground: "#d46f00", activeMatchColorOverviewRuler: "#ff8800",
  },
  light: {
    matchBackground: "#ffe58a", matchBorder: "#d4b000", matchOverviewRuler: "#d4b000",
    activeMatchBackground: "#ffb057", activeMatchBorder: "#d46f00", activeMatchColorOverviewRuler: "#ff8800",
  },
};

// The phone key bar: label, what it sends (a string, or a function of the
// terminal's modes and the sticky modifiers), and its test id.
const CSI = "\x1b[";
const cursorKey = (final) => (t, mod) =>
  mod ? `${CSI}1;${mod}${final}` : `${t.modes.applicationCursorKeysMode ? "\x1bO" : CSI}${final}`;
const tildeKey = (code) => (t, mod) => (mod ? `${CSI}${code};${mod}~` : `${CSI}${code}~`);
const KEYS = [
  { label: "Esc", send: "\x1b", id: "esc" },
  { label: "Tab", send: "\t", id: "tab" },
  { label: "⇧Tab", send: `${CSI}Z`, id: "shift-tab" },
  { label: "Ctrl", sticky: "ctrl", id: "ctrl" },
  { label: "Alt", sticky: "alt", id: "alt" },
  { label: "←", send: cursorKey("D"), id: "left", aria: "Left" },
  { label: "↑", send: cursorKey("A"), id: "up", aria: "Up" },
  { label: "↓", send: cursorKey("B"), id: "down", aria: "Down" },
  { label: "→", send: cursorKey("C"), id: "right", aria: "Right" },
  { label: "Home", send: cursorKey("H"), id: "home" },
  { label: "End", send: cursorKey("F"), id: "end" },
  { label: "PgUp", send: tildeKey(5), id: "pgup" },
  { label: "PgDn", send: tildeKey(6), id: "pgdn" },
  { label: "^C", send: "\x03", id: "ctrl-c", aria: "Control C" },
  { label: "^D", send: "\x04", id: "ctrl-d", aria: "Control D" },
  { label: "Paste", paste: true, id: "paste" },
];

// One import per page and vendor path; the modules are shared by every mount.
const vendorCache = new Map();
function loadVendor(base) {
  if (!vendorCache.has(base)) {
    const load = (file) => import(new URL(base + file, window.location.origin).href);
    vendorCache.set(base, Promise.all([
      load("xterm.mjs"), load("addon-fit.mjs"), load("addon-web-links.mjs"),
      load("addon-search.mjs"), load("addon-unicode11.mjs"),
      load("addon-clipboard.mjs"), load("addon-webgl.mjs"),
    ]).then(([x, fit, links, search, unicode, clip, webgl]) => ({
      Terminal: x.Terminal, FitAddon: fit.FitAddon, WebLinksAddon: links.WebLinksAddon,
      SearchAddon: search.SearchAddon, Unicode11Addon: unicode.Unicode11Addon,
      ClipboardAddon: clip.ClipboardAddon, Base64: clip.Base64, WebglAddon: webgl.WebglAddon,
    })));
  }
  return vendorCache.get(base);
}

// Read a CSS colour variable as "rgb(...)", or "" when it is not set. The
// browser parses the value, so any CSS colour syntax works.
function cssColor(el, name) {
  const value = getComputedStyle(el).getPropertyValue(name).trim();
  if (!value) return "";
  const probe = document.createElement("span");
  probe.style.color = value;
  el.appendChild(probe);
  const rgb = getComputedStyle(probe).color;
  probe.remove();
  return rgb;
}

// "auto" follows Streamlit's theme: Components v2 exposes it as --st-* CSS
// variables on the component's host, and the terminal takes the page's own
// background and text colours. Outside Streamlit, use the OS preference.
function pickTheme(choice, el) {
  const bg = choice === "auto" ? cssColor(el, "--st-background-color") : "";
  if (!bg) {
    const name = choice !== "auto" ? choice
      : window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    return { name, colors: THEMES[name] };
  }
  const [r, g, b] = bg.match(/[\d.]+/g).map(Number);
  const name = 0.299 * r + 0.587 * g + 0.114 * b < 128 ? "dark" : "light";
  const fg = cssColor(el, "--st-text-color") || THEMES[name].foreground;
  return {
    name,
    colors: { ...THEMES[name], background: bg, foreground: fg, cursor: fg, cursorAccent: bg },
  };
}

function wsUrl(base, sessionId) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}${base}/terminal/ws/${encodeURIComponent(sessionId)}`;
}

function newViewerId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Array.from({ length: 24 }, () => Math.floor(Math.random() * 36).toString(36)).join("");
}

function isTouchDevice() {
  return window.matchMedia("(pointer: coarse)").matches || navigator.maxTouchPoints > 0
    || "ontouchstart" in window;
}

// A path as one shell word: plain names as they are, anything else in single quotes.
function shellQuote(path) {
  return /^[\w@%+=:,./-]+$/u.test(path) ? path : `'${path.replace(/'/g, "'\\''")}'`;
}

function formatBytes(n) {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(n >= 10 * 1024 * 1024 ? 0 : 1)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} bytes`;
}

// Why a socket that never opened was refused, as {status, reason}: the HTTP
// status a request with the same access checks gets (404 when the session is
// not in the list), or null when that tells nothing (retry).
async function probeRefusal(base, sessionId) {
  let resp;
  try {
    resp = await fetch(`${base}/api/sessions`, {
      cache: "no-store", credentials: "same-origin", headers: { Accept: "application/json" },
    });
  } catch {
    return null; // server unreachable: it may be restarting
  }
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON */ }
  if (resp.ok) {
    if (!Array.isArray(body)) return null;
    return body.some((s) => s && s.id === sessionId) ? null : { status: 404, reason: "" };
  }
  return { status: resp.status, reason: body && typeof body.error === "string" ? body.error : "" };
}

// Upload one file to {base}/api/uploads with progress; resolves to the saved path.
function uploadFile(base, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${base}/api/uploads`);
    xhr.withCredentials = true;
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && body && typeof body.path === "string") resolve(body.path);
      else reject(new Error(body && body.error ? body.error : `upload failed (HTTP ${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error("upload failed: the server could not be reached"));
    const form = new FormData();
    form.append("file", file, file.name || "pasted.png");
    xhr.send(form);
  });
}

// --- Needs attention (lib/attention) -------------------------------------------
// Every terminal WebSocket also carries every session's attention state:
// {"type": "attention", "now": <server time>, "sessions": [{id, label, agent,
// attention, since, detail, event}]}, sent on connect and within a second of
// each change. The page shows it where the user looks: the browser tab's title
// counts sessions needing input ("(2) Coda") and the favicon gets a dot; a
// session in the background (the page hidden, or another session open) that
// starts needing input or finishes brings a desktop notification (setting
// "Desktop notifications"; permission asked only on a click of "Allow
// notifications") whose click opens it, and a tone (setting "Sound"). The
// session tabs are drawn by Streamlit: a change they show triggers a rerun.
// What the page knows lives on window, so a remount (another session opened)
// neither repeats a notification nor loses the title.
const ATTENTION_TAB_STATES = new Set(["needs_input", "done", "working", "exited"]); // lib.attention.states.BADGED
const ATTENTION_NOTIFY_STATES = new Set(["needs_input", "done"]);
const ATTENTION_RERUN_MS = 250;
const ATTENTION_AGES_MS = 60000; // how often the tabs' "waiting 5m" is drawn again while one is shown

function attentionPage() {
  if (!window.__codaAttention) {
    window.__codaAttention = {
      seeded: false, // the first list only tells what is already waiting: no notification for it
      seen: new Map(), // session id -> "state:since" last seen
      count: 0,
      sessions: [],
      tabs: null, // what the session tabs show, as drawn
      icons: new Map(), // favicon <link> -> its own href
      dotted: "", // our favicon with a dot (data: URL)
      observer: null,
      audio: null,
      notifications: [], // the ones shown, for tests
    };
  }
  return window.__codaAttention;
}

function attentionTitle(page) {
  const current = document.title;
  const base = current.replace(/^\(\d+\) /, "");
  const want = page.count > 0 ? `(${page.count}) ${base}` : base;
  if (current !== want) document.title = want;
}

function attentionIconLinks() {
  return Array.from(document.querySelectorAll('link[rel~="icon"]'));
}

function attentionDrawDot(page) {
  const links = attentionIconLinks();
  const source = links.length ? (page.icons.get(links[0]) || links[0].href) : "";
  const size = 64;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  const finish = () => {
    ctx.beginPath();
    ctx.arc(size * 0.76, size * 0.24, size * 0.22, 0, 2 * Math.PI);
    ctx.fillStyle = "#e8590c";
    ctx.fill();
    ctx.lineWidth = size * 0.05;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
    try { page.dotted = canvas.toDataURL("image/png"); } catch { return; }
    attentionFavicon(page);
  };
  if (!source) { finish(); return; }
  const img = new Image();
  img.onload = () => { try { ctx.drawImage(img, 0, 0, size, size); } catch { /* tainted */ } finish(); };
  img.onerror = finish;
  img.src = source;
}

function attentionFavicon(page) {
  for (const link of attentionIconLinks()) {
    if (!page.icons.has(link) && link.href !== page.dotted) page.icons.set(link, link.href);
    const own = page.icons.get(link);
    const want = page.count > 0 && page.dotted ? page.dotted : own;
    if (want && link.href !== want) link.href = want;
  }
}

function attentionWatchHead(page) {
  if (page.observer) return;
  // Streamlit sets the title and the favicon again on reruns and page changes: keep ours on top.
  page.observer = new MutationObserver(() => {
    attentionTitle(page);
    for (const link of attentionIconLinks()) {
      if (link.href !== page.dotted && page.icons.get(link) !== link.href) page.icons.set(link, link.href);
    }
    attentionFavicon(page);
  });
  page.observer.observe(document.head, { childList: true, subtree: true, characterData: true, attributes: true,
                                         attributeFilter: ["href"] });
}

function attentionBeep(page) {
  try {
    if (!page.audio) page.audio = new AudioContext();
    const ctx = page.audio;
    if (ctx.state === "suspended") ctx.resume();
    const gain = ctx.createGain();
    gain.gain.value = 0.06;
    gain.connect(ctx.destination);
    [880, 660].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      osc.frequency.value = freq;
      osc.connect(gain);
      osc.start(ctx.currentTime + i * 0.14);
      osc.stop(ctx.currentTime + i * 0.14 + 0.12);
    });
  } catch (err) {
    console.debug("terminal: attention sound", err);
  }
}

function attentionOpen(sessionId) {
  const url = new URL(window.location.href);
  url.searchParams.set("session", sessionId);
  window.location.assign(url.toString());
}

function attentionNotify(page, s, openId) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const label = String(s.label || s.agent || "A session");
  const needs = s.attention === "needs_input";
  try {
    const n = new Notification(needs ? `${label} needs input` : `${label} is done`, {
      body: String(s.detail || (needs ? "Waiting for you." : "Finished; waiting for your next instruction.")),
      tag: `coda-${s.id}`,
    });
    n.onclick = () => {
      window.focus();
      n.close();
      if (s.id !== openId) attentionOpen(s.id);
    };
    page.notifications.push({ id: s.id, state: s.attention, title: n.title, notification: n });
    if (page.notifications.length > 20) page.notifications.shift();
  } catch (err) {
    console.debug("terminal: notification", err);
  }
}

// One mount's share: reads the pushed states, offers the permission, triggers reruns.
function attentionView(root, data, api) {
  const page = attentionPage();
  const prefs = data.attention || {};
  let rerunTimer = null;
  let button = null;
  attentionWatchHead(page);

  if (prefs.notify && "Notification" in window && Notification.permission === "default") {
    // Browsers want a click before they ask: a small button, never a prompt on load.
    button = document.createElement("button");
    button.type = "button";
    button.textContent = "Allow notifications";
    button.dataset.testid = "attention-allow";
    button.title = "Desktop notifications when a session in the background needs input";
    Object.assign(button.style, {
      position: "absolute", top: "6px", right: "18px", zIndex: "5", font: "12px system-ui, sans-serif",
      padding: "2px 8px", borderRadius: "10px", border: "1px solid #e8590c", background: "#fff4e6",
      color: "#7a2e05", cursor: "pointer",
    });
    button.addEventListener("click", (ev) => {
      ev.stopPropagation();
      Notification.requestPermission().finally(() => { if (button) button.remove(); button = null; });
    });
    root.appendChild(button);
  }
  const unlockSound = () => {
    if (!prefs.sound) return;
    try {
      if (!page.audio) page.audio = new AudioContext();
      if (page.audio.state === "suspended") page.audio.resume();
    } catch { /* no audio */ }
  };
  document.addEventListener("pointerdown", unlockSound, { once: true, capture: true });

  const update = (msg) => {
    if (!Array.isArray(msg.sessions)) return;
    const sessions = msg.sessions.filter((s) => s && typeof s.id === "string");
    page.sessions = sessions;
    page.count = sessions.filter((s) => s.attention === "needs_input").length;
    attentionTitle(page);
    if (page.count > 0 && !page.dotted) attentionDrawDot(page);
    else attentionFavicon(page);

    const background = (s) => document.hidden || s.id !== data.session_id;
    for (const s of sessions) {
      const mark = `${s.attention}:${s.since}`;
      const before = page.seen.get(s.id);
      page.seen.set(s.id, mark);
      if (!page.seeded || before === mark || !ATTENTION_NOTIFY_STATES.has(s.attention) || !background(s)) continue;
      if (prefs.notify) attentionNotify(page, s, data.session_id);
      if (prefs.sound && s.attention === "needs_input") attentionBeep(page);
    }
    page.seeded = true;

    const tabs = sessions.map((s) => `${s.id}:${ATTENTION_TAB_STATES.has(s.attention) ? s.attention : ""}`)
      .sort().join(",");
    if (page.tabs === null) page.tabs = tabs;
    if (tabs !== page.tabs) {
      page.tabs = tabs;
      clearTimeout(rerunTimer);
      rerunTimer = setTimeout(rerun, ATTENTION_RERUN_MS);
    }
  };
  const rerun = () => {
    if (!api.setTriggerValue) return;
    try { api.setTriggerValue("attention", Date.now()); } catch (err) { console.debug("terminal: trigger", err); }
  };
  const ages = setInterval(() => {
    const aged = page.sessions.some((s) => s.attention === "needs_input" || s.attention === "done");
    if (aged && !document.hidden) rerun();
  }, ATTENTION_AGES_MS);

  return {
    update,
    dispose() {
      clearTimeout(rerunTimer);
      clearInterval(ages);
      document.removeEventListener("pointerdown", unlockSound, { capture: true });
      if (button) button.remove();
    },
  };
}

function start(x, root, data, api) {
  const screen = root.querySelector(".coda-terminal__screen");
  const status = root.querySelector(".coda-terminal__status");
  const notice = root.querySelector(".coda-terminal__notice");
  const searchBox = root.querySelector(".coda-terminal__search");
  const searchInput = searchBox.querySelector("input");
  const keyBar = root.querySelector(".coda-terminal__keys");

  const theme = pickTheme(data.theme, root);
  root.dataset.theme = theme.name;
  const decorations = SEARCH_DECORATIONS[theme.name];
  const touch = isTouchDevice();
  // height 0 means "fill the window below the terminal's top edge".
  const fillHeight = () => {
    const top = root.getBoundingClientRect().top + window.scrollY;
    root.style.height = `${Math.max(240, window.innerHeight - top - 24)}px`;
  };
  if (data.height > 0) root.style.height = `${data.height}px`;
  else fillHeight();
  root.style.background = theme.colors.background;

  const term = new x.Terminal({
    allowProposedApi: true, // unicode11 and search decorations use proposed API
    cursorBlink: true,
    fontFamily: FONT_FAMILY,
    fontSize: data.font_size,
    scrollback: data.scrollback_lines || 10000,
    rightClickSelectsWord: false, // right click pastes (or copies a selection)
    theme: theme.colors,
  });
  const fit = new x.FitAddon();
  const search = new x.SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(new x.WebLinksAddon());
  term.loadAddon(new x.Unicode11Addon());
  term.unicode.activeVersion = "11";

  // --- State ----------------------------------------------------------------
  let ws = null;
  let retryMs = RETRY_FIRST_MS;
  let retryTimer = null;
  let attempts = 0;
  let finished = false; // process exited or access refused: never reconnect
  let lastSize = "";
  let replaying = false; // between "replay" and the parsed end of the replay
  let swallow = false; // drop the answers xterm generates (set and cleared in parse order)
  let legacy = false; // a server that sends no replay framing (tests' fake server)
  let outOffset = null; // output offset received so far (absolute), for ?resume=
  let userInput = false; // set by xterm's onUserInput just before the onData it precedes
  let viewerId = newViewerId();
  let renumber = false; // a socket counted nothing: start a fresh count under a new id
  const viewerStats = { replays: 0, resumes: 0, swallowed: 0, timings: [] };

  // Input outbox: [outboxStart, outboxStart + outboxBytes) not yet counted by the server.
  let outbox = [];
  let outboxStart = 0;
  let outboxBytes = 0;
  let sentUpTo = 0; // absolute: bytes sent on some socket

  const setStatus = (text, final = false) => {
    status.textContent = text || "";
    status.hidden = !text;
    status.classList.toggle("coda-terminal__status--final", final);
  };
  let noticeTimer = null;
  const showNotice = (text, kind = "info", sticky = false) => {
    clearTimeout(noticeTimer);
    notice.textContent = text || "";
    notice.hidden = !text;
    notice.dataset.kind = kind;
    if (text && !sticky) noticeTimer = setTimeout(() => { notice.hidden = true; }, NOTICE_MS);
  };
  const writeLine = (text, sgr) => {
    // Strip control characters so a server message cannot drive the terminal.
    const clean = String(text).replace(/[\x00-\x1f\x7f]/g, " ");
    term.write(`\r\n\x1b[${sgr}m${clean}\x1b[0m\r\n`);
  };
  // Runs fn once everything written so far is parsed (xterm's write queue keeps order).
  const afterParsed = (fn) => term.write("", fn);
  let refocus = false;
  const showSurface = (on) => {
    const surface = term.element && term.element.querySelector(".xterm-screen");
    if (!surface || (surface.style.display === "none") !== on) return;
    if (!on) {
      // Hiding it blurs the keyboard's textarea inside it: give the focus back after.
      refocus = term.textarea && term.textarea.getRootNode().activeElement === term.textarea;
      surface.style.display = "none";
    } else {
      surface.style.display = "";
      if (refocus) term.focus();
      refocus = false;
    }
  };

  // OSC 52 from programs (vim, tmux) sets the clipboard; reading it is refused
  // (a program must not read what the user copied), and a replay sets nothing.
  const clipboardProvider = {
    readText: async () => "",
    writeText: async (selection, text) => {
      if (swallow || !text) return;
      try { await navigator.clipboard.writeText(text); } catch (err) {
        console.debug("terminal: OSC 52 copy refused by the browser", err);
      }
    },
  };
  term.loadAddon(new x.ClipboardAddon(new x.Base64(), clipboardProvider));

  term.open(screen);
  // GPU rendering is optional: without WebGL (or once the context is lost)
  // xterm keeps using its built-in DOM renderer. Phones and tablets keep the
  // DOM renderer: mobile browsers drop WebGL contexts of background tabs, and
  // a small screen draws fast enough without.
  if (!touch) {
    try {
      const webgl = new x.WebglAddon();
      webgl.onContextLoss(() => webgl.dispose());
      term.loadAddon(webgl);
    } catch (err) {
      console.debug("terminal: WebGL renderer unavailable, using DOM renderer", err);
    }
  }
  window.__codaTerm = term;
  window.__codaTermViewer = viewerStats;

  // --- Input ----------------------------------------------------------------
  const connected = () => ws && ws.readyState === WebSocket.OPEN && (legacy || ws.__framed);
  const sendFrom = (from) => {
    // Send the outbox from absolute offset `from` (>= outboxStart) on the open socket.
    let pos = outboxStart;
    for (const chunk of outbox) {
      const end = pos + chunk.length;
      if (end > from) {
        const part = from > pos ? chunk.subarray(from - pos) : chunk;
        for (let i = 0; i < part.length; i += SEND_CHUNK) ws.send(part.subarray(i, i + SEND_CHUNK));
      }
      pos = end;
    }
    sentUpTo = Math.max(sentUpTo, pos);
  };
  const acknowledge = (count) => {
    // The server took `count` bytes of this viewer's input: forget them.
    while (outbox.length && outboxStart + outbox[0].length <= count) {
      outboxStart += outbox[0].length;
      outboxBytes -= outbox[0].length;
      outbox.shift();
    }
    if (outbox.length && count > outboxStart) {
      const cut = count - outboxStart;
      outbox[0] = outbox[0].subarray(cut);
      outboxStart += cut;
      outboxBytes -= cut;
    }
    if (!outbox.length) outboxStart = Math.max(outboxStart, count);
  };
  const queueInput = (bytes) => {
    if (!bytes.length || finished) return;
    if (!connected() && outboxBytes + bytes.length > QUEUE_LIMIT) {
      showNotice("Not connected: this input was not sent (too much typed while reconnecting).", "error");
      return;
    }
    outbox.push(bytes);
    outboxBytes += bytes.length;
    if (connected()) {
      sendFrom(sentUpTo);
      if (legacy || !ws.__counted) acknowledge(sentUpTo); // no counts from this server: nothing to resend
      else if (bytes.length >= SEND_CHUNK) sendControl({ type: "ping" }); // its pong frees the outbox
    } else {
      updateStatus();
    }
  };

  // Sticky modifiers of the key bar apply to the next key typed.
  const sticky = { ctrl: false, alt: false };
  const setSticky = (name, on) => {
    sticky[name] = on;
    const button = keyBar.querySelector(`[data-key="${name}"]`);
    if (button) button.setAttribute("aria-pressed", on ? "true" : "false");
  };
  const applySticky = (text) => {
    if (!sticky.ctrl && !sticky.alt) return text;
    let out = text;
    if (sticky.ctrl && text.length === 1) {
      const c = text.toUpperCase().charCodeAt(0);
      if (c >= 0x40 && c <= 0x5f) out = String.fromCharCode(c & 0x1f);
      else if (text === " ") out = "\x00";
      else if (text === "?") out = "\x7f";
    }
    if (sticky.alt) out = `\x1b${out}`;
    setSticky("ctrl", false);
    setSticky("alt", false);
    return out;
  };

  const encoder = new TextEncoder();
  const coreService = term._core && term._core.coreService;
  if (coreService && coreService.onUserInput) {
    coreService.onUserInput(() => { userInput = true; });
  }
  // xterm's answers to queries carry no user flag; keys, pastes and mouse reports do.
  const RESPONSE = /^\x1b(\[[?>=]?[\d;]*[cnRyt]|\[[IO]|\][\d;]+.*|P.*)$/s;
  term.onData((text) => {
    const fromUser = coreService ? userInput : !RESPONSE.test(text);
    userInput = false;
    if (swallow && !fromUser) {
      viewerStats.swallowed += 1;
      return;
    }
    queueInput(encoder.encode(fromUser ? applySticky(text) : text));
  });
  // onBinary carries raw bytes as one char per byte (e.g. X10 mouse reports):
  // UTF-8 encoding them would corrupt values >= 0x80.
  term.onBinary((bin) => {
    if (!swallow) queueInput(Uint8Array.from(bin, (c) => c.charCodeAt(0) & 0xff));
  });

  // --- Size -----------------------------------------------------------------
  const sendControl = (msg) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  };
  const sendSize = (cols, rows) => {
    const size = `${cols}x${rows}`;
    if (size === lastSize) return;
    lastSize = size;
    sendControl({ type: "resize", cols, rows });
  };
  // The font shrinks (down to MIN_FONT) until MIN_COLS columns fit: a phone gets 40+ columns.
  const fitFont = () => {
    let size = term.options.fontSize;
    let dims = fit.proposeDimensions();
    while (dims && size < data.font_size) { // grow back while it still fits
      term.options.fontSize = size + 1;
      const bigger = fit.proposeDimensions();
      if (!bigger || bigger.cols < MIN_COLS) {
        term.options.fontSize = size;
        break;
      }
      size += 1;
      dims = bigger;
    }
    while (dims && dims.cols < MIN_COLS && size > MIN_FONT) {
      size -= 1;
      term.options.fontSize = size;
      dims = fit.proposeDimensions();
    }
    return dims;
  };
  const fitAndResize = () => {
    let dims = null;
    try { dims = fitFont(); } catch { /* container not laid out yet */ }
    if (!dims || !dims.cols || !dims.rows || Number.isNaN(dims.cols)) return;
    if (replaying) {
      sendSize(dims.cols, dims.rows); // the program may redraw now; xterm keeps the replay's size
      return;
    }
    if (dims.cols !== term.cols || dims.rows !== term.rows) term.resize(dims.cols, dims.rows);
    sendSize(term.cols, term.rows);
  };

  // --- Status ---------------------------------------------------------------
  const updateStatus = (base) => {
    if (finished) return;
    if (base !== undefined) status.dataset.base = base;
    const text = status.dataset.base || "";
    // Everything the server has not acknowledged is resent (or sent) once connected.
    const queued = outboxBytes;
    const extra = !connected() && queued > 0 ? ` (${queued} typed byte${queued === 1 ? "" : "s"} will be sent)` : "";
    setStatus(text ? text + extra : "");
    root.dataset.state = text ? "reconnecting" : (replaying ? "replaying" : "live");
  };

  // --- Receiving --------------------------------------------------------------
  let ended = false;
  const markEnded = (why) => {
    if (ended) return;
    ended = true;
    root.classList.add("coda-terminal--ended");
    root.dataset.state = "ended";
    if (api.setTriggerValue) {
      try { api.setTriggerValue("ended", why); } catch (err) { console.debug("terminal: trigger", err); }
    }
  };

  const attention = attentionView(root, data, api);
  const onControl = (msg, sock) => {
    switch (msg.type) {
      case "replay": {
        sock.__framed = true;
        replaying = true; // no resizing of xterm from now until the replay is parsed
        const full = msg.mode !== "resume";
        if (full) viewerStats.replays += 1; else viewerStats.resumes += 1;
        afterParsed(() => {
          replaying = true;
          swallow = true; // in parse order: live output before this is still answered
          if (full) {
            // Nothing of a full replay is worth drawing but its end: with its drawing surface
            // hidden, xterm pauses its renderer and parses faster.
            showSurface(false);
            term.reset();
            term.resize(msg.cols, msg.rows);
          }
        });
        sock.__timing = {
          kind: full ? "full" : "resume", created: sock.__created, opened: sock.__opened,
          replay: performance.now(), bytes: 0,
        };
        // Resend what the server has not counted (typed during the drop, or lost with the old socket).
        // A server that counts nothing (input null) gets only what was never sent.
        sock.__counted = typeof msg.input === "number";
        if (sock.__counted) {
          acknowledge(msg.input);
          sentUpTo = Math.max(msg.input, outboxStart);
        } else {
          acknowledge(sentUpTo);
          renumber = true;
        }
        sendFrom(sentUpTo);
        updateStatus("");
        break;
      }
      case "size":
        afterParsed(() => term.resize(msg.cols, msg.rows));
        break;
      case "unseen":
        afterParsed(() => { swallow = false; });
        break;
      case "live": {
        sock.__live = true;
        outOffset = Number(msg.offset);
        const timing = sock.__timing;
        afterParsed(() => {
          swallow = false;
          replaying = false;
          showSurface(true);
          lastSize = "";
          fitAndResize();
          updateStatus("");
          if (timing) {
            timing.parsed = performance.now();
            requestAnimationFrame(() => {
              timing.painted = performance.now();
              viewerStats.timings.push(timing);
              if (viewerStats.timings.length > 50) viewerStats.timings.shift();
            });
          }
        });
        break;
      }
      case "ping":
        sendControl({ type: "pong" });
        break;
      case "pong":
        if (typeof msg.input === "number") acknowledge(msg.input);
        break;
      case "exit":
        finished = true;
        setStatus("");
        writeLine(`[process exited with code ${msg.code}]`, "2");
        markEnded({ code: msg.code });
        break;
      case "attention": // every session's state (lib.attention.hub)
        attention.update(msg);
        break;
      case "error":
        writeLine(msg.message, "31");
        break;
      default:
        break; // newer servers may send more; ignore what we do not know
    }
  };

  // After a close (or a refused handshake): stop for good or reconnect.
  const closed = (code, reason) => {
    const known = data.close_codes[String(code)];
    if (known && !known.retry) {
      finished = true;
      setStatus(`${known.meaning} (${code})`, true);
      writeLine(reason && reason !== known.meaning ? `${known.meaning}: ${reason}` : known.meaning, "31");
      if ((data.gone_codes || []).includes(Number(code))) {
        writeLine("This session is gone: the app was restarted or the session was closed. "
          + "Pick another session or start a new one.", "2");
      }
      root.dataset.state = "ended";
      markEnded({ code: null, gone: true, close: code });
      return;
    }
    attempts += 1;
    updateStatus(known ? `${known.meaning} (${code}), reconnecting…` : "Reconnecting…");
    root.dataset.state = "reconnecting";
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  };

  const connect = () => {
    retryTimer = null;
    if (renumber) {
      // The server's count and ours no longer line up: what is left was never sent; number it from 0.
      renumber = false;
      viewerId = newViewerId();
      outboxStart = 0;
      sentUpTo = 0;
    }
    // Who this terminal is and how much output it has: the first message on the socket.
    const hello = { type: "hello", viewer: viewerId };
    if (outOffset !== null && !legacy) hello.resume = outOffset;
    if (viewerStats.replayAll) hello.replay = "all"; // the benchmark's baseline
    const sock = new WebSocket(wsUrl(data.base, data.session_id));
    sock.__created = performance.now();
    sock.binaryType = "arraybuffer";
    ws = sock;
    let opened = false;
    let heard = Date.now();
    sock.onopen = () => {
      opened = true;
      sock.__opened = performance.now();
      retryMs = RETRY_FIRST_MS;
      sock.send(JSON.stringify(hello));
      // The program may redraw for this size while the replay is read.
      lastSize = "";
      try {
        const dims = fitFont();
        if (dims && dims.cols && dims.rows) sendSize(dims.cols, dims.rows);
      } catch { /* not laid out yet */ }
    };
    sock.onmessage = (ev) => {
      heard = Date.now();
      if (typeof ev.data === "string") {
        let msg = null;
        try { msg = JSON.parse(ev.data); } catch { /* ignore malformed control */ }
        if (msg && typeof msg.type === "string") onControl(msg, sock);
        return;
      }
      const bytes = new Uint8Array(ev.data);
      if (!sock.__framed && !sock.__unframed) {
        // A server without replay framing sends the whole scrollback on every connect.
        legacy = true;
        sock.__unframed = true;
        afterParsed(() => term.reset());
        acknowledge(sentUpTo);
        sendFrom(sentUpTo);
        updateStatus("");
      }
      if (sock.__live) {
        if (outOffset !== null) outOffset += bytes.length;
      } else if (sock.__timing) {
        sock.__timing.bytes += bytes.length;
        sock.__timing.received = performance.now();
      }
      term.write(bytes); // xterm decodes UTF-8 across chunks
    };
    const gone = (code, reason) => {
      clearInterval(sock.__pinger);
      if (ws !== sock) return; // torn down or superseded
      ws = null;
      if (sock.__framed && !sock.__live) {
        // Cut off in the middle of a replay: the next connect starts over from a full one.
        outOffset = null;
        afterParsed(() => {
          replaying = false;
          swallow = false;
          showSurface(true);
        });
      }
      if (finished) return;
      if (opened) {
        closed(code, reason);
        return;
      }
      probeRefusal(data.base, data.session_id).then((why) => {
        if (!finished) closed(why ? HTTP_CLOSE_BASE + why.status : code, why ? why.reason : "");
      });
    };
    sock.onclose = (ev) => gone(ev.code, ev.reason);
    // Keepalive: a ping every interval; nothing heard for three means the path is dead.
    // A dead path cannot carry a closing handshake either: give up on the socket at once.
    const interval = Math.max(200, (data.ping_s || 25) * 1000);
    sock.__pinger = setInterval(() => {
      if (sock.readyState !== WebSocket.OPEN || legacy) return;
      if (Date.now() - heard > 3 * interval) {
        sock.onclose = null;
        sock.onmessage = null;
        try { sock.close(4000, "no answer to pings"); } catch { /* already closing */ }
        gone(data.quiet_code, "no answer to pings");
        return;
      }
      sock.send(JSON.stringify({ type: "ping" }));
    }, interval);
  };

  // --- Size changes ---------------------------------------------------------
  let resizeTimer = null;
  const observer = new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(fitAndResize, RESIZE_DEBOUNCE_MS);
  });
  observer.observe(screen);
  const onWindowResize = () => {
    if (!(data.height > 0)) fillHeight();
  };
  window.addEventListener("resize", onWindowResize);
  fitAndResize();

  // --- Clipboard ----------------------------------------------------------------
  const copyText = async (text) => {
    if (!text) return false;
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // No clipboard permission: the copy command copies xterm's selection.
      try { return document.execCommand("copy"); } catch { return false; }
    }
  };
  const pasteFromClipboard = async () => {
    try {
      const text = await navigator.clipboard.readText();
      if (text) term.paste(text);
    } catch {
      showNotice("The browser did not allow reading the clipboard: paste with Ctrl+V (⌘V) instead.");
    }
  };
  let copyTimer = null;
  term.onSelectionChange(() => {
    if (!data.copy_on_select) return;
    clearTimeout(copyTimer);
    copyTimer = setTimeout(() => {
      if (term.hasSelection()) copyText(term.getSelection());
    }, 120);
  });

  // --- Keys: clipboard shortcuts and search (Ctrl+Shift+F) --------------------
  const closeSearch = () => {
    searchBox.hidden = true;
    search.clearDecorations();
    term.focus();
  };
  term.attachCustomKeyEventHandler((ev) => {
    const key = ev.code;
    const down = ev.type === "keydown";
    if (ev.ctrlKey && ev.shiftKey && !ev.altKey && key === "KeyF") {
      if (down) {
        ev.preventDefault();
        searchBox.hidden = false;
        searchInput.select();
        searchInput.focus();
      }
      return false; // keep the shortcut away from the shell
    }
    // Ctrl+Shift+C copies; Ctrl+C copies when there is a selection, else it is ^C.
    if (ev.ctrlKey && !ev.altKey && !ev.metaKey && key === "KeyC" && (ev.shiftKey || term.hasSelection())) {
      if (down) {
        ev.preventDefault();
        const text = term.getSelection();
        copyText(text).then((ok) => { if (ok && !ev.shiftKey) term.clearSelection(); });
      }
      return false;
    }
    // Ctrl+V, Ctrl+Shift+V, Cmd+V: the browser's paste (xterm wraps it in
    // bracketed paste when the program asked for it); never ^V to the shell.
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && key === "KeyV") return false;
    return true;
  });
  searchInput.addEventListener("input", () => {
    search.findNext(searchInput.value, { incremental: true, decorations });
  });
  searchInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      const find = ev.shiftKey ? search.findPrevious : search.findNext;
      find.call(search, searchInput.value, { decorations });
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      closeSearch();
    }
  });

  // Right click: copy the selection, or paste. Shift+right click keeps the browser's menu.
  const onContextMenu = (ev) => {
    if (ev.shiftKey) return;
    ev.preventDefault();
    if (term.hasSelection()) {
      copyText(term.getSelection()).then(() => term.clearSelection());
    } else {
      pasteFromClipboard();
    }
    term.focus();
  };
  screen.addEventListener("contextmenu", onContextMenu);

  // --- Files: paste an image or drop files -> ~/uploads -> their paths typed ---
  let uploading = false;
  const uploadAll = async (files) => {
    if (uploading) {
      showNotice("Still uploading the previous files; try again when they are done.");
      return;
    }
    const limit = data.upload_max_bytes || 0;
    const problems = [];
    const todo = [];
    for (const f of files) {
      if (limit && f.size > limit) {
        problems.push(`${f.name || "The pasted file"} is ${formatBytes(f.size)}: larger than the `
          + `${formatBytes(limit)} upload limit, so it was not uploaded.`);
      } else {
        todo.push(f);
      }
    }
    uploading = true;
    const paths = [];
    try {
      for (const [i, file] of todo.entries()) {
        const name = file.name || "pasted image";
        const of = todo.length > 1 ? ` (${i + 1} of ${todo.length})` : "";
        showNotice(`Uploading ${name}${of}…`, "info", true);
        try {
          paths.push(await uploadFile(data.base, file, (done) => {
            showNotice(`Uploading ${name}${of}: ${Math.round(done * 100)}% of ${formatBytes(file.size)}`,
              "info", true);
          }));
        } catch (err) {
          problems.push(`${name}: ${err.message || err}`);
        }
      }
    } finally {
      uploading = false;
      const done = paths.length ? `Uploaded to ${paths.length === 1 ? paths[0] : "~/uploads"}.` : "";
      if (problems.length) showNotice([...problems, done].filter(Boolean).join(" "), "error");
      else if (done) showNotice(done);
      if (paths.length) term.paste(paths.map(shellQuote).join(" "));
      term.focus();
    }
  };
  const onPaste = (ev) => {
    const clip = ev.clipboardData;
    if (!clip || !clip.files || !clip.files.length) return; // text: xterm pastes it
    if (clip.types.includes("text/plain") && clip.getData("text/plain")) return;
    ev.preventDefault();
    ev.stopPropagation();
    uploadAll(Array.from(clip.files));
  };
  const hasFiles = (ev) => ev.dataTransfer && Array.from(ev.dataTransfer.types || []).includes("Files");
  const onDragOver = (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
    root.classList.add("coda-terminal--drop");
  };
  const onDragLeave = (ev) => {
    if (!root.contains(ev.relatedTarget)) root.classList.remove("coda-terminal--drop");
  };
  const onDrop = (ev) => {
    root.classList.remove("coda-terminal--drop");
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    ev.stopPropagation();
    uploadAll(Array.from(ev.dataTransfer.files));
  };
  root.addEventListener("paste", onPaste, true);
  root.addEventListener("dragover", onDragOver);
  root.addEventListener("dragleave", onDragLeave);
  root.addEventListener("drop", onDrop);

  // --- Phone key bar --------------------------------------------------------
  if (touch) {
    keyBar.hidden = false;
    root.classList.add("coda-terminal--touch");
    for (const k of KEYS) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = k.label;
      b.dataset.key = k.sticky || k.id;
      b.dataset.testid = `key-${k.id}`;
      b.setAttribute("data-testid", `key-${k.id}`);
      b.setAttribute("aria-label", k.aria || k.label);
      if (k.sticky) b.setAttribute("aria-pressed", "false");
      // Keep the focus (and the phone's keyboard) in the terminal.
      b.addEventListener("pointerdown", (ev) => ev.preventDefault());
      b.addEventListener("mousedown", (ev) => ev.preventDefault());
      b.addEventListener("click", (ev) => {
        ev.preventDefault();
        if (k.sticky) {
          setSticky(k.sticky, !sticky[k.sticky]);
        } else if (k.paste) {
          pasteFromClipboard();
        } else {
          const mod = 1 + (sticky.alt ? 2 : 0) + (sticky.ctrl ? 4 : 0);
          let seq = typeof k.send === "function" ? k.send(term, mod > 1 ? mod : 0) : k.send;
          if (typeof k.send !== "function" && sticky.alt) seq = `\x1b${seq}`;
          setSticky("ctrl", false);
          setSticky("alt", false);
          queueInput(encoder.encode(seq));
        }
        term.focus();
      });
      keyBar.appendChild(b);
    }
  }

  // Typing should go to the terminal without an extra click.
  const onClick = (ev) => {
    if (!searchBox.contains(ev.target) && !keyBar.contains(ev.target)) term.focus();
  };
  root.addEventListener("click", onClick);
  term.focus();

  // Test and benchmark hooks: drop the connection (as a network would), or start over.
  viewerStats.drop = (full = false, all = false) => {
    if (full) outOffset = null;
    viewerStats.replayAll = all;
    if (ws) ws.close(4000, "dropped by the page");
  };
  viewerStats.state = () => ({ outOffset, outboxBytes, sentUpTo, replaying, legacy, finished });

  connect();

  return () => {
    finished = true;
    attention.dispose();
    clearTimeout(retryTimer);
    clearTimeout(resizeTimer);
    clearTimeout(noticeTimer);
    clearTimeout(copyTimer);
    observer.disconnect();
    window.removeEventListener("resize", onWindowResize);
    root.removeEventListener("click", onClick);
    root.removeEventListener("paste", onPaste, true);
    root.removeEventListener("dragover", onDragOver);
    root.removeEventListener("dragleave", onDragLeave);
    root.removeEventListener("drop", onDrop);
    screen.removeEventListener("contextmenu", onContextMenu);
    const sock = ws;
    ws = null; // makes the coming close event a no-op
    if (sock) {
      clearInterval(sock.__pinger);
      sock.close(1000, "unmounted");
    }
    term.dispose();
    if (window.__codaTerm === term) delete window.__codaTerm;
    if (window.__codaTermViewer === viewerStats) delete window.__codaTermViewer;
  };
}

export default function mount(api) {
  const { data, parentElement } = api;
  const root = parentElement.querySelector(".coda-terminal");
  let unmounted = false;
  let cleanup = null;
  loadVendor(data.vendor)
    .then((x) => {
      if (!unmounted) cleanup = start(x, root, data, api);
    })
    .catch((err) => {
      const status = root.querySelector(".coda-terminal__status");
      status.textContent = `Terminal failed to load: ${err}`;
      status.hidden = false;
    });
  return () => {
    unmounted = true;
    if (cleanup) cleanup();
  };
}
