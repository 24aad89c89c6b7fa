#!/usr/bin/env python3
"""The playground, checked in a real headless Chromium.

Serves the built page (scripts/playground --build) on 127.0.0.1 at a free
port, opens it in headless Chromium driven over the Chrome DevTools Protocol
(on a pipe: --remote-debugging-pipe, so nothing but the standard library is
needed), works its controls as a reader would and reads the DOM:

- naive retries, the trigger pulled and cleared: the METASTABLE badge shows,
  and not before the trigger cleared;
- the Throttle on the same script: the badge never shows;
- charge without a key: double charges; with a key: none;
- every table preset's scripted run, exported from the page, equals the
  native simulator's offered load bucket for bucket (the JSON of
  `brownout --series`, given as an argument), and its row equals the
  table's numbers;
- runs no preset makes — a custom combination on seed 7 with the trigger
  pulled and cleared by hand and settings changed mid-run, and a custom
  replay of the table's run changed mid-run — equal, bucket for bucket and
  counter for counter (and row for row), what the brownout binary prints
  when given the native command the page shows (`./scripts/run --seed 7
  --settings '{...}'`, whose arguments scripts/run hands to the binary as
  they are); the same command with one thing changed (the trigger cleared
  1 ms later, 3 retries instead of 4 after the change, no breaker at the
  start, seed 8) gives other numbers, so the comparison can fail;
- the page opened from disk (file://) runs too.

Time is the simulator's virtual clock, moved by the page's
`playground.runTo(ms)` hook: nothing here depends on wall-clock speed. A
screenshot is kept in the output folder.

Usage: browser_check.py SITE_DIR NATIVE_SERIES_JSON SEED OUT_DIR BROWNOUT_BINARY
"""

import base64
import fcntl
import functools
import http.server
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
]
# Generous bounds on waiting for the browser; the checks never measure time.
TIMEOUT_S = 60


class Failure(Exception):
    pass


class Browser:
    """Chromium with a DevTools Protocol session on fds 3 (in) and 4 (out)."""

    def __init__(self, chromium, log_path):
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        # Far from 3 and 4, so the child's dup2 cannot clobber them.
        cmd_r_high = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        res_w_high = fcntl.fcntl(res_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_r)
        os.close(res_w)

        def child():
            os.dup2(cmd_r_high, 3)
            os.dup2(res_w_high, 4)

        self.profile = tempfile.mkdtemp(prefix="stormguard-chromium-")
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            pass_fds=(3, 4),
            preexec_fn=child,
        )
        os.close(cmd_r_high)
        os.close(res_w_high)
        self.out = os.fdopen(cmd_w, "wb")
        self.inp = os.fdopen(res_r, "rb")
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _read_message(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.inp.fileno(), 1 << 20)
            if not chunk:
                raise Failure("Chromium closed the DevTools pipe (see chromium.log)")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self.out.write(json.dumps(message).encode() + b"\0")
        self.out.flush()
        while True:
            reply = self._read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Failure(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method):
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            for i, event in enumerate(self.events):
                if event["method"] == method:
                    return self.events.pop(i)
            event = self._read_message()
            if "method" in event:
                self.events.append(event)
        raise Failure(f"no {method} within {TIMEOUT_S} s")

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=False
        )
        self.session = attached["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )

    def navigate(self, url):
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        result = self.send("Page.navigate", {"url": url})
        if "errorText" in result:
            raise Failure(f"cannot open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired")
        self.eval("playground.ready.then(() => true)")

    def eval(self, expression):
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise Failure(f"the page threw on {expression!r}: {text}")
        return result["result"].get("value")

    def exceptions(self):
        return [e for e in self.events if e["method"] == "Runtime.exceptionThrown"]

    def screenshot(self, path):
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Failure:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def serve(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=site)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# What the page shows, read from its DOM.
READ_DOM = """({
  now: document.getElementById('clock').textContent,
  load: Number(document.getElementById('load').textContent),
  badge: !document.getElementById('badge').hidden
      && document.getElementById('badge').textContent.trim(),
  doubleCharges: Number(document.getElementById('double-charges').textContent),
  charges: Number(document.getElementById('charges').textContent),
  replayed: Number(document.getElementById('replayed').textContent),
  refused: Number(document.getElementById('refused').textContent),
  successes: Number(document.getElementById('successes').textContent),
  tokens: document.getElementById('tokens').textContent,
  trigger: document.getElementById('trigger-state').textContent,
})"""


def set_control(browser, element_id, value):
    """Sets a control as a reader would, and lets the page hear of it."""
    value = json.dumps(value)
    browser.eval(
        f"""(() => {{
      const e = document.getElementById('{element_id}');
      if (e.type === 'checkbox') e.checked = {value}; else e.value = {value};
      e.dispatchEvent(new Event(e.type === 'range' ? 'input' : 'change'));
    }})()"""
    )


def click(browser, element_id):
    browser.eval(f"document.getElementById('{element_id}').click()")


def run_to(browser, ms):
    browser.eval(f"playground.runTo({ms})")
    return browser.eval(READ_DOM)


def restart(browser, preset=None, seed=1, **controls):
    """Pauses, sets the controls, restarts at virtual time zero."""
    browser.eval("playground.pause()")
    if preset is not None:
        set_control(browser, "preset", str(preset))
    for element_id, value in controls.items():
        set_control(browser, element_id.replace("_", "-"), value)
    set_control(browser, "seed", str(seed))
    click(browser, "restart")
    browser.eval("playground.pause()")


def storm(browser, until_ms=14_000, on_ms=1_000, off_ms=6_000):
    """The trigger pulled at on_ms and cleared at off_ms (by its button);
    the DOM read every 100 ms of virtual time."""
    seen = []
    for t in range(0, until_ms + 1, 100):
        dom = run_to(browser, t)
        if t in (on_ms, off_ms):
            click(browser, "trigger")
            dom = browser.eval(READ_DOM)
        seen.append((t, dom))
    return seen


def check(condition, message):
    if not condition:
        raise Failure(message)
    print(f"  ok: {message}")


def check_metastable(browser):
    restart(browser, preset=1)  # naive: 3 immediate retries
    seen = storm(browser)
    off = 6_000
    before = [t for t, dom in seen if dom["badge"] and t <= off]
    check(not before, "naive retries: no METASTABLE badge before the trigger clears")
    last = seen[-1][1]
    check(
        last["badge"] == "METASTABLE",
        f"naive retries, trigger on 1–6 s: METASTABLE at 14 s (load {last['load']}×)",
    )
    check(last["load"] > 2.0, f"the storm outlives its trigger: {last['load']}× capacity")
    peak = max(dom["load"] for _, dom in seen)
    check(peak > 3.0, f"the meter climbed past 3× ({peak}×)")


def check_throttle(browser):
    restart(browser, preset=4)  # full jitter + Throttle(10, 0.1)
    seen = storm(browser)
    badges = [t for t, dom in seen if dom["badge"]]
    check(not badges, "full jitter + Throttle: the badge never shows")
    last = seen[-1][1]
    check(last["load"] < 1.0, f"the Throttle's load after the trigger: {last['load']}×")
    lowest = min(float(dom["tokens"].split("/")[0]) for _, dom in seen)
    check(lowest <= 5.0, f"the token bucket drained to half or below ({lowest} of 10)")
    # The storm breaks when the Throttle comes on mid-storm.
    restart(browser, preset=1)
    storm(browser, until_ms=9_000)
    check(browser.eval(READ_DOM)["badge"] == "METASTABLE", "naive: METASTABLE at 9 s")
    set_control(browser, "budget", "1")
    dom = run_to(browser, 14_000)
    check(not dom["badge"], f"a Throttle switched on at 9 s ends it by 14 s ({dom['load']}×)")


def check_charges(browser):
    restart(browser, preset=1, method="1")  # charge, no key (not declared)
    dom = storm(browser, until_ms=9_000)[-1][1]
    check(dom["doubleCharges"] > 0, f"charge without a key: {dom['doubleCharges']} double charges")
    restart(browser, preset=1, method="3")  # charge with an Idempotency-Key
    dom = storm(browser, until_ms=9_000)[-1][1]
    check(
        dom["doubleCharges"] == 0 and dom["replayed"] > 0,
        f"charge with a key: no double charge ({dom['replayed']} repeats answered from the table)",
    )
    restart(browser, preset=1, method="2")  # declared NonIdempotent
    dom = storm(browser, until_ms=9_000)[-1][1]
    check(
        dom["doubleCharges"] == 0 and dom["refused"] > 0,
        f"charge declared non-idempotent: no double charge ({dom['refused']} replays refused)",
    )


def check_against_native(browser, native, seed):
    scenarios = native["scenarios"]
    check(len(scenarios) == 8, "the native run has the table's eight scenarios")
    for preset, expected in enumerate(scenarios):
        restart(browser, preset=preset, seed=seed)
        click(browser, "scripted")
        browser.eval("playground.runTo(31000)")
        exported = browser.eval("playground.exportSeries()")
        page = exported["offered_load"]
        want = expected["offered_load"]
        if page != want:
            first = next((i for i, (a, b) in enumerate(zip(page, want)) if a != b), None)
            raise Failure(
                f"{expected['name']}: the page's offered load differs from the native run "
                f"({len(page)} vs {len(want)} buckets; first difference at bucket {first})"
            )
        summary = exported.get("summary") or {}
        for key in (
            "peak_offered_load",
            "offered_load_after_trigger",
            "recovered_after_s",
            "goodput",
            "attempts_per_call",
        ):
            if summary.get(key) != expected[key]:
                raise Failure(f"{expected['name']}: {key} {summary.get(key)} != {expected[key]}")
        print(
            f"  ok: {expected['name']}: {len(page)} buckets and the table's row equal the native run's"
        )


def frames_to(browser, ms, frame=16.7):
    """Moves the virtual clock to ms in animation frames of `frame` ms (the
    page's 1× speed), as a reader watching would."""
    browser.eval(
        f"""(() => {{
      let t = playground.exports.sg_now_ms();
      while (t < {ms}) {{ t = Math.min(t + {frame}, {ms}); playground.runTo(t); }}
    }})()"""
    )


def native_run(brownout, command):
    """Runs the page's native command: scripts/run hands its arguments to
    the brownout binary unchanged, so the binary gets them here."""
    argv = shlex.split(command)
    if argv[:1] != ["./scripts/run"] or not os.path.exists(argv[0]):
        raise Failure(f"the page's command does not start with ./scripts/run: {command!r}")
    done = subprocess.run(
        [brownout, *argv[1:]], capture_output=True, text=True, timeout=TIMEOUT_S * 5
    )
    if done.returncode != 0:
        raise Failure(f"brownout refused the page's command ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout)


def same_run(name, page, native):
    """The page's export and brownout --settings: the same buckets, the same
    counters (and row); raises naming the first difference."""
    a, b = page["offered_load"], native["offered_load"]
    if a != b:
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        raise Failure(
            f"{name}: the page's offered load differs from brownout --settings "
            f"({len(a)} vs {len(b)} buckets; first difference at bucket {first})"
        )
    if page["counters"] != native["counters"]:
        raise Failure(f"{name}: counters differ: page {page['counters']}, native {native['counters']}")
    if page.get("summary") != native.get("summary"):
        raise Failure(f"{name}: rows differ: page {page.get('summary')}, native {native.get('summary')}")


def check_custom_against_native(browser, brownout, out):
    # No preset: 3 retries, full jitter, a RetryBudget, a breaker, charge
    # with an Idempotency-Key, seed 7; the trigger by hand; at 2.5 s, mid-
    # storm, the budget and the breaker switched off and a 4th retry allowed
    # (three changes at one virtual instant), so the storm grows.
    restart(browser, seed=7, retries=3, backoff="2", budget="2", breaker=True, adaptive=False, method="3")
    check(browser.eval("document.getElementById('preset').value") == "custom", "custom settings, no preset")
    frames_to(browser, 1000.3)
    click(browser, "trigger")  # pulled at 1000.3 ms
    frames_to(browser, 2500)
    set_control(browser, "budget", "0")
    set_control(browser, "breaker", False)
    set_control(browser, "retries", "4")
    frames_to(browser, 6000.05)
    click(browser, "trigger")  # cleared
    browser.eval("playground.runTo(9000)")
    frames_to(browser, 9050.5)
    page = browser.eval("playground.exportSeries()")
    shown = browser.eval("document.getElementById('native-command').textContent")
    check(shown == page["command"], f"the page shows its native command: {shown[:60]}…")
    changes = page["settings"]["changes"]
    kinds = ["trigger" if "trigger" in c else "clients" for c in changes]
    check(
        kinds == ["trigger", "clients", "clients", "clients", "trigger"]
        and page["preset"] is None
        and page["settings"]["clients"]["budget"] == 2
        and changes[3]["clients"]["retries"] == 4,
        f"the export records the trigger on, three changes and the trigger off ({[c['at_ms'] for c in changes]} ms)",
    )
    native = native_run(brownout, shown)
    with open(os.path.join(out, "custom-page.json"), "w") as f:
        json.dump(page, f)
    with open(os.path.join(out, "custom-native.json"), "w") as f:
        json.dump(native, f)
    same_run("custom free play", page, native)
    counters = page["counters"]
    check(
        counters["replayed"] > 0 and counters["double_charges"] == 0,
        f"custom free play, seed 7: {len(page['offered_load'])} buckets (peak {max(page['offered_load'])}×) "
        f"and {counters['attempts']} attempts equal brownout --settings's "
        f"({counters['replayed']} keyed repeats answered, no double charge)",
    )

    # The comparison can tell: the same command with one thing changed
    # gives other numbers. (Not every change does: the first 2.5 s are
    # guarded by the budget and the breakers, so there a 4th retry is never
    # sent, and a change moved by a millisecond in which nothing arrives
    # changes nothing.)
    def changed(what, edit):
        settings = json.loads(json.dumps(page["settings"]))
        edit(settings)
        return what, f"./scripts/run --seed 7 --settings {shlex.quote(json.dumps(settings))}"

    perturbed = [
        changed("the trigger cleared 1 ms later", lambda s: s["changes"][4].update(at_ms=6001.05)),
        changed("3 retries after 2.5 s", lambda s: s["changes"][3]["clients"].update(retries=3)),
        changed("no breaker at the start", lambda s: s["clients"].update(breaker=0)),
        ("seed 8", shown.replace("--seed 7 ", "--seed 8 ", 1)),
    ]
    for what, command in perturbed:
        try:
            same_run(what, page, native_run(brownout, command))
        except Failure:
            continue
        raise Failure(f"{what} gave the same numbers: the comparison cannot tell")
    check(True, "the comparison tells: " + ", ".join(what for what, _ in perturbed) + " each give other numbers")

    # A replay of the table's run with custom settings, changed at 12 s: the
    # series, the counters and the table's row.
    restart(browser, seed=7, retries=2, backoff="1", budget="1", max_tokens="20", token_ratio="0.25",
            breaker=False, adaptive=True, method="1")
    click(browser, "scripted")
    browser.eval("playground.pause()")
    frames_to(browser, 12_000, frame=33.3)
    set_control(browser, "method", "3")
    browser.eval("playground.runTo(31000)")
    page = browser.eval("playground.exportSeries()")
    check("summary" in page, "the custom replay of the table's run finished with its row")
    native = native_run(brownout, browser.eval("document.getElementById('native-command').textContent"))
    same_run("custom replay of the table's run", page, native)
    check(
        True,
        f"custom replay of the table's run, changed at 12 s: {len(page['offered_load'])} buckets, "
        f"the counters and the row (goodput {page['summary']['goodput']:.3f}) equal brownout --settings's",
    )


def main():
    site, native_path, seed, out, brownout = sys.argv[1:6]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise Failure("no chromium on PATH")
    os.makedirs(out, exist_ok=True)
    with open(native_path) as f:
        native = json.load(f)

    server = serve(site)
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    browser = Browser(chromium, os.path.join(out, "chromium.log"))
    try:
        browser.open_page()
        print(f"served at {url}")
        browser.navigate(url)
        check_metastable(browser)
        check_throttle(browser)
        check_charges(browser)
        check_against_native(browser, native, int(seed))
        check_custom_against_native(browser, brownout, out)
        check(not browser.exceptions(), "no exception on the page")

        # The screenshot: the storm, METASTABLE, billing twice, as a reader
        # sees it.
        restart(browser, preset=1, method="1")
        storm(browser, until_ms=20_000, on_ms=5_000, off_ms=12_000)
        browser.screenshot(os.path.join(out, "playground.png"))
        print(f"  screenshot: {os.path.join(out, 'playground.png')}")

        # Opened from disk, it runs the same simulator.
        browser.navigate("file://" + os.path.abspath(os.path.join(site, "index.html")))
        dom = run_to(browser, 3_000)
        check(dom["successes"] > 700, f"opened from disk: {dom['successes']} calls/s at 3 s")
    finally:
        browser.close()
        server.shutdown()
    print("playground: all browser checks passed")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"playground browser check FAILED: {e}", file=sys.stderr)
        sys.exit(1)
