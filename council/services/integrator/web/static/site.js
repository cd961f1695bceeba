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
