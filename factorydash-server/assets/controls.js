// factorydash: the page's controls: the "as of" form and the theme switch.
// Agent data is untrusted: only textContent is ever set.
"use strict";
(function () {
  // "As of": the browser's local date and time in the form, UTC in the address (`at`).
  const atLocal = document.getElementById("at-local");
  const atField = document.getElementById("at");
  if (atLocal && atField) {
    const pad = (n) => String(n).padStart(2, "0");
    if (atField.value) {
      const d = new Date(atField.value);
      atLocal.value = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
        "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    }
    atLocal.form.addEventListener("submit", () => {
      // A local date and time without a zone is read as the browser's own.
      atField.value = atLocal.value ? new Date(atLocal.value).toISOString() : "";
      atField.disabled = !atField.value;
    });
  }

  // The theme switch: the system's → dark → light → the system's (theme.js applied the
  // stored choice before the page was drawn).
  const themeButton = document.getElementById("theme");
  if (themeButton) {
    const root = document.documentElement;
    const show = () => { themeButton.textContent = "theme: " + (root.dataset.theme || "system"); };
    themeButton.addEventListener("click", () => {
      const next = { "": "dark", dark: "light", light: "" }[root.dataset.theme || ""];
      if (next) root.dataset.theme = next; else delete root.dataset.theme;
      try {
        if (next) localStorage.setItem("factorydash-theme", next);
        else localStorage.removeItem("factorydash-theme");
      } catch (e) { /* not remembered */ }
      show();
      document.dispatchEvent(new Event("factorydash:theme"));
    });
    show();
  }
})();
