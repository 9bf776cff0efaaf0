// factorydash: the page's controls: the "as of" form and the theme switch.
// Agent data is untrusted: only textContent is ever set.
"use strict";
(function () {
  // "As of": a date and time in the zone the page shows (the plant's or this browser's)
  // in the form, UTC in the address (`at`).
  const { fromZoned, toZoned } = window.factorydash;
  const atLocal = document.getElementById("at-local");
  const atField = document.getElementById("at");
  if (atLocal && atField) {
    if (atField.value) atLocal.value = toZoned(Date.parse(atField.value));
    atLocal.form.addEventListener("submit", () => {
      const at = fromZoned(atLocal.value);
      atField.value = Number.isNaN(at) ? "" : new Date(at).toISOString();
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
