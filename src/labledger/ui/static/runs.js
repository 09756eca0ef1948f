/* labledger dashboard: the runs page — child rows, selection, columns and page size in the URL. */
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  const selected = new Set((params.get("selected") || "").split(",").filter(Boolean));

  function go(change) {
    const next = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(change)) {
      if (v === "" || v === null) next.delete(k); else next.set(k, v);
    }
    location.search = next.toString();
  }

  function syncSelection() {
    const next = new URLSearchParams(location.search);
    if (selected.size) next.set("selected", Array.from(selected).join(",")); else next.delete("selected");
    const query = next.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
    const link = document.getElementById("compare-selected");
    if (!link) return;
    const ready = selected.size >= 2;
    link.classList.toggle("disabled", !ready);
    link.setAttribute("aria-disabled", ready ? "false" : "true");
    link.href = ready ? "/compare?runs=" + Array.from(selected).map(encodeURIComponent).join(",") : "#";
  }

  document.querySelectorAll("input.select-run").forEach((box) => {
    box.addEventListener("change", () => {
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
      syncSelection();
    });
  });

  const compare = document.getElementById("compare-selected");
  if (compare) compare.addEventListener("click", (e) => { if (selected.size < 2) e.preventDefault(); });

  document.querySelectorAll("button.toggle-children").forEach((button) => {
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", open ? "true" : "false");
      button.textContent = button.textContent.replace(open ? "▸" : "▾", open ? "▾" : "▸");
      document.querySelectorAll(`tr[data-parent-id="${CSS.escape(button.dataset.runId)}"]`).forEach((row) => {
        row.hidden = !open;
      });
    });
  });

  const apply = document.getElementById("apply-columns");
  if (apply) apply.addEventListener("click", () => {
    const chosen = Array.from(document.querySelectorAll("input.column-choice:checked")).map((c) => c.value);
    go({ columns: chosen.join(","), offset: "" });
  });

  const size = document.getElementById("page-size");
  if (size) size.addEventListener("change", () => go({ limit: size.value, offset: "" }));

  syncSelection();
})();
