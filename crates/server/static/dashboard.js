// camgate dashboard: copy buttons. Optional: without this script the credential fields are
// still read-only inputs the user can select and copy, and every page works.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button[data-copy]");
  Array.prototype.forEach.call(buttons, function (b) {
    var input = document.getElementById(b.getAttribute("data-copy"));
    if (!input) return;
    b.hidden = false;
    var label = b.textContent;
    var flash = function (text) {
      b.textContent = text;
      window.setTimeout(function () { b.textContent = label; }, 2000);
    };
    var fallback = function () {
      input.focus();
      input.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      flash(ok ? "Copied" : "Press Ctrl+C");
    };
    b.addEventListener("click", function () {
      input.focus();
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(function () { flash("Copied"); }, fallback);
      } else {
        fallback();
      }
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("input.secret-value"), function (i) {
    i.addEventListener("focus", function () { i.select(); });
  });
})();
