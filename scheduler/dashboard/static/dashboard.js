// WaveCD dashboard: keeps a page's live part fresh, filters the list, and runs the confirmed actions.
// The server renders every view; this script only fetches HTML fragments and posts JSON actions.
"use strict";

(function () {
  const POLL_MS = 2000;
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  function toast(text, isError) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.className = "toast" + (isError ? " error" : "");
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 5000);
  }

  function signIn() {
    window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // -- live regions ---------------------------------------------------------------------------------
  const live = document.querySelector("[data-live]");
  let lastHtml = null;

  function liveUrl() {
    const query = live.dataset.query || "";
    return live.dataset.live + (query ? "?" + query : "");
  }

  async function refreshLive() {
    if (!live || document.hidden) return;  // a background tab asks nothing; it catches up when shown
    let response;
    try {
      response = await fetch(liveUrl(), { credentials: "same-origin", headers: { Accept: "text/html" } });
    } catch (err) {
      live.dataset.stale = "true";  // the server is unreachable: keep what we show, try again
      return;
    }
    if (response.status === 401) { signIn(); return; }
    const html = await response.text();
    delete live.dataset.stale;
    if (html === lastHtml) return;
    lastHtml = html;
    const open = new Set([...live.querySelectorAll("details[open]")].map((d) => d.dataset.diff));
    live.innerHTML = html;
    live.querySelectorAll("details[data-diff]").forEach((d) => { if (open.has(d.dataset.diff)) d.open = true; });
    live.dataset.refreshedAt = String(Date.now());
  }

  if (live) {
    setInterval(refreshLive, POLL_MS);
    document.addEventListener("visibilitychange", refreshLive);
  }

  // -- list filters ---------------------------------------------------------------------------------
  const filters = document.getElementById("filters");
  if (filters && live) {
    let timer = null;
    const apply = () => {
      const params = new URLSearchParams();
      new FormData(filters).forEach((value, key) => { if (value) params.set(key, String(value)); });
      const query = params.toString();
      live.dataset.query = query;
      history.replaceState(null, "", "/applications" + (query ? "?" + query : ""));
      refreshLive();
    };
    filters.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 200); });
    filters.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  }

  // -- actions --------------------------------------------------------------------------------------
  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await response.json(); } catch (err) { data = {}; }
    if (response.status === 401) { signIn(); }
    return { ok: response.ok, data };
  }

  function bodyFor(action, form) {
    const checked = (name) => Boolean(form.elements[name]?.checked);
    if (action === "sync") {
      const boxes = [...form.querySelectorAll('input[name="resource"]')];
      const picked = boxes.filter((b) => b.checked);
      const body = { prune: checked("prune"), dryRun: checked("dryRun"), applyOutOfSyncOnly: checked("applyOutOfSyncOnly") };
      if (picked.length !== boxes.length) {
        body.resources = picked.map((b) => {
          const [group, kind, rest] = b.value.split(":");
          const slash = rest.indexOf("/");
          return { group, kind, namespace: rest.slice(0, slash), name: rest.slice(slash + 1) };
        });
      }
      return body;
    }
    if (action === "rollback") {
      return { id: Number(form.elements.id.value), prune: checked("prune"), dryRun: checked("dryRun") };
    }
    if (action === "delete") return { cascade: checked("cascade") };
    return {};
  }

  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.open);
      if (!dialog) return;
      const error = dialog.querySelector(".dialog-error");
      if (error) { error.hidden = true; error.textContent = ""; }
      if (opener.dataset.historyId !== undefined) {
        dialog.querySelector('input[name="id"]').value = opener.dataset.historyId;
        dialog.querySelector('[data-field="id-label"]').textContent = opener.dataset.historyId;
      }
      dialog.showModal();
      return;
    }
    const all = event.target.closest("[data-select-all], [data-select-none]");
    if (all) {
      const on = all.hasAttribute("data-select-all");
      all.closest("fieldset").querySelectorAll('input[name="resource"]').forEach((b) => { b.checked = on; });
      return;
    }
    if (event.target.closest("[data-signout]")) {
      post("/logout").then(() => window.location.assign("/login"));
    }
  });

  document.querySelectorAll("dialog[data-action]").forEach((dialog) => {
    const form = dialog.querySelector("form");
    form.addEventListener("submit", async (event) => {
      if (event.submitter && event.submitter.value === "cancel") return;  // closes the dialog
      event.preventDefault();
      const app = document.querySelector(".actions[data-app]").dataset.app;
      const action = dialog.dataset.action;
      const query = dialog.dataset.query ? "?" + dialog.dataset.query : "";
      const url = "/ui/actions/applications/" + encodeURIComponent(app) + "/" + action + query;
      const confirm = dialog.querySelector("[data-confirm]");
      confirm.disabled = true;
      try {
        const { ok, data } = await post(url, bodyFor(action, form));
        if (!ok) {
          const error = dialog.querySelector(".dialog-error");
          error.textContent = data.error || "the request failed";
          error.hidden = false;
          return;
        }
        dialog.close();
        toast(data.message || "done", false);
        if (action === "delete") { setTimeout(() => window.location.assign("/applications"), 800); }
        refreshLive();
      } finally {
        confirm.disabled = false;
      }
    });
  });
})();
