"""Terminal core against the real server: PTYs, WebSocket, routes."""

from __future__ import annotations

import codecs
import re
import time
from pathlib import Path

import pytest

from lib.terminal import procs
from tests.termclient import TermClient


def new_session(app, agent="bash", **kw) -> dict:
    status, body = app.request("POST", "/api/sessions", {"agent": agent, **kw})
    assert status == 201, body
    return body


def shell(app) -> tuple[dict, TermClient]:
    s = new_session(app)
    t = TermClient(app.ws_url, s["id"])
    t.send("PS1='$ '; stty -echoctl\r")
    t.read_until(r"\$ ")
    return s, t


def test_echo_round_trip(clean_app):
    _, t = shell(clean_app)
    t.send("echo hel''lo-$((6*7))\r")
    t.read_until(r"hello-42")
    t.close()


def test_ctrl_c_interrupts_foreground_program(clean_app):
    _, t = shell(clean_app)
    t.send("sleep 30; echo after-sleep-$?\r")
    time.sleep(0.5)
    start = time.monotonic()
    t.send(b"\x03")
    t.send("echo interrupted-ok\r")
    t.read_until(r"interrupted-ok\r?\n", timeout=5)
    assert time.monotonic() - start < 3
    assert b"after-sleep-0" not in t.output


def test_job_control_works(clean_app):
    _, t = shell(clean_app)
    t.send("sleep 30 &\r")
    t.send("jobs; echo jobs-done\r")
    t.read_until(r"Running\s+sleep 30")


def test_resize_is_visible_in_stty(clean_app):
    _, t = shell(clean_app)
    t.resize(91, 37)
    time.sleep(0.2)
    t.send("stty size\r")
    t.read_until(r"37 91")


@pytest.mark.parametrize(
    "bad",
    [
        '{"type":"resize","cols":0,"rows":10}',
        '{"type":"resize","cols":"80","rows":10}',
        '{"type":"resize","cols":100000,"rows":10}',
        '{"type":"resize","cols":80}',
        "not json",
        '{"type":"explode"}',
        "[1,2]",
    ],
)
def test_bad_control_gets_error_and_session_keeps_working(clean_app, bad):
    _, t = shell(clean_app)
    t.ws.send(bad)
    err = t.wait_control("error")
    assert err["message"]
    t.send("echo still-alive\r")
    t.read_until(r"still-alive\r?\n")


def test_two_clients_both_see_output(clean_app):
    s, a = shell(clean_app)
    b = TermClient(clean_app.ws_url, s["id"])
    a.send("echo from-a-$((1+1))\r")
    a.read_until(r"from-a-2")
    b.read_until(r"from-a-2")


def test_replay_after_reconnect_has_earlier_output_once(clean_app):
    s, t = shell(clean_app)
    t.send("echo marker-$((40+2))\r")
    t.read_until(r"marker-42")
    t.close()
    again = TermClient(clean_app.ws_url, s["id"])
    again.send("echo after-$((1+2))\r")
    out = again.read_until(r"after-3\r?\n")
    assert out.count(b"marker-42") == 1, out
    assert out.index(b"marker-42") < out.index(b"after-3")


def test_live_output_during_reconnect_is_neither_lost_nor_doubled(clean_app):
    s, t = shell(clean_app)
    t.send("for i in $(seq 1 400); do echo line-$i; sleep 0.002; done; echo count-$((2+3))\r")
    t.read_until(r"line-50\r\n")
    t.close()
    again = TermClient(clean_app.ws_url, s["id"])
    out = again.read_until(r"count-5\r?\n", timeout=20)
    lines = re.findall(rb"line-(\d+)\r\n", out)
    assert [int(x) for x in lines] == list(range(1, 401))


@pytest.mark.parametrize("char", ["é", "中"])
def test_multibyte_output_is_never_split(clean_app, char):
    _, t = shell(clean_app)
    t.send(f"python3 -c \"print('{char}' * 200000); print('mb-' + 'done')\"\r")
    out = t.read_until(r"mb-done\r?\n", timeout=30)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(out, final=True)
    assert "\ufffd" not in text
    assert text.count(char) >= 200000


def test_big_paste_arrives_whole_and_in_order(clean_app):
    _, t = shell(clean_app)
    t.send("stty -echo; cat > /tmp/paste-$$.txt; echo\r")
    time.sleep(0.3)
    payload = b"".join(b"%07d abcdefghijklmnopqrstuvwxyz0123456789\n" % i for i in range(23000))  # ~1 MB
    assert len(payload) > 1_000_000
    t.send(payload)
    t.send(b"\x04")  # EOF ends cat
    t.send("stty echo; wc -c < /tmp/paste-$$.txt; md5sum < /tmp/paste-$$.txt; rm /tmp/paste-$$.txt\r")
    import hashlib

    t.read_until(hashlib.md5(payload).hexdigest(), timeout=30)
    assert str(len(payload)).encode() in t.output


def test_server_stays_responsive_during_big_paste(clean_app):
    _, t = shell(clean_app)
    t.send("sleep 3\r")  # nobody reads the paste for a while
    t.send(b"x" * 2_000_000)
    start = time.monotonic()
    status, _ = clean_app.request("GET", "/health")
    assert status == 200 and time.monotonic() - start < 1.0


def test_exit_code_is_reported(clean_app):
    s, t = shell(clean_app)
    t.send("exit 7\r")
    assert t.wait_control("exit")["code"] == 7
    _, listed = clean_app.request("GET", "/api/sessions")
    entry = next(x for x in listed if x["id"] == s["id"])
    assert entry["status"] == "exited" and entry["exit_code"] == 7
    assert not procs.session_members(s["pid"])
    # a later viewer still gets the output and the exit code
    late = TermClient(clean_app.ws_url, s["id"])
    assert late.wait_control("exit")["code"] == 7


def test_close_ends_whole_process_group(clean_app):
    s, t = shell(clean_app)
    t.send("sleep 1000 & sleep 1001 | cat & echo bg-started\r")
    t.read_until(r"bg-started\r?\n")
    time.sleep(0.3)
    members = procs.session_members(s["pid"])
    names = {procs.command_name(p) for p in members}
    assert "sleep" in names and len(members) >= 4, names
    status, _ = clean_app.request("DELETE", f"/api/sessions/{s['id']}")
    assert status == 204
    assert procs.session_members(s["pid"]) == []
    for pid in members:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie_of_other(pid)
    assert t.wait_closed() in (1000, 4410)


def _is_zombie_of_other(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
    except OSError:
        return True


def test_unknown_ids(clean_app):
    assert clean_app.request("DELETE", "/api/sessions/0123456789ab")[0] == 404
    assert clean_app.request("DELETE", "/api/sessions/..%2F..")[0] in (400, 404)
    assert clean_app.request("DELETE", "/api/sessions/nope")[0] == 404
    t = TermClient(clean_app.ws_url, "0123456789ab")
    assert t.wait_closed() == 4404


def test_bad_create_requests(clean_app):
    assert clean_app.request("POST", "/api/sessions", {"agent": "rm -rf"})[0] == 400
    status, body = clean_app.request("POST", "/api/sessions", {"agent": "bash", "cwd": "/does/not/exist"})
    assert status == 400 and "does not exist" in body["error"]
    assert clean_app.request("POST", "/api/sessions", {"agent": "bash", "cwd": 5})[0] == 400
    assert clean_app.request("POST", "/api/sessions", ["bash"])[0] == 400


def test_session_cap_answers_429(clean_app):
    for _ in range(5):
        new_session(clean_app)
    status, body = clean_app.request("POST", "/api/sessions", {"agent": "bash"})
    assert status == 429
    assert "close a session" in body["error"]


def test_cross_site_origin_is_refused(clean_app):
    s = new_session(clean_app)
    with pytest.raises(Exception) as err:
        TermClient(clean_app.ws_url, s["id"], origin="http://evil.example")
    assert "403" in str(err.value)
    status, _ = clean_app.request("POST", "/api/sessions", {"agent": "bash"}, headers={"Origin": "http://evil.example"})
    assert status == 403
    ok = TermClient(clean_app.ws_url, s["id"], origin=clean_app.url)
    ok.send("echo same-origin-ok\r")
    ok.read_until("same-origin-ok")


def test_session_environment_is_clean(clean_app):
    _, t = shell(clean_app)
    t.send("env | grep -c ^DATABRICKS_; echo TERM=$TERM COLORTERM=$COLORTERM; echo P''ATH=$PATH\r")
    out = t.read_until(r"PATH=/\S+\r\n")
    assert b"TERM=xterm-256color COLORTERM=truecolor" in out
    assert re.search(rb"PATH=" + re.escape(str(clean_app.home).encode()) + rb"/\.local/bin:", out)


def test_rename(clean_app):
    s = new_session(clean_app)
    status, body = clean_app.request("PATCH", f"/api/sessions/{s['id']}", {"label": "my\x1b[31m work"})
    assert status == 200 and body["label"] == "my[31m work"


def test_streamlit_clear_cache_keeps_sessions(clean_app):
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from websockets.sync.client import connect

    s, t = shell(clean_app)
    with connect(f"{clean_app.ws_url}/_stcore/stream", subprotocols=["streamlit"], open_timeout=10) as st_ws:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        rerun.rerun_script.page_script_hash = ""
        st_ws.send(rerun.SerializeToString())
        st_ws.recv(timeout=10)  # the page ran (and touched st.cache_resource)
        msg = BackMsg()
        msg.clear_cache = True
        st_ws.send(msg.SerializeToString())
        time.sleep(1)
    _, listed = clean_app.request("GET", "/api/sessions")
    assert [x["id"] for x in listed] == [s["id"]] and listed[0]["status"] == "running"
    t.send("echo survived-$((3*3))\r")
    t.read_until(r"survived-9")
    assert "Traceback" not in clean_app.log()
