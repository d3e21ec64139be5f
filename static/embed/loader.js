/* Jauge banner loader: <script src="https://jauge.example/embed/<slug>.js" async></script>
 * Renders the live banner where the script stands, isolated from the page's CSS (shadow root,
 * or an auto-sized iframe with data-mode="iframe"), and keeps it live with or without htmx.
 * Options on the <script>: data-variant="banner|bar|compact", data-lang="fr|en", data-mode="shadow|iframe".
 * No framework, no build step. The server inlines the stylesheet below. */
(function () {
  "use strict";
  var CSS = "__JAUGE_CSS__";
  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var src = new URL(script.src, document.baseURI);
  var match = src.pathname.match(/^(.*\/embed\/)([^/]+)\.js$/);
  if (!match) { return; }
  var base = src.origin + match[1];
  var slug = match[2];
  var params = new URLSearchParams();
  ["variant", "lang"].forEach(function (name) {
    var value = script.getAttribute("data-" + name);
    if (value) { params.set(name, value); }
  });
  var query = params.toString() ? "?" + params.toString() : "";
  // A custom element, not a div: the article's `div { … }` rules cannot reach the host, and the
  // inline reset stops its inherited styles (font, colour, letter-spacing) at the shadow boundary.
  var host = document.createElement("jauge-banner");
  host.style.cssText = "all:initial;display:block";
  script.parentNode.insertBefore(host, script);
  var mode = script.getAttribute("data-mode") || (host.attachShadow ? "shadow" : "iframe");

  function attribute(root) {
    var links = root.querySelectorAll("[data-jauge-give]");
    for (var i = 0; i < links.length; i++) {
      // Keeps the link's own query (?lang=en on an English banner).
      var give = new URL(links[i].href);
      give.searchParams.set("article", location.href);
      links[i].href = give.href;
    }
  }

  function whenVisible(callback) {
    if (document.visibilityState !== "hidden") { callback(); return; }
    document.addEventListener("visibilitychange", function again() {
      if (document.visibilityState === "hidden") { return; }
      document.removeEventListener("visibilitychange", again);
      callback();
    });
  }

  if (mode === "iframe") {
    var frame = document.createElement("iframe");
    frame.src = base + slug + "/frame/" + query;
    frame.title = script.getAttribute("data-title") || "Jauge";
    frame.loading = "lazy";
    frame.setAttribute("scrolling", "no");
    frame.style.cssText = "border:0;width:100%;height:0;display:block;overflow:hidden";
    window.addEventListener("message", function (event) {
      if (event.source !== frame.contentWindow || event.origin !== src.origin) { return; }
      var data = event.data || {};
      if (data.jauge === "height") { frame.style.height = Math.max(0, +data.height || 0) + "px"; }
    });
    frame.addEventListener("load", function () {
      frame.contentWindow.postMessage({jauge: "article", url: location.href}, src.origin);
    });
    host.appendChild(frame);
    return;
  }

  var root = host.attachShadow({mode: "open"});
  var url = base + slug + "/" + query;
  var shown = null;

  function schedule(seconds) {
    setTimeout(function () { whenVisible(load); }, seconds * 1000);
  }

  function load() {
    // "no-cache" revalidates with the stored ETag: an unchanged banner costs a 304.
    fetch(url, {cache: "no-cache", credentials: "omit", mode: "cors"})
      .then(function (response) {
        // 404 (no such campaign) or 400 (bad data-variant/data-lang): retrying will not help.
        if (response.status >= 400 && response.status < 500) {
          if (window.console) { console.warn("Jauge: " + url + " answered " + response.status); }
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        if (html !== shown) {
          shown = html;
          root.innerHTML = "<style>" + CSS + "</style>" + html;
          attribute(root);
        }
        // The markup says whether to keep polling: a closed campaign has no data-jauge-poll.
        var banner = root.querySelector("[data-jauge-poll]");
        if (banner) { schedule(Math.max(2, +banner.getAttribute("data-jauge-poll") || 10)); }
      })
      .catch(function () { schedule(60); });
  }

  load();
})();
