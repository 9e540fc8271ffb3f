// Front end of the terminal component (Streamlit Components v2).
//
// Streamlit loads this file as an ES module from a blob: URL, so relative
// imports cannot resolve: xterm.js and its addons are imported dynamically from
// absolute URLs built from data.vendor (the path __init__.py serves them at).
// Terminal bytes never go through Streamlit: this module opens its own
// WebSocket to {data.base}/terminal/ws/{session_id}, where data.base is
// server.baseUrlPath ("" or "/coda").
//
// Closing and reconnecting (the server's side is lib/terminal/protocol.py):
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

const SEARCH_DECORATIONS = {
  matchBackground: "#6b5d00", matchOverviewRuler: "#d4b000",
  activeMatchBackground: "#d46f00", activeMatchColorOverviewRuler: "#ff8800",
};

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
      ClipboardAddon: clip.ClipboardAddon, WebglAddon: webgl.WebglAddon,
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

function start(x, root, data) {
  const screen = root.querySelector(".coda-terminal__screen");
  const status = root.querySelector(".coda-terminal__status");
  const searchBox = root.querySelector(".coda-terminal__search");
  const searchInput = searchBox.querySelector("input");

  const theme = pickTheme(data.theme, root);
  root.dataset.theme = theme.name;
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
    scrollback: 10000,
    theme: theme.colors,
  });
  const fit = new x.FitAddon();
  const search = new x.SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(new x.WebLinksAddon());
  term.loadAddon(new x.ClipboardAddon());
  term.loadAddon(new x.Unicode11Addon());
  term.unicode.activeVersion = "11";
  term.open(screen);
  try {
    // GPU rendering is optional: without WebGL (or once the context is lost)
    // xterm keeps using its built-in DOM renderer.
    const webgl = new x.WebglAddon();
    webgl.onContextLoss(() => webgl.dispose());
    term.loadAddon(webgl);
  } catch (err) {
    console.debug("terminal: WebGL renderer unavailable, using DOM renderer", err);
  }
  window.__codaTerm = term;

  const setStatus = (text, final = false) => {
    status.textContent = text || "";
    status.hidden = !text;
    status.classList.toggle("coda-terminal__status--final", final);
  };
  const writeLine = (text, sgr) => {
    // Strip control characters so a server message cannot drive the terminal.
    const clean = String(text).replace(/[\x00-\x1f\x7f]/g, " ");
    term.write(`\r\n\x1b[${sgr}m${clean}\x1b[0m\r\n`);
  };

  // --- WebSocket with reconnect -------------------------------------------
  let ws = null;
  let retryMs = RETRY_FIRST_MS;
  let retryTimer = null;
  let finished = false; // process exited or access refused: never reconnect
  let lastSize = "";

  const send = (payload) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(payload);
  };
  const sendResize = () => {
    const size = `${term.cols}x${term.rows}`;
    if (size === lastSize) return;
    lastSize = size;
    send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
  };
  const fitAndResize = () => {
    try { fit.fit(); } catch { /* container not laid out yet */ }
    sendResize();
  };

  const onControl = (msg) => {
    if (msg.type === "exit") {
      finished = true;
      setStatus("");
      writeLine(`[process exited with code ${msg.code}]`, "2");
    } else if (msg.type === "error") {
      writeLine(msg.message, "31");
    }
  };

  // After a close (or a refused handshake): stop for good or reconnect.
  const closed = (code, reason) => {
    const known = data.close_codes[String(code)];
    if (known && !known.retry) {
      finished = true;
      setStatus(`${known.meaning} (${code})`, true);
      writeLine(reason && reason !== known.meaning ? `${known.meaning}: ${reason}` : known.meaning, "31");
      return;
    }
    setStatus(known ? `${known.meaning} (${code}), reconnecting…` : "Reconnecting…");
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  };

  const connect = () => {
    retryTimer = null;
    const sock = new WebSocket(wsUrl(data.base, data.session_id));
    sock.binaryType = "arraybuffer";
    ws = sock;
    let opened = false;
    sock.onopen = () => {
      opened = true;
      retryMs = RETRY_FIRST_MS;
      setStatus("");
      // The server replays the whole scrollback on every connect: start from
      // a blank screen so a reconnect does not show the history twice.
      term.reset();
      lastSize = "";
      fitAndResize();
    };
    sock.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        try { onControl(JSON.parse(ev.data)); } catch { /* ignore malformed control */ }
      } else {
        term.write(new Uint8Array(ev.data)); // xterm decodes UTF-8 across chunks
      }
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return; // torn down or superseded
      ws = null;
      if (finished) return;
      if (opened) {
        closed(ev.code, ev.reason);
        return;
      }
      probeRefusal(data.base, data.session_id).then((why) => {
        if (!finished) closed(why ? HTTP_CLOSE_BASE + why.status : ev.code, why ? why.reason : "");
      });
    };
  };

  const encoder = new TextEncoder();
  term.onData((text) => send(encoder.encode(text)));
  // onBinary carries raw bytes as one char per byte (e.g. X10 mouse reports):
  // UTF-8 encoding them would corrupt values >= 0x80.
  term.onBinary((bin) => send(Uint8Array.from(bin, (c) => c.charCodeAt(0) & 0xff)));

  // --- Size -----------------------------------------------------------------
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

  // --- Search (Ctrl+Shift+F) -----------------------------------------------
  const closeSearch = () => {
    searchBox.hidden = true;
    search.clearDecorations();
    term.focus();
  };
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.ctrlKey && ev.shiftKey && ev.code === "KeyF") {
      if (ev.type === "keydown") {
        ev.preventDefault();
        searchBox.hidden = false;
        searchInput.select();
        searchInput.focus();
      }
      return false; // keep the shortcut away from the shell
    }
    return true;
  });
  searchInput.addEventListener("input", () => {
    search.findNext(searchInput.value, { incremental: true, decorations: SEARCH_DECORATIONS });
  });
  searchInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      const find = ev.shiftKey ? search.findPrevious : search.findNext;
      find.call(search, searchInput.value, { decorations: SEARCH_DECORATIONS });
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      closeSearch();
    }
  });

  // Typing should go to the terminal without an extra click.
  const onClick = (ev) => {
    if (!searchBox.contains(ev.target)) term.focus();
  };
  root.addEventListener("click", onClick);
  term.focus();

  connect();

  return () => {
    finished = true;
    clearTimeout(retryTimer);
    clearTimeout(resizeTimer);
    observer.disconnect();
    window.removeEventListener("resize", onWindowResize);
    root.removeEventListener("click", onClick);
    const sock = ws;
    ws = null; // makes the coming close event a no-op
    if (sock) sock.close(1000, "unmounted");
    term.dispose();
    if (window.__codaTerm === term) delete window.__codaTerm;
  };
}

export default function mount({ data, parentElement }) {
  const root = parentElement.querySelector(".coda-terminal");
  let unmounted = false;
  let cleanup = null;
  loadVendor(data.vendor)
    .then((x) => {
      if (!unmounted) cleanup = start(x, root, data);
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
