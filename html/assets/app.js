// Latchkey web UI: progressive enhancement only. Every page works without
// this script; with it, confirmations open in a <dialog>, secrets copy to
// the clipboard, and the tenant switcher submits on change.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Confirmations. Links with data-confirm lead to a confirmation page;
  // here they open the dialog instead, whose form POSTs to the same URL.
  var dialog = document.getElementById("confirm-dialog");
  var opener = null;
  if (dialog && typeof dialog.showModal === "function") {
    document.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("a[data-confirm]");
      if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) {
        return;
      }
      e.preventDefault();
      document.getElementById("confirm-form").setAttribute("action", a.getAttribute("href"));
      document.getElementById("confirm-title").textContent = a.getAttribute("data-confirm");
      document.getElementById("confirm-text").textContent = a.getAttribute("data-confirm-text") || "";
      document.getElementById("confirm-submit").textContent = a.getAttribute("data-confirm-button") || "Confirm";
      opener = a;
      dialog.showModal();
      document.getElementById("confirm-cancel").focus();
    });
    dialog.addEventListener("click", function (e) {
      if (e.target === dialog) { // a click on the backdrop
        dialog.close("cancel");
      }
    });
    dialog.addEventListener("close", function () {
      if (opener && document.body.contains(opener)) {
        opener.focus();
      }
      opener = null;
    });
  }

  // Copy buttons: data-copy names the input whose value is copied.
  function legacyCopy() {
    try {
      return document.execCommand("copy");
    } catch (err) {
      return false;
    }
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button[data-copy]");
    if (!b) {
      return;
    }
    var input = document.getElementById(b.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    var done = function (ok) {
      if (status) {
        status.textContent = ok ? "Copied to the clipboard." : "Press Ctrl+C (⌘C on a Mac) to copy the selected text.";
      }
      if (ok) {
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = "Copy"; }, 2000);
      }
    };
    input.focus();
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { done(true); }, function () { done(legacyCopy()); });
    } else {
      done(legacyCopy());
    }
  });
  document.querySelectorAll("[data-select-on-focus]").forEach(function (el) {
    el.addEventListener("focus", function () { el.select(); });
  });

  // The tenant switcher submits as soon as a tenant is picked.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () {
      if (s.form.requestSubmit) {
        s.form.requestSubmit();
      } else {
        s.form.submit();
      }
    });
  });

  // The expiration date field shows only for "On a date…".
  document.querySelectorAll("select[data-expiration]").forEach(function (s) {
    var field = s.form.querySelector("[data-expiration-date]");
    if (!field) {
      return;
    }
    var input = field.querySelector("input");
    if (input.value && s.value === "never") {
      s.value = "custom";
    }
    var sync = function () {
      var custom = s.value === "custom";
      field.hidden = !custom;
      input.required = custom;
      if (!custom) {
        input.value = "";
      }
    };
    s.addEventListener("change", function () {
      sync();
      if (s.value === "custom") {
        input.focus();
      }
    });
    sync();
  });
})();
