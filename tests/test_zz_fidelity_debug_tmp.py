import time
from tests.test_base_path import based_app, BASE  # noqa
from tests.browser import browser, terminal_text, wait_for_terminal_text


def test_dbg(based_app):  # noqa
    status, created = based_app.request("POST", f"{BASE}/api/sessions", {"agent": "bash"})
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        logs = []
        page.on("console", lambda m: logs.append(m.text))
        page.on("websocket", lambda ws: logs.append("WS " + ws.url))
        page.goto(f"{based_app.url}{BASE}/?session={created['id']}")
        page.wait_for_function("() => !!window.__codaTerm", timeout=30000)
        page.wait_for_selector("[data-testid=terminal-status]", state="hidden", timeout=15000)
        try:
            wait_for_terminal_text(page, "projects", 8000)
        except Exception:
            print("FAIL", repr(terminal_text(page)[:100]))
            print(page.evaluate("() => window.__codaTermViewer && [window.__codaTermViewer.state(), window.__codaTermViewer.timings, window.__codaTermViewer.replays, window.__codaTermViewer.resumes]"))
            print(page.evaluate("() => [...document.querySelectorAll('*')].map(e=>e.shadowRoot).filter(Boolean).map(r=>{const s=r.querySelector('.coda-terminal__screen'); return s && [s.style.display, s.style.visibility, r.querySelector('[data-testid=terminal-status]').textContent, r.querySelector('.coda-terminal').dataset.state]})"))
            print([l for l in logs if "GL" not in l][-15:])
            print(based_app.log()[-2000:])
            raise
