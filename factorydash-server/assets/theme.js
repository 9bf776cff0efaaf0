// The colour theme, set before the page is drawn (no flash of the wrong one): "dark",
// "light", or the system's when none was chosen. `?theme=dark|light|auto` in the address
// chooses and remembers it: a wall screen's bookmark. The header's button (app.js) too.
"use strict";
(function () {
  const key = "factorydash-theme";
  const asked = new URLSearchParams(location.search).get("theme");
  let theme = asked === "dark" || asked === "light" ? asked : null;
  try {
    if (theme) localStorage.setItem(key, theme);
    else if (asked === "auto") localStorage.removeItem(key);
    else theme = localStorage.getItem(key);
  } catch (e) {
    // Storage refused (a private window): the choice lasts for this page only.
  }
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
})();
