// Coda's attention plugin for OpenCode (the app writes it to ~/.config/opencode/plugin/ at start).
//
// Follows every OpenCode session of this process (subagents included) and
// tells the app one summary when it changes: "start", "working",
// "needs_input" (a permission or a question waits), "done", "error". It posts
// to $CODA_APP_URL/_coda/local/attention with this terminal's
// $CODA_SESSION_KEY; outside a Coda terminal it does nothing. Never in
// OpenCode's way: fire and forget, 800 ms at most, errors ignored.

const APP = process.env.CODA_APP_URL || "";
const KEY = process.env.CODA_SESSION_KEY || "";

export const CodaAttention = async () => {
  if (!APP.startsWith("http://") || !KEY) return {};
  const target = `${APP.replace(/\/+$/, "")}/_coda/local/attention?agent=opencode`;
  const busy = new Set(); // OpenCode sessions at work
  const waiting = new Map(); // permission or question id -> what it asks
  let worked = false;
  let shown = "";

  const send = (event, detail) => {
    try {
      fetch(`${target}&event=${event}&t=${Date.now() / 1000}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-coda-session-key": KEY },
        body: JSON.stringify({ detail }),
        signal: AbortSignal.timeout(800),
      }).catch(() => {});
    } catch {
      // never let a report disturb OpenCode
    }
  };

  const update = (event, detail = "") => {
    if (!event) {
      if (waiting.size) [event, detail] = ["needs_input", [...waiting.values()].at(-1)];
      else if (busy.size) event = "working";
      else event = worked ? "done" : "start";
    }
    const now = `${event}\n${detail}`;
    if (now === shown) return;
    shown = now;
    send(event, detail);
  };

  update();
  return {
    event: async ({ event }) => {
      const p = (event && event.properties) || {};
      switch (event && event.type) {
        case "session.status":
          if (p.status && p.status.type === "idle") busy.delete(p.sessionID);
          else {
            busy.add(p.sessionID);
            worked = true;
          }
          break;
        case "session.idle":
          busy.delete(p.sessionID);
          break;
        case "permission.asked": {
          const what = Array.isArray(p.patterns) && p.patterns.length ? `: ${p.patterns.join(", ")}` : "";
          waiting.set(p.id, `permission: ${p.permission || "tool"}${what}`);
          break;
        }
        case "question.asked":
          waiting.set(p.id, "question");
          break;
        case "permission.replied":
        case "question.replied":
        case "question.rejected":
          waiting.delete(p.requestID);
          break;
        case "session.error": {
          busy.delete(p.sessionID);
          const error = p.error || {};
          if (error.name === "MessageAbortedError") break; // the user pressed Esc
          const message = (error.data && error.data.message) || error.name || "error";
          update("error", String(message).slice(0, 200));
          return;
        }
        default:
          return;
      }
      update();
    },
  };
};
