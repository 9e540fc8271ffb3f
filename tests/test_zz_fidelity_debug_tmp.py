import random
from tests.browser import browser


def test_dbg_switch(clean_app):
    ids = [clean_app.request("POST", "/api/sessions", {"agent": "bash", "label": f"work-{i}"})[1]["id"] for i in range(2)]
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{clean_app.url}/?session={ids[0]}")
        page.wait_for_function("() => !!window.__codaTerm", timeout=20000)
        page.get_by_text("work-1", exact=True).click()
        page.wait_for_url(f"**session={ids[1]}**", timeout=10000)
        # let the rerun finish: the previous session's controls go away
        page.wait_for_function(
            "() => document.querySelectorAll('input[aria-label=\"Label\"]').length <= 1"
            " && !document.querySelector('input[aria-label=\"Label\"][value=\"work-0\"]')",
            timeout=15000,
        )
        page.get_by_role("button", name="Rename").click()
        name = f"renamed-{random.randint(1000, 9999)}"
        # a stale copy of the previous session's popover may linger during the rerun
        page.locator('input[aria-label="Label"][value="work-1"]').fill(name)
        page.get_by_role("button", name="Save name").click()
        try:
            page.wait_for_function(f"() => document.body.innerText.includes('{name}')", timeout=10000)
        except Exception:
            print("URL", page.url)
            print("BODY", page.evaluate("() => document.body.innerText")[:1500])
            print("LOG", clean_app.log()[-1500:])
            page.screenshot(path="/tmp/fidelity/rename-fail.png")
            raise
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Close", exact=True).click()
        page.get_by_role("button", name="Close session").click()
        page.wait_for_function(
            f"() => !document.body.innerText.includes('{name}')", timeout=10000
        )
        _, listed = clean_app.request("GET", "/api/sessions")
        assert [s["id"] for s in listed] == [ids[0]]
