// Inlined at the top of index.html (a classic script, so it runs before the app's module starts loading).
(function () {
  var started = function () {
    return document.body && document.body.dataset.ready === '1';
  };
  var shown = false;
  function show(title, detail, advice) {
    if (shown || started()) return;
    shown = true;
    var show_now = function () {
      var boot = document.getElementById('boot');
      if (!boot) return;
      boot.className = 'boot boot-failed';
      boot.setAttribute('role', 'alert');
      boot.setAttribute('data-testid', 'boot-failed');
      boot.textContent = '';
      var h = document.createElement('h1');
      h.textContent = title;
      var p = document.createElement('p');
      p.textContent = advice;
      var pre = document.createElement('pre');
      pre.textContent = detail;
      var button = document.createElement('button');
      button.textContent = 'Reload';
      button.addEventListener('click', function () {
        location.reload();
      });
      boot.append(h, p, pre, button);
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', show_now);
    else show_now();
  }
  var copy_advice =
    'If this copy of the site was put on a server by hand, copy every file of the built dist/ folder again, ' +
    'unchanged, and make sure the server sends .wasm files as application/wasm and .js files as JavaScript. ' +
    'Otherwise reload the page; if that does not help, clear this site\u2019s data in the browser and reload.';
  // Capture phase: a script or stylesheet that fails to load fires its error on the element, without bubbling.
  window.addEventListener(
    'error',
    function (e) {
      var t = e.target;
      // A file the app fetches and reports on itself (the chapter's text, preloaded) is not a failure to start.
      if (t && t.hasAttribute && t.hasAttribute('data-app-reports')) return;
      if (t && t !== window && (t.tagName === 'SCRIPT' || t.tagName === 'LINK')) {
        // The inline loader reports its import's failure as its own: name the file it imports.
        var imported = !t.src && !t.href && (t.textContent.match(/from\s+['"]([^'"]+)['"]/) || [])[1];
        var file = (t.src || t.href || imported || '').split('/').pop() || 'the app\u2019s code';
        show('The playground could not load one of its files', file + ' did not load.', copy_advice);
      } else if (t === window || !t) {
        var message = String((e.error && e.error.message) || e.message);
        // The loader imports the build it picked (src/worker/post_build.mjs); Chromium and Firefox name the URL.
        var url = (message.match(/imported module:?\s*(\S+)/) || [])[1];
        if (url) show('The playground could not load one of its files', url.split('/').pop() + ' did not load.', copy_advice);
        else show('The playground could not start', message, copy_advice);
      }
    },
    true,
  );
  window.addEventListener('unhandledrejection', function (e) {
    var r = e.reason;
    show('The playground could not start', String((r && r.message) || r), copy_advice);
  });
  // Nothing failed loudly, yet nothing started: a file that never arrives, or a very slow network.
  setTimeout(function () {
    if (started() || shown) return;
    var boot = document.getElementById('boot');
    if (!boot) return;
    var note = document.createElement('p');
    note.className = 'boot-slow';
    note.setAttribute('data-testid', 'boot-slow');
    note.textContent =
      'This is taking longer than it should. On a slow network, wait a little more; otherwise reload the page.';
    boot.append(note);
  }, 20000);
})();
