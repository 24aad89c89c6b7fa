// The playground page: loads the brownout simulator (stormguard-playground,
// built for wasm32-unknown-unknown and embedded as base64 by
// scripts/playground), drives it on its virtual clock a few milliseconds per
// animation frame, and draws what it reads. Every number shown comes from
// the simulator's exports; this file only formats and draws them.
//
// For tests and scripts: window.playground.runTo(ms) pauses the animation
// and runs the simulation to virtual time ms at once (deterministic, no
// wall clock); exportSeries() returns the per-bucket offered load.
//
// The page records what it does to the simulation — the settings it
// started with, each pull or clear of the trigger and each change of the
// settings at its virtual time, how far the clock went — and shows the
// native command that does the same (`./scripts/run --seed N --settings
// '{...}'`, read by brownout's --settings): the same calls at the same
// virtual times give the same run.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const controls = {
    preset: $("preset"), retries: $("retries"), backoff: $("backoff"), budget: $("budget"),
    maxTokens: $("max-tokens"), tokenRatio: $("token-ratio"), breaker: $("breaker"),
    adaptive: $("adaptive"), method: $("method"),
  };
  const HISTORY_BUCKETS = 300; // the chart's 30 s

  let sim = null; // the module's exports
  let playing = true;
  let scripted = false;
  let finished = false;
  let triggers = []; // [on_ms, off_ms or null], as pulled
  let tableEnd = 0;
  let runSeed = 0n; // the seed the run started with
  let startClients = null; // the settings it started with
  let changes = []; // {at_ms, trigger} or {at_ms, clients}, in order

  function bytesOf(base64) {
    const text = atob(base64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  function seed() {
    const text = $("seed").value.trim();
    try {
      return BigInt.asUintN(64, BigInt(/^\d+$/.test(text) ? text : "0"));
    } catch (_) {
      return 0n;
    }
  }

  // Controls -> simulator.
  function applyControls() {
    const result = sim.sg_set_clients(
      Number(controls.retries.value), Number(controls.backoff.value),
      Number(controls.budget.value), Number(controls.maxTokens.value),
      Number(controls.tokenRatio.value), controls.breaker.checked ? 1 : 0,
      controls.adaptive.checked ? 1 : 0, Number(controls.method.value));
    if (result === 0) recordClients();
    const error = $("settings-error");
    error.hidden = result === 0;
    error.textContent = result === 0 ? "" :
      "stormguard refused these settings (a Throttle needs 1–1000 tokens and a ratio in (0, 1]); the previous ones stay.";
    showSettings();
  }

  // The settings as the simulator holds them, in the codes of the controls
  // (and of brownout --settings).
  function clientsNow() {
    return {
      retries: sim.sg_retries(), backoff: sim.sg_backoff(), budget: sim.sg_budget(),
      max_tokens: sim.sg_max_tokens(), token_ratio: sim.sg_token_ratio(),
      breaker: sim.sg_breaker(), adaptive: sim.sg_adaptive(), method: sim.sg_method(),
    };
  }

  // The running simulation took new settings now: record it (a change to
  // the same settings too, since the clients start afresh).
  function recordClients() {
    if (startClients !== null && !finished) changes.push({ at_ms: sim.sg_now_ms(), clients: clientsNow() });
  }

  // Simulator -> controls (after a preset, or a refused change).
  function showSettings() {
    controls.retries.value = sim.sg_retries();
    $("retries-value").textContent = sim.sg_retries();
    controls.backoff.value = sim.sg_backoff();
    controls.budget.value = sim.sg_budget();
    controls.maxTokens.value = sim.sg_max_tokens();
    controls.tokenRatio.value = sim.sg_token_ratio();
    controls.breaker.checked = sim.sg_breaker() === 1;
    controls.adaptive.checked = sim.sg_adaptive() === 1;
    controls.method.value = sim.sg_method();
    $("throttle-settings").style.opacity = sim.sg_budget() === 1 ? 1 : 0.45;
  }

  function start(isScripted) {
    runSeed = seed();
    sim.sg_start(runSeed, isScripted ? 1 : 0);
    scripted = isScripted;
    finished = false;
    startClients = clientsNow();
    changes = [];
    triggers = scripted ? [[sim.sg_table_trigger_start_ms(), sim.sg_table_trigger_end_ms()]] : [];
    $("row").hidden = true;
    $("trigger").disabled = scripted;
    $("mode").textContent = scripted
      ? `the table's run: trigger ${sim.sg_table_trigger_start_ms() / 1000}–${sim.sg_table_trigger_end_ms() / 1000} s, calls for ${tableEnd / 1000} s`
      : "free play: pull the trigger by hand";
    render();
  }

  function setPlaying(on) {
    playing = on && !finished;
    $("pause").textContent = playing ? "Pause" : "Play";
  }

  function toggleTrigger() {
    const now = sim.sg_now_ms();
    if (finished) return;
    if (sim.sg_trigger() === 1) {
      sim.sg_set_trigger(0);
      changes.push({ at_ms: now, trigger: 0 });
      const last = triggers[triggers.length - 1];
      if (last && last[1] === null) last[1] = now;
    } else {
      sim.sg_set_trigger(1);
      changes.push({ at_ms: now, trigger: 1 });
      triggers.push([now, null]);
    }
    render();
  }

  // A scripted run ends at the table's duration: its calls then run to
  // their end, for the table's row.
  function advanceTo(ms) {
    const target = scripted ? Math.min(ms, tableEnd) : ms;
    if (!finished) sim.sg_advance_to(target);
    render();
    if (scripted && !finished && sim.sg_now_ms() >= tableEnd) finish();
  }

  function finish() {
    sim.sg_run_to_end();
    finished = true;
    setPlaying(false);
    const recovered = sim.sg_recovered_after_ms();
    $("row-name").textContent = runName();
    $("row-peak").textContent = sim.sg_peak_load().toFixed(2) + "×";
    $("row-after").textContent = sim.sg_load_after_trigger().toFixed(2) + "×";
    $("row-recovered").textContent = recovered < 0 ? "never" : (recovered / 1000).toFixed(1) + " s";
    $("row-goodput").textContent = (sim.sg_goodput() * 100).toFixed(1) + "%";
    $("row-attempts").textContent = sim.sg_attempts_per_call().toFixed(2);
    $("row").hidden = false;
    $("mode").textContent = "the table's run, finished: compare with ./scripts/run --seed " + runSeed;
  }

  function runName() {
    const preset = controls.preset;
    return preset.value === "custom" ? "custom settings" : preset.options[preset.selectedIndex].text;
  }

  // The run so far, as brownout --settings reads it. A finished replay of
  // the table's run went to its 30 s and then ran its calls to their end.
  function settings() {
    return {
      scripted,
      clients: startClients,
      changes,
      until_ms: scripted && finished ? tableEnd : sim.sg_now_ms(),
    };
  }

  // The native command that runs the same: scripts/run hands its arguments
  // to the brownout binary as they are.
  function nativeCommand() {
    const json = JSON.stringify(settings()).replace(/'/g, "'\\''");
    return `./scripts/run --seed ${runSeed} --settings '${json}'`;
  }

  function exportSeries() {
    const offered = [];
    const buckets = sim.sg_buckets();
    for (let i = 0; i < buckets; i++) offered.push(sim.sg_offered_at(i));
    const out = {
      run: runName(),
      preset: controls.preset.value === "custom" ? null : Number(controls.preset.value),
      seed: runSeed.toString(),
      settings: settings(),
      command: nativeCommand(),
      bucket_ms: sim.sg_bucket_ms(),
      offered_load: offered,
      counters: {
        calls_started: sim.sg_calls_started(), calls_succeeded: sim.sg_calls_succeeded(),
        attempts: sim.sg_attempts(), charges: sim.sg_charges(),
        double_charges: sim.sg_double_charges(), replayed: sim.sg_replayed(),
        unsafe_replays_refused: sim.sg_unsafe_refused(),
      },
    };
    if (finished) {
      const recovered = sim.sg_recovered_after_ms();
      out.summary = {
        peak_offered_load: sim.sg_peak_load(),
        offered_load_after_trigger: sim.sg_load_after_trigger(),
        recovered_after_s: recovered < 0 ? null : recovered / 1000,
        goodput: sim.sg_goodput(),
        attempts_per_call: sim.sg_attempts_per_call(),
      };
    }
    return out;
  }

  function download() {
    const blob = new Blob([JSON.stringify(exportSeries(), null, 1)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `stormguard-playground-seed-${runSeed}.json`;
    link.click();
    URL.revokeObjectURL(link.href);
  }

  // Simulator -> page.
  function render() {
    const now = sim.sg_now_ms();
    const load = sim.sg_load();
    $("clock").textContent = (now / 1000).toFixed(1) + " s";
    $("load").textContent = load.toFixed(2);
    $("badge").hidden = sim.sg_metastable() !== 1;
    const fill = $("load-fill");
    fill.style.width = Math.min(load / 5, 1) * 100 + "%";
    fill.classList.toggle("over", load > 1);
    const on = sim.sg_trigger() === 1;
    $("trigger-state").textContent = on ? "ON" : "off";
    const button = $("trigger");
    button.textContent = on ? "Clear the trigger" : "Pull the trigger";
    button.classList.toggle("on", on);

    const tokens = sim.sg_throttle_fill();
    const budget = sim.sg_retry_budget();
    const bucket = $("bucket-fill");
    if (tokens >= 0) {
      bucket.style.width = tokens * 100 + "%";
      bucket.classList.toggle("low", tokens <= 0.5);
      $("tokens").textContent = `${(tokens * sim.sg_max_tokens()).toFixed(1)} / ${sim.sg_max_tokens()}`;
      $("tokens-note").textContent = tokens <= 0.5
        ? "at or below half: retries paused"
        : "tokens per client, mean of " + sim.sg_client_processes();
    } else {
      bucket.style.width = "0";
      $("tokens").textContent = budget >= 0 ? budget.toFixed(1) : "—";
      $("tokens-note").textContent = budget >= 0 ? "retries a client's RetryBudget allows now" : "no Throttle: nothing to drain";
    }

    $("successes").textContent = Math.round(sim.sg_successes_per_sec());
    const doubles = sim.sg_double_charges();
    $("double-charges").textContent = doubles;
    $("double-charges").classList.toggle("bad", doubles > 0);
    $("charges").textContent = sim.sg_charges();
    $("replayed").textContent = sim.sg_replayed();
    $("refused").textContent = sim.sg_unsafe_refused();

    const queue = sim.sg_queue_len();
    $("queue").textContent = queue;
    $("queue-limit").textContent = sim.sg_queue_limit();
    $("queue-fill").style.width = (queue / sim.sg_queue_limit()) * 100 + "%";
    const notes = [];
    if (sim.sg_breaker() === 1) notes.push(`breakers open: ${sim.sg_open_breakers()} / ${sim.sg_client_processes()}`);
    const reject = sim.sg_reject_probability();
    if (reject >= 0) notes.push(`adaptive throttle rejects ${(reject * 100).toFixed(0)} %`);
    $("breakers").textContent = notes.length ? notes.join(" · ") : "no breaker, no adaptive throttle";
    $("native-command").textContent = nativeCommand();
    drawChart(now);
  }

  function drawChart(now) {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = canvas.clientWidth || canvas.width;
    const cssHeight = Math.round(cssWidth * 240 / 880);
    if (canvas.width !== Math.round(cssWidth * ratio)) {
      canvas.width = Math.round(cssWidth * ratio);
      canvas.height = Math.round(cssHeight * ratio);
    }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, cssWidth, cssHeight);
    const left = 34, right = cssWidth - 8, top = 8, bottom = cssHeight - 22;
    const bucketMs = sim.sg_bucket_ms();
    const complete = Math.min(Math.floor(now / bucketMs), sim.sg_buckets());
    // The first 30 s fill the chart from the left; then it scrolls.
    const first = Math.max(0, complete - HISTORY_BUCKETS);
    const values = [];
    for (let i = first; i < complete; i++) values.push([i, sim.sg_offered_at(i)]);
    const highest = values.reduce((m, [, v]) => Math.max(m, v), 0);
    const ymax = Math.max(5, Math.ceil(highest + 0.5));
    const x = (i) => left + ((i - first) / HISTORY_BUCKETS) * (right - left);
    const y = (v) => bottom - (v / ymax) * (bottom - top);

    g.fillStyle = "rgba(213, 94, 0, 0.12)";
    for (const [on, off] of triggers) {
      const a = Math.max(x(on / bucketMs), left);
      const b = Math.min(x((off === null ? now : off) / bucketMs), right);
      if (b > a) g.fillRect(a, top, b - a, bottom - top);
    }
    g.strokeStyle = "#d0d5dd";
    g.fillStyle = "#667085";
    g.font = "11px system-ui, sans-serif";
    g.lineWidth = 1;
    for (let v = 0; v <= ymax; v++) {
      g.beginPath();
      g.moveTo(left, y(v));
      g.lineTo(right, y(v));
      g.stroke();
      g.fillText(v + "×", 4, y(v) + 4);
    }
    const lastSecond = (first + HISTORY_BUCKETS) * bucketMs / 1000;
    for (let s = Math.ceil(first * bucketMs / 5000) * 5; s <= lastSecond; s += 5) {
      g.fillText(s + " s", Math.min(x(s * 1000 / bucketMs) - 8, cssWidth - 30), cssHeight - 6);
    }
    g.strokeStyle = "#1d2430";
    g.setLineDash([6, 4]);
    g.beginPath();
    g.moveTo(left, y(1));
    g.lineTo(right, y(1));
    g.stroke();
    g.setLineDash([]);
    g.strokeStyle = sim.sg_method() === 0 ? "#0072b2" : "#d55e00";
    g.lineWidth = 2;
    g.beginPath();
    values.forEach(([i, v], n) => (n ? g.lineTo(x(i + 0.5), y(v)) : g.moveTo(x(i + 0.5), y(v))));
    g.stroke();
  }

  function copyCommand() {
    const text = nativeCommand();
    const done = () => { $("copy-command").textContent = "Copied"; };
    const select = () => {
      const range = document.createRange();
      range.selectNodeContents($("native-command"));
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      $("copy-command").textContent = "Selected: copy it";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, select);
    } else {
      select();
    }
    setTimeout(() => { $("copy-command").textContent = "Copy"; }, 2000);
  }

  function frame() {
    if (playing && sim) advanceTo(sim.sg_now_ms() + Number($("speed").value));
    requestAnimationFrame(frame);
  }

  function init(exports) {
    sim = exports;
    tableEnd = sim.sg_table_duration_ms();
    for (const [name, element] of Object.entries(controls)) {
      if (name === "preset") continue;
      element.addEventListener(element.type === "range" ? "input" : "change", () => {
        controls.preset.value = "custom";
        applyControls();
        render();
      });
    }
    controls.preset.addEventListener("change", () => {
      if (controls.preset.value !== "custom" && sim.sg_preset(Number(controls.preset.value)) === 0) {
        recordClients();
      }
      showSettings();
      render();
    });
    $("trigger").addEventListener("click", toggleTrigger);
    $("restart").addEventListener("click", () => { start(false); setPlaying(true); });
    $("scripted").addEventListener("click", () => { start(true); setPlaying(true); });
    $("pause").addEventListener("click", () => setPlaying(!playing));
    $("export").addEventListener("click", download);
    $("copy-command").addEventListener("click", copyCommand);
    controls.preset.value = "1";
    sim.sg_preset(1);
    showSettings();
    start(false);
    $("status").textContent = "";
    requestAnimationFrame(frame);
  }

  const ready = WebAssembly.instantiate(bytesOf(STORMGUARD_WASM), {})
    .then(({ instance }) => init(instance.exports))
    .catch((e) => {
      $("status").textContent = "the simulator did not load: " + e;
      throw e;
    });

  window.playground = {
    ready,
    runTo(ms) { setPlaying(false); advanceTo(ms); },
    pause() { setPlaying(false); },
    play() { setPlaying(true); },
    exportSeries,
    nativeCommand,
    get exports() { return sim; },
  };
})();
