// Small conveniences on top of pages that work without script.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    // Take keyboard and screen-reader users straight to what went wrong with a form.
    var summary = document.querySelector(".error-summary");
    if (summary) { summary.focus(); }
    // A link to a folded section (an earlier sourcing step) opens it.
    var openTarget = function () {
      var target = location.hash && document.getElementById(location.hash.slice(1));
      if (target && target.tagName === "DETAILS") { target.open = true; }
    };
    window.addEventListener("hashchange", openTarget);
    openTarget();
    // Redraw the award preview as providers are picked and amounts typed (the server works
    // it out: the rule lives in one place).
    var decision = document.getElementById("decision-form");
    var preview = document.getElementById("award-preview");
    if (decision && preview) {
      var asked = 0;
      var timer = null;
      var redraw = function () {
        var params = new URLSearchParams();
        new FormData(decision).forEach(function (value, key) {
          if (key.indexOf("awards.") === 0) { params.append(key, value); }
        });
        var mine = ++asked;
        fetch(preview.getAttribute("data-source") + "?" + params.toString(),
              {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html !== null && mine === asked) {
              preview.innerHTML = html;
              preview.setAttribute("data-drawn", String(mine));
            }
          });
      };
      decision.addEventListener("change", redraw);
      decision.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(redraw, 300);
      });
    }
    // Show a provider's SME size and partnership members only for those types.
    var kind = document.getElementById("register-organisation_type");
    if (kind) {
      var toggle = function () {
        document.querySelectorAll("[data-for-type]").forEach(function (part) {
          part.hidden = part.getAttribute("data-for-type") !== kind.value;
        });
      };
      kind.addEventListener("change", toggle);
      toggle();
    }
  });
})();
